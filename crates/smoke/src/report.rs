//! The three renderings of a [`SmokeReport`]: a human table, JSON, JUnit XML. Each redacts
//! the report field by field before rendering and the rendered text once more after, so a
//! secret is masked even where escaping would hide it from a plain text search.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use staging_core::{Error, Redactor, Result};

use crate::probes::fmt_duration;
use crate::runner::{ProbeStatus, SmokeReport};

/// Whether to colour human output: not when `NO_COLOR` is set (to anything but the empty
/// string), and only when stdout is a terminal.
pub fn color_from_env() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// A summary table, then the expected/observed and evidence of each failure, then one line
/// of counts. Colour only when `color` (see [`color_from_env`]).
pub fn render_human(report: &SmokeReport, redactor: &Redactor, color: bool) -> String {
    let report = report.redacted(redactor);
    let paint = Paint(color);
    let name_w = report
        .probes
        .iter()
        .map(|p| p.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(5);
    let kind_w = report
        .probes
        .iter()
        .map(|p| p.kind.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = String::new();
    out.push_str(&format!(
        "{:<6} {:<name_w$}  {:<kind_w$}  {:>8}  DETAIL\n",
        "STATUS", "PROBE", "KIND", "TIME"
    ));
    for p in &report.probes {
        let (label, code) = match p.status {
            ProbeStatus::Passed => ("PASS", "32"),
            ProbeStatus::Failed => ("FAIL", "31;1"),
            ProbeStatus::Skipped => ("SKIP", "33"),
        };
        let detail = match p.status {
            ProbeStatus::Passed => p.detail.clone().unwrap_or_default(),
            ProbeStatus::Failed => p.observed.clone().unwrap_or_default(),
            ProbeStatus::Skipped => p.reason.clone().unwrap_or_default(),
        };
        let time = if p.status == ProbeStatus::Skipped {
            "-".to_owned()
        } else {
            fmt_duration(Duration::from_millis(p.duration_ms))
        };
        out.push_str(&format!(
            "{} {:<name_w$}  {:<kind_w$}  {:>8}  {}\n",
            paint.wrap(code, &format!("{label:<6}")),
            p.name,
            p.kind,
            time,
            one_line(redactor, &detail, 100)
        ));
    }
    for p in report.failures() {
        out.push_str(&format!(
            "\n{} {}\n",
            paint.wrap("31;1", "✗"),
            paint.wrap("1", &p.name)
        ));
        out.push_str(&format!(
            "    expected: {}\n",
            p.expected.as_deref().unwrap_or("")
        ));
        out.push_str(&format!(
            "    observed: {}\n",
            p.observed.as_deref().unwrap_or("")
        ));
        for (k, v) in &p.evidence {
            out.push_str(&format!("    {k}: {}\n", one_line(redactor, v, 300)));
        }
    }
    let s = report.summary;
    let counts = format!(
        "{} passed, {} failed, {} skipped in {}",
        s.passed,
        s.failed,
        s.skipped,
        fmt_duration(Duration::from_millis(report.duration_ms))
    );
    out.push('\n');
    out.push_str(&if report.ok {
        paint.wrap("32", &format!("smoke ok: {counts}"))
    } else {
        paint.wrap("31;1", &format!("smoke FAILED: {counts}"))
    });
    out.push('\n');
    redactor.redact(&out).into_owned()
}

/// `text` redacted (while its lines are still lines), on one line, then shortened.
fn one_line(redactor: &Redactor, text: &str, max: usize) -> String {
    redactor.shorten(&redactor.redact(text).replace(['\n', '\r'], " "), max)
}

/// The report as one pretty-printed JSON document: `ok`, `summary` (`passed`, `failed`,
/// `skipped`), and `probes`, each with `name`, `kind`, `ok`, `status`, `duration_ms`, and
/// `expected`/`observed` on failure.
pub fn render_json(report: &SmokeReport, redactor: &Redactor) -> String {
    let report = report.redacted(redactor);
    let text = serde_json::to_string_pretty(&report).expect("a report always serializes");
    // The fields are redacted; the document only for registered forms, so it stays JSON.
    redactor.redact_forms(&text).into_owned()
}

/// The report as JUnit XML valid against `junit-10.xsd`: one test suite `smoke` (with
/// `timestamp` and `hostname`), one test case per probe (`smoke: NAME` in class
/// `staging.ENV.smoke`, as `up`'s JUnit names it; with its `time`), failures with expected/observed as the message and the evidence as the
/// description, a probe that could not run as `<error>`, skipped probes as skipped.
pub fn render_junit(report: &SmokeReport, redactor: &Redactor) -> Result<String> {
    let report = report.redacted(redactor);
    let suite_name = match &report.environment {
        Some(env) => format!("smoke ({env})"),
        None => "smoke".to_owned(),
    };
    let mut suite = TestSuite::new(suite_name.as_str());
    suite.set_time(Duration::from_millis(report.duration_ms));
    let started = std::time::SystemTime::now() - Duration::from_millis(report.duration_ms);
    suite.extra.insert(
        "timestamp".into(),
        humantime::format_rfc3339_millis(started).to_string().into(),
    );
    suite
        .extra
        .insert("hostname".into(), staging_core::junit::hostname().into());
    for p in &report.probes {
        let status = match p.status {
            ProbeStatus::Passed => TestCaseStatus::success(),
            ProbeStatus::Failed => {
                let kind = if p.errored {
                    NonSuccessKind::Error
                } else {
                    NonSuccessKind::Failure
                };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_message(format!(
                    "expected {}; observed {}",
                    p.expected.as_deref().unwrap_or(""),
                    p.observed.as_deref().unwrap_or("")
                ));
                s.set_type(p.kind.as_str());
                let evidence: Vec<String> = p
                    .evidence
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                if !evidence.is_empty() {
                    s.set_description(evidence.join("\n"));
                }
                s
            }
            ProbeStatus::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(p.reason.as_deref().unwrap_or("skipped"));
                s
            }
        };
        // Named as in the JUnit of `up` and `promote` (a case per finding of the `smoke`
        // step: `smoke: NAME` in `staging.ENV.smoke`), so CI tracks one probe as one test
        // whichever command ran it.
        let mut case = TestCase::new(format!("smoke: {}", p.name), status);
        case.set_classname(match &report.environment {
            Some(env) => format!("staging.{env}.smoke"),
            None => "staging.smoke".to_owned(),
        });
        case.set_time(Duration::from_millis(p.duration_ms));
        if let Some(detail) = &p.detail {
            case.set_system_out(detail.as_str());
        }
        suite.add_test_case(case);
    }
    let mut junit = Report::new("staging");
    junit.set_time(Duration::from_millis(report.duration_ms));
    junit.add_test_suite(suite);
    let xml = junit
        .to_string()
        .map_err(|e| Error::failed(format!("cannot render JUnit XML: {e}")))?;
    Ok(redactor
        .redact_forms(&staging_core::junit::junit10(&xml))
        .into_owned())
}

/// [`render_junit`] written to `path`.
pub fn write_junit(report: &SmokeReport, redactor: &Redactor, path: &Path) -> Result<()> {
    let xml = render_junit(report, redactor)?;
    std::fs::write(path, xml)
        .map_err(|e| Error::io(format!("cannot write JUnit report {}", path.display()), e))
}
