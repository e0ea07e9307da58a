//! The tcp probe: a connect within the probe's timeout.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use staging_core::pipeline::RunContext;
use staging_core::spec::TcpCheck;
use staging_core::{Probe, ProbeOutcome, Result};

use super::fmt_duration;

/// Connects to `host:port`; the runner's per-attempt timeout bounds the wait.
#[derive(Debug, Clone)]
pub struct TcpProbe {
    name: String,
    address: String,
    bound: Duration,
}

impl TcpProbe {
    /// A probe of `address` (`host:port`).
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        TcpProbe {
            name: name.into(),
            address: address.into(),
            bound: staging_core::limits::DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Bound the connect (name resolution included) by `bound` (default 10 s): a host that
    /// drops the SYN fails naming the address and the phase.
    pub fn with_bound(mut self, bound: Duration) -> Self {
        self.bound = bound;
        self
    }

    /// A probe from its spec table, the address rendered against `ctx`.
    pub fn from_spec(name: &str, check: &TcpCheck, ctx: &RunContext) -> Result<Self> {
        Ok(Self::new(name, ctx.render(&check.address)?))
    }
}

#[async_trait]
impl Probe for TcpProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "tcp"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let expected = format!("a TCP connection to {}", self.address);
        let connecting =
            tokio::time::timeout(self.bound, tokio::net::TcpStream::connect(&self.address));
        let Ok(connected) = connecting.await else {
            return Ok(ProbeOutcome::fail(
                expected,
                format!(
                    "no answer from {} while connecting (name resolution and TCP) within {}",
                    self.address,
                    fmt_duration(self.bound)
                ),
                started.elapsed(),
            ));
        };
        match connected {
            Ok(stream) => {
                let peer = stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| "?".into());
                let took = started.elapsed();
                Ok(ProbeOutcome::pass(
                    expected,
                    format!("connected to {peer} in {}", fmt_duration(took)),
                    took,
                )
                .with_evidence("peer", peer))
            }
            Err(e) => Ok(ProbeOutcome::fail(
                expected,
                format!("connect failed: {e}"),
                started.elapsed(),
            )),
        }
    }
}
