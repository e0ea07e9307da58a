//! From the spec's `[[probes]]` to probes for one environment.

use std::time::Duration;

use staging_core::pipeline::RunContext;
use staging_core::spec::ProbeSpec;
use staging_core::{DynProbe, Error, Result};
use std::sync::Arc;

use crate::probes::command::CommandProbe;
use crate::probes::dns::DnsProbe;
use crate::probes::http::{HttpClients, HttpProbe};
use crate::probes::postgres::PostgresProbe;
use crate::probes::redis::RedisProbe;
use crate::probes::tcp::TcpProbe;
use crate::probes::tls::TlsProbe;
use crate::runner::ScheduledProbe;

/// A probe of the spec that does not run in this environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedProbe {
    /// The probe's name.
    pub name: String,
    /// Its kind (`http`, `tls`...).
    pub kind: String,
    /// Why it does not run (`only runs in production`).
    pub reason: String,
}

/// The probes of one environment, ready for a [`crate::Runner`].
#[derive(Debug, Default)]
pub struct BuiltProbes {
    /// The probes to run, in the spec's order, with their timing settings.
    pub probes: Vec<ScheduledProbe>,
    /// The probes the spec restricts to other environments.
    pub skipped: Vec<SkippedProbe>,
}

/// Build the probes of the spec for `ctx.environment`.
///
/// Probes whose `environments` leave this one out are listed as skipped. Every template is
/// checked now (an unknown `${vars.X}` or a `${capture.X}` no earlier step makes is a config
/// error pointing at the probe), but filled in only when the probe runs; postgres and redis
/// URLs are read from `ctx.vars[url_var]` and stay `SecretString`s. Probes with the same
/// HTTP settings share one client and its connection pool.
pub fn build_probes(ctx: &RunContext) -> Result<BuiltProbes> {
    crate::install_crypto_provider();
    let clients = HttpClients::default();
    let mut built = BuiltProbes::default();
    for (i, spec) in ctx.spec.spec.probes.iter().enumerate() {
        let kind = kind_of(spec);
        if let Some(envs) = &spec.environments
            && !envs.iter().any(|e| e == &ctx.environment)
        {
            built.skipped.push(SkippedProbe {
                name: spec.name.clone(),
                kind: kind.to_owned(),
                reason: format!("only runs in {}", envs.join(", ")),
            });
            continue;
        }
        let probe = build_one(spec, ctx, &clients).map_err(|e| match e {
            Error::ConfigInvalid {
                location: None,
                message,
            } => ctx.spec.error_at(&format!("probes[{i}]"), message),
            other => other,
        })?;
        built.probes.push(ScheduledProbe {
            probe,
            timeout: spec.timeout,
            retry_for: spec.retry_for.filter(|d| *d > Duration::ZERO),
        });
    }
    // The provider's own platform checks (target health, certificates, sender identities),
    // after the spec's: they are independent of one another and of the spec's chains.
    for probe in &ctx.provider_probes {
        built.probes.push(ScheduledProbe {
            probe: probe.clone(),
            timeout: PROVIDER_PROBE_TIMEOUT,
            retry_for: None,
        });
    }
    Ok(built)
}

/// Bound on one attempt of a provider's platform check (a few API calls).
const PROVIDER_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

fn kind_of(spec: &ProbeSpec) -> &'static str {
    match spec.kinds().first().copied() {
        Some("steps") => "http",
        Some(k) => k,
        None => "unknown",
    }
}

fn build_one(spec: &ProbeSpec, ctx: &RunContext, clients: &HttpClients) -> Result<DynProbe> {
    let name = spec.name.as_str();
    let kinds = spec.kinds();
    if kinds.len() != 1 {
        return Err(Error::config(format!(
            "probe `{name}` needs exactly one of http, steps, tls, dns, tcp, postgres, redis, command"
        )));
    }
    // A probe's own network waits give up a little before the attempt's bound, so that its
    // failure names the host and the phase instead of the runner's bare "no result".
    let bound = spec.timeout.mul_f64(0.9);
    Ok(if let Some(c) = &spec.http {
        Arc::new(HttpProbe::build(name, std::slice::from_ref(c), ctx, clients)?.with_bound(bound))
    } else if let Some(steps) = &spec.steps {
        Arc::new(HttpProbe::build(name, steps, ctx, clients)?.with_bound(bound))
    } else if let Some(c) = &spec.tls {
        Arc::new(TlsProbe::from_spec(name, c, ctx)?)
    } else if let Some(c) = &spec.dns {
        Arc::new(DnsProbe::from_spec(name, c, ctx)?.with_bound(bound))
    } else if let Some(c) = &spec.tcp {
        Arc::new(TcpProbe::from_spec(name, c, ctx)?.with_bound(bound))
    } else if let Some(c) = &spec.postgres {
        Arc::new(PostgresProbe::from_spec(name, c, ctx)?.with_bound(bound))
    } else if let Some(c) = &spec.redis {
        Arc::new(RedisProbe::from_spec(name, c, ctx)?.with_bound(bound))
    } else if let Some(c) = &spec.command {
        Arc::new(CommandProbe::from_spec(name, c, ctx)?)
    } else {
        unreachable!("kinds() said exactly one kind is set")
    })
}
