//! Everything the CLI prints goes through here: redacted, coloured only when wanted, JSON
//! as one document on stdout.

use std::io::{IsTerminal, Write};

use serde::Serialize;
use staging_core::Redactor;
use staging_core::pipeline::{RunReport, StepReport, StepStatus};

/// How to print.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
    pub(crate) color: bool,
}

impl Output {
    pub(crate) fn new(json: bool, no_color: bool) -> Self {
        let color = !no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::stdout().is_terminal();
        Output { json, color }
    }

    /// Print a line on stdout, redacted.
    pub(crate) fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", Redactor::global().redact(text));
    }

    /// Print a line on stderr, redacted.
    pub(crate) fn note(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", Redactor::global().redact(text));
    }

    /// Print one JSON document on stdout, redacted.
    pub(crate) fn json<T: Serialize>(&self, value: &T) {
        let text = serde_json::to_string_pretty(value)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        self.line(&text);
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
    pub(crate) fn step(&self, report: &StepReport) {
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
            self.json(report);
            return;
        }
        let verdict = if report.ok {
            self.paint("32;1", "PASSED")
        } else {
            self.paint("31;1", "FAILED")
        };
        let passed = report
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Passed)
            .count();
        self.line(&format!(
            "{verdict}: {passed} of {} steps passed",
            report.steps.len()
        ));
    }
}
