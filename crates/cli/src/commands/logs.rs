//! `staging logs`: recent log lines of a service or one deploy, redacted; `--follow` polls
//! for new ones until Ctrl-C or SIGTERM.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use clap::Args;
use staging_core::{Capability, Error, LogLine, LogQuery, ProviderExt, Redactor, Result};

use super::up::StopSignals;
use crate::Global;
use crate::context::session;
use crate::output::Output;

/// The shortest pause between two polls of `--follow`, whatever the provider allows.
const MIN_FOLLOW_INTERVAL: Duration = Duration::from_secs(2);
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
    let spec = session.spec().clone();
    let env = session.environment(global.env.as_deref())?;
    let service = match &args.service {
        Some(s) => {
            if !spec.spec.services.contains_key(s) {
                let hint =
                    staging_core::spec::closest(s, spec.spec.services.keys().map(String::as_str))
                        .map(|c| format!("; did you mean `{c}`?"))
                        .unwrap_or_default();
                return Err(Error::config(format!(
                    "no service `{s}` in the spec{hint} (declared: {})",
                    spec.spec
                        .services
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            s.clone()
        }
        None => match spec.spec.services.keys().collect::<Vec<_>>().as_slice() {
            [one] => (*one).clone(),
            _ => {
                return Err(Error::config(format!(
                    "which service? pass --service (declared: {})",
                    spec.spec
                        .services
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        },
    };
    let factory = session.registry().clone().factory_for(&spec, &env)?;
    factory.check(&spec, &env)?;
    let provider = factory.build(&spec, &env)?;
    if !provider.capabilities().has(Capability::Logs) {
        return Err(Error::not_supported(
            provider.name(),
            format!("logs of `{service}` (see the provider's capabilities)"),
        ));
    }
    if out.json {
        out.stream_json_lines();
    }
    register_secrets(session.backends(), &spec, &env, out).await;
    let handle = provider.locate(&env, &service).await?;
    if provider.runs_services_in_process() && provider.live_state(&handle).await?.live.is_none() {
        // Nothing to read from: the run cannot proceed (exit 3), as `smoke` says.
        out.fail(
            "cannot_proceed",
            &super::not_running(provider.name(), &env, &[&service]),
        );
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
    let first = provider.logs(&handle, &query).await?;
    let mut shown: VecDeque<LogLine> = VecDeque::new();
    print_new(&service, first, &mut shown, out);
    let Some(stop) = stop.as_mut() else {
        return Ok(0);
    };
    let interval = provider.poll_interval().max(MIN_FOLLOW_INTERVAL);
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
            batch = provider.logs(&handle, &query) => batch,
        };
        match batch {
            Ok(batch) => print_new(&service, batch, &mut shown, out),
            // A rate limit or a passing outage does not end a follow; the next poll retries.
            Err(e) if e.is_retryable() => out.note(&format!("logs: {e}; retrying")),
            Err(e) => return Err(e),
        }
    }
}

/// Register the environment's secret values with the redactor, so that a line that prints
/// one is masked; a variable that cannot be read is noted, and the lines still print.
async fn register_secrets(
    backends: &staging_core::SecretBackends,
    spec: &staging_core::spec::LoadedSpec,
    env: &str,
    out: Output,
) {
    match staging_secrets::resolve_vars(backends, spec, env, None).await {
        Ok(resolved) => {
            for (name, value) in &resolved.values {
                Redactor::global().register_if_secret(
                    staging_core::secretness::Origin::Var {
                        spec: &spec.spec,
                        environment: env,
                        name,
                    },
                    value,
                );
            }
        }
        Err(e) => out.note(&format!(
            "note: the secrets of `{env}` could not all be read ({e}); only the values read and URL passwords are masked"
        )),
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
