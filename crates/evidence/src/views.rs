//! A run for people and for CI, next to JUnit: a self-contained HTML page, a Markdown
//! summary (GitHub's step summary) and `key=value` outputs (GitHub's `$GITHUB_OUTPUT`).
//!
//! Every text is redacted field by field before it is escaped, and the finished document
//! once more for registered forms only ([`Redactor::redact_forms`]): a secret is masked in
//! the form it had before escaping and in every encoded form the redactor knows after,
//! and the document's own markup is never rewritten.

use std::fmt::Write as _;

use staging_core::Redactor;
use staging_core::pipeline::{Finding, RunReport, StepReport, StepStatus};

/// A finished run and what the report shows beside its steps.
#[derive(Debug, Clone)]
pub struct RunView<'a> {
    /// The command that ran (`up`, `promote`, `smoke`).
    pub command: &'a str,
    /// The run.
    pub report: &'a RunReport,
    /// Each resolved service and its URL, when it has one.
    pub services: Vec<(String, Option<String>)>,
    /// The id of the evidence recorded for the run, when one was.
    pub evidence_id: Option<String>,
    /// The redactor (the run's own, which knows every value the run resolved).
    pub redactor: &'a Redactor,
}

impl RunView<'_> {
    fn r(&self, s: &str) -> String {
        self.redactor.redact(s).into_owned()
    }

    fn verdict(&self) -> &'static str {
        if self.report.ok { "PASSED" } else { "FAILED" }
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn status_word(status: &StepStatus) -> &'static str {
    match status {
        StepStatus::Passed => "passed",
        StepStatus::Failed => "failed",
        StepStatus::Error => "error",
        StepStatus::Skipped => "skipped",
    }
}

