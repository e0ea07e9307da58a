//! Logs on stderr, through the redactor.

use std::io::{IsTerminal, Write};

use staging_core::Redactor;

use crate::output::ColorChoice;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// A stderr writer that redacts each write; the fmt layer writes one event per call.
#[derive(Debug, Clone, Copy)]
struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr()
            .lock()
            .write_all(Redactor::global().redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingStderr;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// The crates of this workspace, as log targets: `staging` (this binary) is a prefix of
/// every `staging_*` library crate, so one directive selects them all.
const OWN: &str = "staging";

/// The filter for `-v` counts: warnings by default; `-v` info from this project's crates
/// (what the tool does: each step's decisions, each provider call summarised); `-vv` debug
/// from them; `-vvv` debug from everything (HTTP, TLS and SDK libraries included), `-vvvv`
/// trace. Libraries stay at warn below `-vvv`. `RUST_LOG` wins when set; targets are the
/// crate names (`RUST_LOG=staging_provider_render=debug`).
pub(crate) fn filter_for(verbose: u8) -> String {
    match verbose {
        0 => "warn".to_owned(),
        1 => format!("warn,{OWN}=info"),
        2 => format!("warn,{OWN}=debug"),
        3 => "debug".to_owned(),
        _ => "trace".to_owned(),
    }
}

/// Install the subscriber: redacted, on stderr, targets shown, ANSI only when `color` says
/// so for stderr (never when stderr is not a terminal, unless forced).
pub(crate) fn init(verbose: u8, color: ColorChoice) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::new(directives),
        _ => EnvFilter::new(filter_for(verbose)),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactingStderr)
        .with_target(true)
        .with_ansi(color.enabled(std::io::stderr().is_terminal()))
        .try_init();
}
