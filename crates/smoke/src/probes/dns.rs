//! The dns probe: an A, AAAA or CNAME lookup, optionally to an expected address or target
//! (a CNAME to the platform's host name, an ALB name). The resolver is the system's unless
//! one is given (`127.0.0.1:5353` in tests, a public resolver to bypass split DNS).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use async_trait::async_trait;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use staging_core::pipeline::RunContext;
use staging_core::spec::DnsCheck;
use staging_core::{Error, Probe, ProbeOutcome, Result};

use super::fmt_duration;

/// A DNS lookup with an optional expected answer.
#[derive(Debug, Clone)]
pub struct DnsProbe {
    name: String,
    query: String,
    record: RecordType,
    expect: Option<String>,
    resolver: Option<SocketAddr>,
    /// Bound on the lookup, every retry of the resolver included.
    bound: std::time::Duration,
}

impl DnsProbe {
    /// A probe from its spec table.
    pub fn from_spec(name: &str, check: &DnsCheck, ctx: &RunContext) -> Result<Self> {
        let cfg = |m: String| Error::config(format!("probe `{name}`: {m}"));
        let record = match check.record.to_ascii_uppercase().as_str() {
            "A" => RecordType::A,
            "AAAA" => RecordType::AAAA,
            "CNAME" => RecordType::CNAME,
            other => return Err(cfg(format!("record `{other}`: use A, AAAA or CNAME"))),
        };
        let resolver = check
            .resolver
            .as_ref()
            .map(|r| {
                let r = ctx.render(r)?;
                r.parse::<SocketAddr>()
                    .or_else(|_| r.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| {
                        cfg(format!(
                            "resolver `{r}`: write an address, `127.0.0.1:5353` or `1.1.1.1`"
                        ))
                    })
            })
            .transpose()?;
        Ok(DnsProbe {
            name: name.to_owned(),
            query: ctx.render(&check.name)?,
            record,
            expect: check.expect.as_ref().map(|e| ctx.render(e)).transpose()?,
            resolver,
            bound: staging_core::limits::DEFAULT_CONNECT_TIMEOUT,
        })
    }

    /// Bound the lookup by `bound` (default 10 s): a resolver that never answers fails
    /// naming it and the query.
    pub fn with_bound(mut self, bound: std::time::Duration) -> Self {
        self.bound = bound;
        self
    }

    fn resolver(&self) -> std::result::Result<TokioResolver, String> {
        match self.resolver {
            None => TokioResolver::builder_tokio()
                .and_then(|b| b.build())
                .map_err(|e| format!("cannot read the system resolver configuration: {e}")),
            Some(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut server.connections {
                    c.port = addr.port();
                }
                let mut builder = Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                );
                // Every attempt asks again: a retried probe must see a changed record.
                builder.options_mut().cache_size = 0;
                builder
                    .build()
                    .map_err(|e| format!("cannot build a resolver for {addr}: {e}"))
            }
        }
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[async_trait]
impl Probe for DnsProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "dns"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let via = self
            .resolver
            .map(|a| a.to_string())
            .unwrap_or_else(|| "the system resolver".to_owned());
        let expected = match &self.expect {
            Some(e) => format!("{} {} → {e}", self.record, self.query),
            None => format!("{} records for {}", self.record, self.query),
        };
        let resolver = match self.resolver() {
            Ok(r) => r,
            Err(e) => return Ok(ProbeOutcome::fail(expected, e, started.elapsed())),
        };
        // A fully qualified name: no search domains appended behind the operator's back.
        let fqdn = if self.query.ends_with('.') {
            self.query.clone()
        } else {
            format!("{}.", self.query)
        };
        let lookup =
            tokio::time::timeout(self.bound, resolver.lookup(fqdn.as_str(), self.record)).await;
        let Ok(lookup) = lookup else {
            return Ok(ProbeOutcome::fail(
                expected,
                format!(
                    "no answer from {via} to the {} query for {} within {}",
                    self.record,
                    self.query,
                    fmt_duration(self.bound)
                ),
                started.elapsed(),
            )
            .with_evidence("resolver", via));
        };
        let lookup = match lookup {
            Ok(l) => l,
            Err(e) if e.is_no_records_found() => {
                return Ok(ProbeOutcome::fail(
                    expected,
                    format!("no {} records for {} (via {via})", self.record, self.query),
                    started.elapsed(),
                )
                .with_evidence("resolver", via));
            }
            Err(e) => {
                return Ok(ProbeOutcome::fail(
                    expected,
                    format!("lookup failed via {via}: {e}"),
                    started.elapsed(),
                )
                .with_evidence("resolver", via));
            }
        };
        let mut addresses: Vec<IpAddr> = vec![];
        let mut targets: Vec<String> = vec![];
        for record in lookup.answers() {
            match &record.data {
                RData::A(a) => addresses.push(IpAddr::V4(a.0)),
                RData::AAAA(a) => addresses.push(IpAddr::V6(a.0)),
                RData::CNAME(c) => targets.push(normalize(&c.0.to_string())),
                _ => {}
            }
        }
        let mut answers: Vec<String> = targets.iter().map(|t| format!("CNAME {t}")).collect();
        answers.extend(addresses.iter().map(|a| a.to_string()));
        let observed = if answers.is_empty() {
            "no answers".to_owned()
        } else {
            answers.join(", ")
        };
        let took = started.elapsed();
        let found = match &self.expect {
            None => !answers.is_empty(),
            Some(want) => match want.parse::<IpAddr>() {
                Ok(ip) => addresses.contains(&ip),
                Err(_) => targets.contains(&normalize(want)),
            },
        };
        let outcome = if found {
            ProbeOutcome::pass(
                expected,
                format!("{observed} in {}", fmt_duration(took)),
                took,
            )
        } else {
            ProbeOutcome::fail(expected, observed.clone(), took)
        };
        Ok(outcome
            .with_evidence("resolver", via)
            .with_evidence("answers", observed))
    }
}