fn finding_word(f: &Finding) -> &'static str {
    if f.skipped {
        "skipped"
    } else if f.ok {
        "passed"
    } else if f.errored {
        "error"
    } else {
        "failed"
    }
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#1b1f24}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #d0d7de;padding:.35em .6em;text-align:left;vertical-align:top}\
th{background:#f6f8fa}code{font-family:ui-monospace,monospace;font-size:.95em}\
.passed{color:#1a7f37}.failed,.error{color:#cf222e;font-weight:600}.skipped{color:#6e7781}\
.verdict{display:inline-block;padding:.15em .6em;border-radius:.3em;color:#fff}\
.verdict.passed{background:#1a7f37;color:#fff}.verdict.failed{background:#cf222e;color:#fff}\
tr.bad td{background:#ffebe9}pre{white-space:pre-wrap;margin:0}";

/// The run as one self-contained HTML page (inline style, no script, no external
/// resource): the verdict, the commit, the evidence id, the services and their URLs, each
/// step with its duration, and each finding (probe) with expected and observed values.
pub fn html(view: &RunView<'_>) -> String {
    let run = view.report;
    let r = |s: &str| esc(&view.r(s));
    let mut h = String::new();
    let title = format!(
        "staging {} {} on {}: {}",
        view.command,
        run.project,
        run.environment,
        view.verdict()
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<title>{}</title><style>{STYLE}</style></head><body>\n",
        r(&title)
    );
    let verdict_class = if run.ok { "passed" } else { "failed" };
    let _ = writeln!(
        h,
        "<h1>staging {} <code>{}</code> on <code>{}</code> <span class=\"verdict {verdict_class}\" id=\"verdict\">{}</span></h1>",
        r(view.command),
        r(&run.project),
        r(&run.environment),
        view.verdict()
    );
    let _ = writeln!(
        h,
        "<table id=\"run\"><tr><th>commit</th><td><code>{}</code></td></tr>\
<tr><th>evidence</th><td><code>{}</code></td></tr>\
<tr><th>spec hash</th><td><code>{}</code></td></tr>\
<tr><th>started</th><td>{}</td></tr><tr><th>finished</th><td>{}</td></tr></table>",
        r(&run.commit),
        r(view.evidence_id.as_deref().unwrap_or("none recorded")),
        r(&run.spec_hash),
        r(&run.started_at),
        r(&run.finished_at)
    );
    h.push_str("<h2>Services</h2>\n<table id=\"services\"><tr><th>service</th><th>URL</th></tr>\n");
    if view.services.is_empty() {
        h.push_str("<tr><td colspan=\"2\">none resolved</td></tr>\n");
    }
    for (name, url) in &view.services {
        let url = match url {
            Some(u) => format!("<code>{}</code>", r(u)),
            None => "-".to_owned(),
        };
        let _ = writeln!(h, "<tr><td>{}</td><td>{url}</td></tr>", r(name));
    }
    h.push_str("</table>\n<h2>Steps</h2>\n<table id=\"steps\"><tr><th>step</th><th>status</th><th>duration</th><th>summary</th></tr>\n");
    for step in &run.steps {
        let word = status_word(&step.status);
        let bad = if matches!(step.status, StepStatus::Failed | StepStatus::Error) {
            " class=\"bad\""
        } else {
            ""
        };
        let _ = writeln!(
            h,
            "<tr{bad}><td>{}</td><td class=\"{word}\">{word}</td><td>{} ms</td><td><pre>{}</pre></td></tr>",
            r(&step.step),
            step.duration_ms,
            r(&step.summary)
        );
    }
    h.push_str("</table>\n");
    for step in run.steps.iter().filter(|s| !s.findings.is_empty()) {
        findings_table(&mut h, view, step);
    }
    h.push_str("</body></html>\n");
    view.redactor.redact_forms(&h).into_owned()
}

fn findings_table(h: &mut String, view: &RunView<'_>, step: &StepReport) {
    let r = |s: &str| esc(&view.r(s));
    let _ = write!(
        h,
        "<h2>{} findings</h2>\n<table class=\"findings\" id=\"findings-{}\"><tr><th>name</th><th>status</th><th>expected</th><th>observed</th><th>time</th><th>message</th></tr>\n",
        r(&step.step),
        r(&step.step)
    );
    for f in &step.findings {
        let word = finding_word(f);
        let bad = if !f.ok { " class=\"bad\"" } else { "" };
        let _ = writeln!(
            h,
            "<tr{bad}><td>{}</td><td class=\"{word}\">{word}</td><td><pre>{}</pre></td><td><pre>{}</pre></td><td>{}</td><td><pre>{}</pre></td></tr>",
            r(&f.name),
            r(f.expected.as_deref().unwrap_or("")),
            r(f.observed.as_deref().unwrap_or("")),
            f.duration_ms
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_default(),
            r(&f.message)
        );
    }
    h.push_str("</table>\n");
}

/// Markdown table cells: one line, `|` escaped.
fn cell(s: &str) -> String {
    s.replace(['\n', '\r'], " ").replace('|', "\\|")
}

/// A Markdown summary of the run for a CI page (`$GITHUB_STEP_SUMMARY`): the verdict,
/// commit, evidence id, services, steps with durations, and each failed finding with
/// expected and observed.
pub fn markdown_summary(view: &RunView<'_>) -> String {
    let run = view.report;
    let r = |s: &str| cell(&view.r(s));
    let mark = if run.ok { "✅" } else { "❌" };
    let mut m = String::new();
    let _ = writeln!(
        m,
        "### {mark} staging {} `{}` on `{}`: {}\n",
        r(view.command),
        r(&run.project),
        r(&run.environment),
        view.verdict()
    );
    let _ = writeln!(
        m,
        "commit `{}` · evidence `{}`\n",
        r(&run.commit),
        r(view.evidence_id.as_deref().unwrap_or("none recorded"))
    );
    if !view.services.is_empty() {
        m.push_str("| service | URL |\n|---|---|\n");
        for (name, url) in &view.services {
            let _ = writeln!(m, "| {} | {} |", r(name), r(url.as_deref().unwrap_or("-")));
        }
        m.push('\n');
    }
    m.push_str("| step | status | duration | summary |\n|---|---|---|---|\n");
    for step in &run.steps {
        let _ = writeln!(
            m,
            "| {} | {} | {} ms | {} |",
            r(&step.step),
            status_word(&step.status),
            step.duration_ms,
            r(step.summary.lines().next().unwrap_or_default())
        );
    }
    let failed: Vec<(&StepReport, &Finding)> = run
        .steps
        .iter()
        .flat_map(|s| s.findings.iter().map(move |f| (s, f)))
        .filter(|(_, f)| !f.ok)
        .collect();
    if !failed.is_empty() {
        m.push_str("\n| failed | expected | observed |\n|---|---|---|\n");
        for (step, f) in failed {
            let _ = writeln!(
                m,
                "| {}: {} | {} | {} |",
                r(&step.step),
                r(&f.name),
                r(f.expected.as_deref().unwrap_or("")),
                r(f.observed.as_deref().unwrap_or(&f.message))
            );
        }
    }
    m.push('\n');
    view.redactor.redact_forms(&m).into_owned()
}

/// The run as step outputs (`$GITHUB_OUTPUT` lines): `ok`, `evidence-id`, `commit`,
/// `environment`, and `url-<service>` for each service with a URL (the service name with
/// every character other than `[A-Za-z0-9_-]` replaced by `-`).
pub fn github_outputs(view: &RunView<'_>) -> String {
    let run = view.report;
    let one_line = |s: &str| view.r(s).replace(['\n', '\r'], " ");
    let mut o = String::new();
    let _ = writeln!(o, "ok={}", run.ok);
    let _ = writeln!(
        o,
        "evidence-id={}",
        one_line(view.evidence_id.as_deref().unwrap_or(""))
    );
    let _ = writeln!(o, "commit={}", one_line(&run.commit));
    let _ = writeln!(o, "environment={}", one_line(&run.environment));
    for (name, url) in &view.services {
        if let Some(url) = url {
            let key: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            let _ = writeln!(o, "url-{key}={}", one_line(url));
        }
    }
    view.redactor.redact_forms(&o).into_owned()
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;
    use staging_core::pipeline::{Finding, RunReport, StepReport};

    use super::*;

    const CANARY: &str = "views-canary-5e6f7a8b9c";

    fn run() -> RunReport {
        RunReport {
            ok: false,
            project: "shop".into(),
            environment: "staging".into(),
            commit: "a".repeat(40),
            effective_spec_hash: "e".into(),
            spec_hash: "h".into(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            finished_at: "2026-01-01T00:05:00.000Z".into(),
            steps: vec![
                StepReport::passed("validate", "spec is valid"),
                StepReport::from_findings(
                    "smoke",
                    "1 passed, 1 failed",
                    vec![
                        Finding::ok("health", "200"),
                        Finding::failed("login <flow>", format!("http probe failed {CANARY}"))
                            .with_evidence("status 200", format!("status 500 {CANARY}")),
                    ],
                ),
            ],
        }
    }

    fn view<'a>(report: &'a RunReport, redactor: &'a Redactor) -> RunView<'a> {
        RunView {
            command: "up",
            report,
            services: vec![
                ("web".into(), Some("http://127.0.0.1:8080/".into())),
                ("worker".into(), None),
            ],
            evidence_id: Some("aaaa/staging-1.json".into()),
            redactor,
        }
    }

    fn redactor() -> Redactor {
        let r = Redactor::new();
        r.register(&SecretString::from(CANARY.to_owned()));
        r
    }

    #[test]
    fn the_page_escapes_markup_and_shows_no_secret() {
        let report = run();
        let redactor = redactor();
        let page = html(&view(&report, &redactor));
        assert!(page.contains("login &lt;flow&gt;"), "{page}");
        assert!(page.contains("status 500"), "{page}");
        assert!(page.contains("aaaa/staging-1.json"), "{page}");
        assert!(!page.contains(CANARY), "{page}");
        assert!(!page.contains("http-equiv=\"refresh\""));
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("src="), "no external resource: {page}");
    }

    #[test]
    fn outputs_name_every_service_url_and_the_evidence() {
        let report = run();
        let redactor = redactor();
        let out = github_outputs(&view(&report, &redactor));
        assert!(out.contains("ok=false\n"), "{out}");
        assert!(out.contains("evidence-id=aaaa/staging-1.json\n"), "{out}");
        assert!(out.contains("url-web=http://127.0.0.1:8080/\n"), "{out}");
        assert!(!out.contains("url-worker"), "{out}");
        let md = markdown_summary(&view(&report, &redactor));
        assert!(md.contains("FAILED"), "{md}");
        assert!(md.contains("| smoke: login <flow> | status 200 |"), "{md}");
        assert!(!md.contains(CANARY), "{md}");
    }
}
