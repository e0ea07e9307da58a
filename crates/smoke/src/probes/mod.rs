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

/// At most `max` characters of `text`, marked when cut.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let cut: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// A duration for people: `12ms`, `1.20s`.
pub(crate) fn fmt_duration(d: std::time::Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}
