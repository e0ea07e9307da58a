//! Everything the CLI prints goes through here: redacted, coloured only when wanted, JSON
//! as one document on stdout.
//!
//! With `--json` every command, whether it succeeds or fails (usage errors included),
//! prints exactly one document, the envelope described by `docs/json-output.schema.json`:
//! `{ "ok", "command", "version", ...the command's fields..., "error" }`. Commands hand
//! their fields to [`Output::json`]; the envelope is written once, by [`emit`], when the
//! exit code is known (`ok` is `exit code == 0`), so no command can forget a field.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Map, Value};
use staging_core::pipeline::{RunReport, StepReport, StepStatus};
use staging_core::{Error, Redactor};

/// When to colour: `--color`, `--no-color`, `NO_COLOR`, `CLICOLOR_FORCE`, and whether the
/// stream is a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colour when the stream is a terminal (and neither `NO_COLOR` nor `--no-color` says
    /// otherwise), or when `CLICOLOR_FORCE` is set to anything but `0`.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream that is (`is_terminal`) or is not a terminal. An explicit
    /// `--color always|never` wins; then `NO_COLOR`, then `CLICOLOR_FORCE`, then the terminal.
    pub(crate) fn enabled(self, is_terminal: bool) -> bool {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto if set("NO_COLOR") => false,
            ColorChoice::Auto if set("CLICOLOR_FORCE") => true,
            ColorChoice::Auto => is_terminal,
        }
    }
}

/// How to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
    pub(crate) color: bool,
}

/// The command's own fields, waiting for the exit code; and whether the envelope is out.
#[derive(Debug, Default)]
struct Pending {
    command: String,
    fields: Map<String, Value>,
    error: Option<Value>,
    emitted: bool,
    /// The command printed JSON lines on stdout (`logs --json`): the envelope, its summary,
    /// goes to stderr so that every stdout line stays one JSON document.
    streamed: bool,
}

static PENDING: Mutex<Option<Pending>> = Mutex::new(None);

fn pending<T>(f: impl FnOnce(&mut Pending) -> T) -> T {
    let mut guard = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(Pending::default))
}

/// Name the command the envelope is of (`up`, `evidence list`), once it is parsed.
pub(crate) fn set_command(command: &str) {
    pending(|p| p.command = command.to_owned());
}

/// The `error` member of the envelope: `kind` (an [`Error`] kind in snake case, or
/// `usage` for a command line clap refused), `message`, and `location` (`file:line:col`,
/// or null).
pub(crate) fn error_value(kind: &str, message: &str, location: Option<&str>) -> Value {
    serde_json::json!({ "kind": kind, "message": message, "location": location })
}

/// The envelope of an [`Error`].
pub(crate) fn error_of(e: &Error) -> Value {
    let location = match e {
        Error::ConfigInvalid { location, .. } => location.as_deref(),
        _ => None,
    };
    error_value(e.kind(), &e.to_string(), location)
}

/// Record the error of a failed command for the envelope.
pub(crate) fn set_error(error: Value) {
    pending(|p| p.error = Some(error));
}

