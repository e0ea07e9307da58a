//! The redis probe: PING, `maxmemory-policy`, and a SET/GET/DEL round trip with a unique key.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use staging_core::pipeline::RunContext;
use staging_core::spec::RedisCheck;
use staging_core::{Error, Probe, ProbeOutcome, Result};

use super::{error_chain, fmt_duration, postgres::unique_token};

/// A round-trip key expires by itself should the connection drop before its DEL.
const ROUND_TRIP_KEY_TTL: Duration = Duration::from_secs(60);

/// A Redis check. The URL is a secret until the connection is opened.
#[derive(Debug)]
pub struct RedisProbe {
    name: String,
    url: SecretString,
    maxmemory_policy: Option<String>,
    round_trip: bool,
    /// Bound on connecting and on each command's answer.
    bound: Duration,
}

impl RedisProbe {
    /// A probe connecting to `url` that PINGs and does a round trip.
    pub fn new(name: impl Into<String>, url: SecretString) -> Self {
        RedisProbe {
            name: name.into(),
            url,
            maxmemory_policy: None,
            round_trip: true,
            bound: staging_core::limits::DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Require this `maxmemory-policy` (the runbooks require `noeviction`).
    pub fn with_maxmemory_policy(mut self, policy: impl Into<String>) -> Self {
        self.maxmemory_policy = Some(policy.into());
        self
    }

    /// Whether to do the SET/GET/DEL round trip (default true).
    pub fn with_round_trip(mut self, on: bool) -> Self {
        self.round_trip = on;
        self
    }

    /// Bound connecting and each command's answer by `bound` (default 10 s): a server that
    /// accepts and never answers fails naming its address and the phase.
    pub fn with_bound(mut self, bound: Duration) -> Self {
        self.bound = bound;
        self
    }

    /// A probe from its spec table; the URL is read from `ctx.vars[url_var]`.
    pub fn from_spec(name: &str, check: &RedisCheck, ctx: &RunContext) -> Result<Self> {
        let url = super::url_from_var(name, &check.url_var, ctx)?;
        let mut probe = Self::new(name, url).with_round_trip(check.round_trip);
        if let Some(p) = &check.maxmemory_policy {
            probe = probe.with_maxmemory_policy(ctx.render(p)?);
        }
        Ok(probe)
    }
}

#[async_trait]
impl Probe for RedisProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "redis"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let fail = |expected: &str, observed: String| {
            Ok(ProbeOutcome::fail(expected, observed, started.elapsed()))
        };
        let client = match redis::Client::open(self.url.expose_secret()) {
            Ok(c) => c,
            Err(e) => {
                return Err(Error::config(format!(
                    "probe `{}`: invalid Redis URL: {e}",
                    self.name
                )));
            }
        };
        let addr = client.get_connection_info().addr().to_string();
        let bound = self.bound;
        let silent = |phase: &str| {
            format!(
                "no answer from {addr} {phase} within {}",
                super::fmt_duration(bound)
            )
        };
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(bound))
            .set_response_timeout(Some(bound));
        let connecting = tokio::time::timeout(
            bound,
            client.get_multiplexed_async_connection_with_config(&config),
        );
        let mut conn = match connecting.await {
            Ok(Ok(c)) => c,
            Err(_) => {
                return fail(
                    "a connection",
                    format!("connect failed: {}", silent("while connecting")),
                );
            }
            Ok(Err(e)) if e.is_timeout() => {
                return fail(
                    "a connection",
                    format!("connect failed: {}", silent("while connecting")),
                );
            }
            Ok(Err(e)) => {
                return fail(
                    "a connection",
                    format!("connect failed: {}", error_chain(&e)),
                );
            }
        };
        let mut held = vec![];
        let mut evidence = vec![];
        match redis::cmd("PING").query_async::<String>(&mut conn).await {
            Ok(p) if p == "PONG" => held.push("PING → PONG".to_owned()),
            Ok(p) => return fail("PING → PONG", format!("PING → {p}")),
            Err(e) if e.is_timeout() => return fail("PING → PONG", silent("to PING")),
            Err(e) => return fail("PING → PONG", format!("PING failed: {}", error_chain(&e))),
        }
        if let Some(want) = &self.maxmemory_policy {
            let expected = format!("maxmemory-policy = {want}");
            let got = redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory-policy")
                .query_async::<HashMap<String, String>>(&mut conn)
                .await;
            match got {
                Err(e) => {
                    return fail(
                        &expected,
                        format!("CONFIG GET refused: {}", error_chain(&e)),
                    );
                }
                Ok(map) => {
                    let got = map
                        .get("maxmemory-policy")
                        .cloned()
                        .unwrap_or_else(|| "(not reported)".into());
                    evidence.push(("maxmemory-policy".to_owned(), got.clone()));
                    if &got != want {
                        return fail(&expected, format!("maxmemory-policy = {got}"));
                    }
                    held.push(expected);
                }
            }
        }
        if self.round_trip {
            let expected = "SET/GET/DEL round trip";
            let key = format!("staging:smoke:{}", unique_token());
            let value = unique_token();
            let result: std::result::Result<Option<String>, redis::RedisError> = async {
                let _: () = redis::cmd("SET")
                    .arg(&key)
                    .arg(&value)
                    .arg("EX")
                    .arg(ROUND_TRIP_KEY_TTL.as_secs())
                    .query_async(&mut conn)
                    .await?;
                let read: Option<String> =
                    redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
                let _: i64 = redis::cmd("DEL").arg(&key).query_async(&mut conn).await?;
                Ok(read)
            }
            .await;
            match result {
                Ok(Some(read)) if read == value => held.push(expected.to_owned()),
                Ok(other) => return fail(expected, format!("GET returned {other:?} after SET")),
                Err(e) => return fail(expected, format!("round trip failed: {}", error_chain(&e))),
            }
        }
        let took = started.elapsed();
        let mut out = ProbeOutcome::pass(
            held.join(", "),
            format!("all held in {}", fmt_duration(took)),
            took,
        );
        out.evidence = evidence;
        Ok(out)
    }
}
