//! # staging-smoke
//!
//! The smoke checks the runbooks did by hand, as code: probes, a runner, and reports.
//!
//! ## Why it is shaped so
//!
//! - **One probe, one check, one piece of evidence.** Every probe kind (http, chained http
//!   steps, tls, dns, tcp, postgres, redis, command) implements
//!   [`staging_core::Probe`] and answers with a [`staging_core::ProbeOutcome`]: pass/fail,
//!   what was expected, what was observed, how long it took, and extra facts (certificate
//!   subject, resolved addresses, the status and body excerpt of a response). A failing
//!   probe is an `Ok` outcome with `ok: false`; `Err` is kept for probes that cannot be set
//!   up at all, so the runner can tell "the site is down" from "the spec is wrong".
//! - **Built from the spec, at run time.** [`build_probes`] turns the spec's `[[probes]]`
//!   into probes for one environment. Templates (`${services.web.url}`, `${vars.X}`,
//!   `${capture.token}`) are checked when the probes are built, so a typo fails before
//!   anything is sent, but they are filled in only when a request is sent: secret values
//!   stay in [`secrecy::SecretString`] until then.
//! - **A runner that is just concurrency, time and retries.** [`Runner`] runs independent
//!   probes in parallel under a bound, each attempt under its own timeout, retrying a
//!   failing probe with backoff until its `retry_for` deadline ("wait until healthy"), and
//!   can stop at the first failure. A chained flow (log in, then use the token) is *one*
//!   probe whose steps run in order, so ordering never leaks into the runner.
//! - **One report, three renderings, one redactor.** [`SmokeReport`] is redacted when it is
//!   built and again when it is rendered as a human table ([`render_human`]), JSON
//!   ([`render_json`]) or JUnit XML ([`render_junit`]), so no secret or URL password
//!   reaches a terminal or a CI artifact.
//! - **A pipeline step.** [`SmokeStep`] is the `smoke` step of `staging up`; the CLI's
//!   `staging smoke` runs the same step and renders the report it kept.
//!
//! HTTP clients and TLS configurations are shared between probes that use the same
//! settings, so a thousand probes against one host reuse connections instead of paying a
//! handshake and a root-store load each (see `docs/benchmarks.md`).
#![deny(missing_docs)]

mod build;
mod probes;
mod report;
mod runner;
mod step;
mod template;
mod tls_config;

pub use build::{BuiltProbes, SkippedProbe, build_probes};
pub use probes::command::CommandProbe;
pub use probes::dns::DnsProbe;
pub use probes::http::HttpProbe;
pub use probes::postgres::PostgresProbe;
pub use probes::redis::RedisProbe;
pub use probes::tcp::TcpProbe;
pub use probes::tls::TlsProbe;
pub use report::{color_from_env, render_human, render_json, render_junit, write_junit};
pub use runner::{
    ProbeReport, ProbeStatus, Runner, RunnerOptions, ScheduledProbe, SmokeReport, Summary,
};
pub use step::{SmokeStep, step_report};

/// Install aws-lc-rs as the process-wide rustls crypto provider, if none is installed yet.
///
/// The probes build their TLS configurations with aws-lc-rs explicitly, so this only matters
/// to other rustls users in the same process; it is called before any TLS configuration is
/// built, and is safe to call any number of times.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