/// Print the envelope on stdout (on stderr after JSON lines, see [`Output::json_line`]),
/// redacted field by field before it is serialized, unless it is already out: `ok` is
/// `code == 0`. Called by `main` once the command returned, and earlier by a command that
/// keeps running after its result is known (`up --keep-running`). A second call does
/// nothing, so stdout always holds exactly one document.
pub(crate) fn emit(code: u8) {
    let document = pending(|p| {
        if p.emitted {
            return None;
        }
        p.emitted = true;
        Some((
            envelope(&p.command, code, &p.fields, p.error.as_ref()),
            p.streamed,
        ))
    });
    if let Some((mut document, streamed)) = document {
        // Redact first, then shape: the document stays valid JSON whatever a field holds.
        Redactor::global().redact_json(&mut document);
        let text = serde_json::to_string_pretty(&document)
            .unwrap_or_else(|e| format!("{{\"ok\": false, \"error\": {:?}}}", e.to_string()));
        if streamed {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        } else {
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
    }
}

/// The envelope itself: `ok`, `command`, `version` first, then the command's fields, then
/// `error` (null on success). A failed command without a recorded error gets one naming
/// its exit code, so `error` is an object exactly when `ok` is false.
fn envelope(command: &str, code: u8, fields: &Map<String, Value>, error: Option<&Value>) -> Value {
    let mut doc = Map::new();
    doc.insert("ok".into(), Value::Bool(code == 0));
    doc.insert("command".into(), Value::String(command.to_owned()));
    doc.insert(
        "version".into(),
        Value::String(env!("CARGO_PKG_VERSION").to_owned()),
    );
    for (k, v) in fields {
        if !matches!(k.as_str(), "ok" | "command" | "version" | "error") {
            doc.insert(k.clone(), v.clone());
        }
    }
    let error = match (code, error) {
        (0, _) => Value::Null,
        (_, Some(e)) => e.clone(),
        (code, None) => error_value(
            match code {
                1 => "failed",
                2 => "usage",
                130 => "interrupted",
                _ => "cannot_proceed",
            },
            &format!("`staging {command}` exited with code {code}; see the fields above"),
            None,
        ),
    };
    doc.insert("error".into(), error);
    Value::Object(doc)
}

impl Output {
    pub(crate) fn new(json: bool, color: ColorChoice) -> Self {
        let color = color.enabled(std::io::stdout().is_terminal());
        Output { json, color }
    }

    /// Print a line on stdout, redacted.
    pub(crate) fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", Redactor::global().redact(text));
    }

    /// Say that this command prints JSON lines on stdout: its envelope goes to stderr, even
    /// when no line was printed.
    pub(crate) fn stream_json_lines(&self) {
        pending(|p| p.streamed = true);
    }

    /// Print one JSON document as one line on stdout, redacted field by field before it is
    /// serialized; the envelope then goes to stderr, so stdout holds JSON lines only.
    pub(crate) fn json_line(&self, value: &Value) {
        pending(|p| p.streamed = true);
        let mut value = value.clone();
        Redactor::global().redact_json(&mut value);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
    }

    /// Print a line on stderr, redacted.
    pub(crate) fn note(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", Redactor::global().redact(text));
    }

    /// The command's fields for the JSON envelope (an object's members; anything else
    /// becomes `result`). Printed by [`emit`] once the exit code is known.
    pub(crate) fn json<T: Serialize>(&self, value: &T) {
        let fields = match serde_json::to_value(value) {
            Ok(Value::Object(map)) => map,
            Ok(other) => Map::from_iter([("result".to_owned(), other)]),
            Err(e) => Map::from_iter([(
                "result".to_owned(),
                Value::String(format!("cannot serialize the result: {e}")),
            )]),
        };
        pending(|p| p.fields.extend(fields));
    }

    /// A failure that is not an [`Error`] value (nothing running to probe, a refused
    /// promotion): said on stderr, or recorded as the envelope's `error`.
    pub(crate) fn fail(&self, kind: &str, message: &str) {
        if self.json {
            set_error(error_value(kind, message, None));
        } else {
            self.note(&format!("error: {message}"));
        }
    }

    pub(crate) fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub(crate) fn mark(&self, status: &StepStatus) -> String {
        match status {
            StepStatus::Passed => self.paint("32", "ok  "),
            StepStatus::Failed => self.paint("31", "FAIL"),
            StepStatus::Error => self.paint("31;1", "ERR "),
            StepStatus::Skipped => self.paint("2", "skip"),
        }
    }

    /// The human form of one step's report.
    pub(crate) fn show_step(&self, report: &StepReport) {
        self.line(&format!(
            "{} {:<9} {} {}",
            self.mark(&report.status),
            report.step,
            report.summary.lines().next().unwrap_or_default(),
            self.paint("2", &format!("({} ms)", report.duration_ms))
        ));
        for extra in report.summary.lines().skip(1) {
            self.line(&format!("               {extra}"));
        }
        for f in &report.findings {
            let mark = if f.ok {
                self.paint("32", "+")
            } else {
                self.paint("31", "x")
            };
            let mut lines = f.message.lines();
            self.line(&format!(
                "       {mark} {}: {}",
                f.name,
                lines.next().unwrap_or_default()
            ));
            for l in lines {
                self.line(&format!("           {l}"));
            }
            if let (false, Some(e), Some(o)) = (f.ok, &f.expected, &f.observed) {
                self.line(&format!("           expected: {e}"));
                self.line(&format!("           observed: {o}"));
            }
        }
    }

    /// A run's report as the envelope's fields; a failed run's `error` names its first
    /// failed step.
    pub(crate) fn run_json(&self, report: &RunReport) {
        self.json(report);
        if let Some(step) = report
            .steps
            .iter()
            .find(|s| matches!(s.status, StepStatus::Failed | StepStatus::Error))
        {
            let kind = match step.status {
                StepStatus::Error => "cannot_proceed",
                _ => "failed",
            };
            let first = step.summary.lines().next().unwrap_or_default();
            set_error(error_value(kind, &format!("{}: {first}", step.step), None));
        }
    }

    /// The first line of a run, before its steps stream in (human output only).
    pub(crate) fn run_header(&self, project: &str, environment: &str, commit: &str) {
        if !self.json {
            self.line(&format!(
                "{} {project} on {environment} at {}",
                self.paint("1", "staging up"),
                &commit[..commit.len().min(12)]
            ));
        }
    }

    /// The end of a run: the JSON document, or (the steps having been shown as they
    /// ended) the verdict.
    pub(crate) fn run(&self, report: &RunReport) {
        if self.json {
            self.run_json(report);
            emit(report.exit_code());
            return;
        }
        let verdict = if report.ok {
            self.paint("32;1", "PASSED")
        } else {
            self.paint("31;1", "FAILED")
        };
        self.line(&format!("{verdict}: {}", step_counts(report)));
    }
}

