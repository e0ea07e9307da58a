//! The probe kinds. Each file is one kind; each probe is built from its spec table and a
//! run context, and implements [`staging_core::Probe`].

pub(crate) mod command;
pub(crate) mod dns;
pub(crate) mod http;
pub(crate) mod postgres;
pub(crate) mod redis;
pub(crate) mod tcp;
pub(crate) mod tls;

pub(crate) use staging_core::error::error_chain;

/// The URL a database probe connects to: the run's value of `url_var`.
pub(crate) fn url_from_var(
    probe: &str,
    url_var: &str,
    ctx: &staging_core::pipeline::RunContext,
) -> staging_core::Result<secrecy::SecretString> {
    ctx.vars.get(url_var).cloned().ok_or_else(|| {
        staging_core::Error::config(format!(
            "probe `{probe}`: `{url_var}` has no value in environment {} (is the secrets step run before the smoke step?)",
            ctx.environment
        ))
    })
}

/// A duration for people: `12ms`, `1.20s`.
pub(crate) fn fmt_duration(d: std::time::Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}
