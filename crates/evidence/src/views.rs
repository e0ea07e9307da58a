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

    /// `PASSED`, `REFUSED` (a promotion the gate refused: its `gate` step failed, nothing
    /// ran), or `FAILED`.
    fn verdict(&self) -> &'static str {
        if self.report.ok {
            "PASSED"
        } else if self.refused() {
            "REFUSED"
        } else {
            "FAILED"
        }
    }

    fn refused(&self) -> bool {
        self.report
            .steps
            .iter()
            .any(|s| s.step == "gate" && s.status == StepStatus::Failed)
    }

    /// Each step that failed without findings (its summary says why), and each finding
    /// that did not hold, in the order they happened.
    fn failures(&self) -> Vec<(&StepReport, Option<&Finding>)> {
        let mut out = vec![];
        for step in &self.report.steps {
            let failed = matches!(step.status, StepStatus::Failed | StepStatus::Error);
            let bad: Vec<&Finding> = step.findings.iter().filter(|f| !f.ok).collect();
            if bad.is_empty() && failed {
                out.push((step, None));
            }
            out.extend(bad.into_iter().map(|f| (step, Some(f))));
        }
        out
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
    failures_section(&mut h, view);
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

/// What went wrong, first on the page: each failed step's summary or failed finding with
/// expected, observed and what the check saw (the request, the start of the body); for a
/// refused promotion, the refusal.
fn failures_section(h: &mut String, view: &RunView<'_>) {
    let failures = view.failures();
    if failures.is_empty() {
        return;
    }
    let r = |s: &str| esc(&view.r(s));
    let title = if view.refused() {
        "Refused"
    } else {
        "Failures"
    };
    let _ = writeln!(
        h,
        "<h2>{title}</h2>\n<table id=\"failures\"><tr><th>step</th><th>check</th><th>status</th><th>expected</th><th>observed</th><th>what it saw</th></tr>"
    );
    for (step, finding) in failures {
        let word = match finding {
            Some(f) => finding_word(f),
            None => status_word(&step.status),
        };
        let (name, expected, observed, details) = match finding {
            Some(f) => (
                f.name.as_str(),
                f.expected.as_deref().unwrap_or(""),
                f.observed.as_deref().unwrap_or(f.message.as_str()),
                f.details
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            None => ("", "", step.summary.as_str(), String::new()),
        };
        let _ = writeln!(
            h,
            "<tr class=\"bad\"><td>{}</td><td>{}</td><td class=\"{word}\">{word}</td><td><pre>{}</pre></td><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
            r(&step.step),
            r(name),
            r(expected),
            r(observed),
            r(&details)
        );
    }
    h.push_str("</table>\n");
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

/// Markdown text: one line, and every character Markdown or HTML would read as markup
/// (`<b>`, `*`, `[x](y)`, `|`, an entity) escaped, so a probe named `<img src=x>` shows as
/// written.
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A Markdown code span of `s` on one line: fenced by more backticks than it holds, `|`
/// escaped (a table cell ends at a bare `|`, even in code).
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ").replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if longest == 0 {
        format!("{fence}{s}{fence}")
    } else {
        format!("{fence} {s} {fence}")
    }
}

/// A Markdown summary of the run for a CI page (`$GITHUB_STEP_SUMMARY`): the verdict,
/// commit, evidence id, services, steps with durations, and each failed finding with
/// expected and observed.
pub fn markdown_summary(view: &RunView<'_>) -> String {
    let run = view.report;
    let r = |s: &str| cell(&view.r(s));
    let c = |s: &str| code(&view.r(s));
    let mark = if run.ok { "✅" } else { "❌" };
    let mut m = String::new();
    let _ = writeln!(
        m,
        "### {mark} staging {} {} on {}: {} (exit {})\n",
        r(view.command),
        c(&run.project),
        c(&run.environment),
        view.verdict(),
        run.exit_code()
    );
    let _ = writeln!(
        m,
        "commit {} · evidence {}\n",
        c(&run.commit),
        c(view.evidence_id.as_deref().unwrap_or("none recorded"))
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

/// The run as step outputs (`$GITHUB_OUTPUT` lines): `ok`, `exit_code`, `evidence_id`
/// (and `evidence-id`, its first spelling), `commit`, `environment`, and `url-<service>`
/// for each service with a URL (the service name with every character other than
/// `[A-Za-z0-9_-]` replaced by `-`).
pub fn github_outputs(view: &RunView<'_>) -> String {
    let run = view.report;
    let one_line = |s: &str| view.r(s).replace(['\n', '\r'], " ");
    let mut o = String::new();
    let _ = writeln!(o, "ok={}", run.ok);
    let _ = writeln!(o, "exit_code={}", run.exit_code());
    let evidence = one_line(view.evidence_id.as_deref().unwrap_or(""));
    let _ = writeln!(o, "evidence_id={evidence}");
    let _ = writeln!(o, "evidence-id={evidence}");
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
        assert!(
            md.contains("| smoke: login \\<flow\\> | status 200 |"),
            "{md}"
        );
        assert!(out.contains("exit_code=1\n"), "{out}");
        assert!(out.contains("evidence_id=aaaa/staging-1.json\n"), "{out}");
        assert!(!md.contains(CANARY), "{md}");
    }

    #[test]
    fn the_page_shows_the_verdict_then_each_failure_with_its_request_and_body_first() {
        let mut report = run();
        report.steps[1].findings[1] = Finding::failed("login <flow>", "http probe failed")
            .with_evidence("status 200", "status 500")
            .with_details([
                (
                    "request".to_owned(),
                    "POST http://127.0.0.1:8080/login".to_owned(),
                ),
                (
                    "body".to_owned(),
                    format!("{{\"error\":\"boom {CANARY}\"}}"),
                ),
            ]);
        let redactor = redactor();
        let page = html(&view(&report, &redactor));
        let at = |needle: &str| {
            page.find(needle)
                .unwrap_or_else(|| panic!("no {needle} in {page}"))
        };
        assert!(at("id=\"verdict\"") < at("id=\"failures\""));
        assert!(
            at("id=\"failures\"") < at("id=\"run\""),
            "failures come first"
        );
        assert!(at("id=\"failures\"") < at("id=\"steps\""));
        let failures = &page[at("id=\"failures\"")..at("id=\"run\"")];
        assert!(
            failures.contains("request: POST http://127.0.0.1:8080/login"),
            "{failures}"
        );
        assert!(
            failures.contains("body: {&quot;error&quot;:&quot;boom"),
            "{failures}"
        );
        assert!(failures.contains("login &lt;flow&gt;"), "{failures}");
        assert!(!page.contains(CANARY), "{page}");
        // A passing run has no failures section.
        let mut passing = run();
        passing.ok = true;
        passing.steps.truncate(1);
        assert!(!html(&view(&passing, &redactor)).contains("id=\"failures\""));
    }

    #[test]
    fn a_refused_promotion_renders_the_refusal_in_every_view() {
        let report = RunReport {
            steps: vec![StepReport {
                error_class: Some(staging_core::ErrorClass::Failed),
                ..StepReport::from_findings(
                    "gate",
                    "`staging` has no passing run of this commit",
                    vec![],
                )
            }],
            ..run()
        };
        let report = RunReport {
            steps: vec![StepReport {
                status: StepStatus::Failed,
                ..report.steps[0].clone()
            }],
            ..report
        };
        let redactor = redactor();
        let v = RunView {
            evidence_id: None,
            services: vec![],
            ..view(&report, &redactor)
        };
        let page = html(&v);
        assert!(page.contains(">REFUSED</span>"), "{page}");
        assert!(page.contains("<h2>Refused</h2>"), "{page}");
        assert!(page.contains("has no passing run of this commit"), "{page}");
        let md = markdown_summary(&v);
        assert!(md.contains("REFUSED (exit 1)"), "{md}");
        assert!(md.contains("has no passing run"), "{md}");
        let out = github_outputs(&v);
        assert!(
            out.starts_with("ok=false\nexit_code=1\nevidence_id=\n"),
            "{out}"
        );
    }

    #[test]
    fn markdown_shows_markup_in_names_as_written() {
        let mut report = run();
        report.project = "shop`s | <b>".into();
        report.steps[1].findings[1].name =
            "<img src=x onerror=alert(1)> [click](javascript:x) *bold* &amp; | # h".into();
        let redactor = redactor();
        let md = markdown_summary(&view(&report, &redactor));
        assert!(
            md.contains("\\<img src=x onerror=alert(1)\\> \\[click\\](javascript:x) \\*bold\\* \\&amp; \\| \\# h"),
            "{md}"
        );
        assert!(!md.replace("\\<", "").contains("<img"), "raw markup: {md}");
        // A code span holding a backtick is fenced by two, and its `|` cannot end a cell.
        assert!(md.contains("`` shop`s \\| <b> ``"), "{md}");
        // The failed probe's row keeps its three cells.
        let row = md.lines().find(|l| l.contains("img src")).unwrap();
        assert_eq!(row.replace("\\|", "").matches('|').count(), 4, "{row}");
    }
}