/// How many steps passed of those that ran, and how many were skipped: a passing run with a
/// step that had nothing to do reads `10 of 10 steps passed, 1 skipped`, not `10 of 11`.
fn step_counts(report: &RunReport) -> String {
    let count = |status: StepStatus| report.steps.iter().filter(|s| s.status == status).count();
    let (passed, skipped) = (count(StepStatus::Passed), count(StepStatus::Skipped));
    let ran = report.steps.len() - skipped;
    match skipped {
        0 => format!("{passed} of {ran} steps passed"),
        _ => format!("{passed} of {ran} steps passed, {skipped} skipped"),
    }
}

#[cfg(test)]
mod tests {
    use staging_core::pipeline::{RunReport, StepReport};

    use super::step_counts;

    fn run(steps: Vec<StepReport>) -> RunReport {
        RunReport {
            ok: true,
            project: "p".into(),
            environment: "e".into(),
            commit: "c".into(),
            spec_hash: "h".into(),
            effective_spec_hash: "h".into(),
            started_at: String::new(),
            finished_at: String::new(),
            steps,
        }
    }

    #[test]
    fn a_skipped_step_is_not_counted_as_one_that_did_not_pass() {
        let passing = run(vec![
            StepReport::passed("validate", "ok"),
            StepReport::skipped("migrate", "no databases"),
            StepReport::passed("smoke", "ok"),
        ]);
        assert_eq!(step_counts(&passing), "2 of 2 steps passed, 1 skipped");
        let all = run(vec![StepReport::passed("validate", "ok")]);
        assert_eq!(step_counts(&all), "1 of 1 steps passed");
        let failed = run(vec![
            StepReport::passed("validate", "ok"),
            StepReport::error("deploy", &staging_core::Error::failed("boom")),
            StepReport::skipped("smoke", "an earlier step failed"),
        ]);
        assert_eq!(step_counts(&failed), "1 of 2 steps passed, 1 skipped");
    }
}
