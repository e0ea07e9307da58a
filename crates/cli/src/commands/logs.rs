//! `staging logs`: recent log lines of a service or one deploy, redacted; `--follow` polls
//! for new ones until Ctrl-C or SIGTERM.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use clap::Args;
use staging::Located;
use staging_core::{LogLine, LogQuery, Redactor, Result};

use super::up::StopSignals;
use crate::Global;
use crate::context::session;
use crate::output::Output;

/// How many printed lines `--follow` remembers to tell new lines from ones already shown.
const REMEMBERED: usize = 1000;

/// Options of `logs`.
#[derive(Debug, Args, Clone)]
pub(crate) struct LogsArgs {
    /// The service (may be left out when the spec has one service).
    #[arg(long)]
    pub(crate) service: Option<String>,
    /// Only this deploy's lines (the provider's deploy id).
    #[arg(long, value_name = "ID")]
    pub(crate) deploy: Option<String>,
    /// At most this many lines, the newest.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub(crate) lines: u16,
    /// Only lines written in this last span of time (`15m`, `2h`).
    #[arg(long, value_name = "DUR", value_parser = staging_core::spec::duration::parse)]
    pub(crate) since: Option<Duration>,
    /// Keep printing new lines, polling within the provider's rate budget, until Ctrl-C or
    /// SIGTERM.
    #[arg(long)]
    pub(crate) follow: bool,
}

/// Print the lines, then follow when asked.
pub(crate) async fn run(global: &Global, args: &LogsArgs, out: Output) -> Result<u8> {
    let session = session(global)?;
    let env = session.environment(global.env.as_deref())?;
    let mut reader = session.logs(&env, args.service.as_deref())?;
    let service = reader.service().to_owned();
    if out.json {
        out.stream_json_lines();
    }
    if let Err(e) = session.mask_secrets(&env).await {
        out.note(&format!(
            "note: the secrets of `{env}` could not all be read ({e}); only the values read and URL passwords are masked"
        ));
    }
    if let Located::NotRunning(message) = reader.locate().await? {
        // Nothing to read from: the run cannot proceed (exit 3), as `smoke` says.
        out.fail("cannot_proceed", &message);
        return Ok(3);
    }
    let since = args.since.map(|d| SystemTime::now() - d);
    let query = LogQuery {
        deploy_id: args.deploy.clone(),
        lines: usize::from(args.lines),
        since,
    };
    // Listening before the first read: a SIGTERM that comes while it runs ends the follow
    // cleanly instead of killing the process.
    let mut stop = if args.follow {
        Some(StopSignals::listen()?)
    } else {
        None
    };
    let first = reader.read(&query).await?;
    let mut shown: VecDeque<LogLine> = VecDeque::new();
    print_new(&service, first, &mut shown, out);
    let Some(stop) = stop.as_mut() else {
        return Ok(0);
    };
    let interval = reader.poll_interval();
    loop {
        tokio::select! {
            _ = stop.wait() => return Ok(0),
            _ = tokio::time::sleep(interval) => {}
        }
        // From the newest line shown when it has a time; else the last lines, compared.
        let since = shown
            .back()
            .and_then(|l| l.at.as_deref())
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .or(since);
        let query = LogQuery {
            since,
            ..query.clone()
        };
        let batch = tokio::select! {
            _ = stop.wait() => return Ok(0),
            batch = reader.read(&query) => batch,
        };
        match batch {
            Ok(batch) => print_new(&service, batch, &mut shown, out),
            // A rate limit or a passing outage does not end a follow; the next poll retries.
            Err(e) if e.is_retryable() => out.note(&format!("logs: {e}; retrying")),
            Err(e) => return Err(e),
        }
    }
}

/// Print the lines of `batch` not shown yet: those after the longest run at its start that
/// repeats the end of what was shown.
fn print_new(service: &str, batch: Vec<LogLine>, shown: &mut VecDeque<LogLine>, out: Output) {
    let overlap = (0..=batch.len().min(shown.len()))
        .rev()
        .find(|&k| {
            shown
                .iter()
                .skip(shown.len() - k)
                .zip(&batch[..k])
                .all(|(a, b)| a == b)
        })
        .unwrap_or(0);
    for line in batch.into_iter().skip(overlap) {
        if out.json {
            // Redacted field by field, then serialized: every line stays one JSON document.
            let doc = serde_json::json!({ "service": service, "at": line.at, "line": line.text });
            out.json_line(&doc);
        } else {
            // Redact first, then shape (prefixes).
            let text = Redactor::global().redact(&line.text).into_owned();
            match &line.at {
                Some(at) => out.line(&format!("{at} {text}")),
                None => out.line(&text),
            }
        }
        if shown.len() == REMEMBERED {
            shown.pop_front();
        }
        shown.push_back(line);
    }
}
