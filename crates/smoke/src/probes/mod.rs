//! The probe kinds. Each file is one kind; each probe is built from its spec table and a
//! run context, and implements [`staging_core::Probe`].

pub(crate) mod command;
pub(crate) mod dns;
pub(crate) mod http;
pub(crate) mod postgres;
pub(crate) mod redis;
pub(crate) mod tcp;
pub(crate) mod tls;

/// An error and its sources on one line (`error sending request: connection refused`).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

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
