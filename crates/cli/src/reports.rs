//! The report files of a run (`--junit`, `--html`, `--summary`) and GitHub's step summary
//! and outputs. Each path is checked, its directory created, before the run starts, so a
//! typo in a path fails in a second, not after a whole deploy.

use std::io::Write;
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::SystemTime;

use clap::Args;
use staging_core::pipeline::{RunContext, RunReport, StepReport};
use staging_core::spec::LoadedSpec;
use staging_core::{Error, Result};
use staging_evidence::RunView;

/// Where to write reports of the run.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ReportArgs {
    /// Write a JUnit XML report of the run here (valid against junit-10.xsd).
    #[arg(long, value_name = "PATH")]
    pub(crate) junit: Option<PathBuf>,
    /// Write a self-contained HTML report of the run here: steps and durations, each probe
    /// with expected and observed, the commit, the services and their URLs, the evidence id.
    #[arg(long, value_name = "PATH")]
    pub(crate) html: Option<PathBuf>,
    /// Append a Markdown summary of the run here (default: $GITHUB_STEP_SUMMARY when set).
    #[arg(long, value_name = "PATH")]
    pub(crate) summary: Option<PathBuf>,
}

/// The environment variables GitHub Actions sets for a step.
const STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";
const STEP_OUTPUT: &str = "GITHUB_OUTPUT";

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl ReportArgs {
    /// `--summary`, else `$GITHUB_STEP_SUMMARY`.
    fn summary_path(&self) -> Option<PathBuf> {
        self.summary.clone().or_else(|| env_path(STEP_SUMMARY))
    }

    /// Every path a report will be written to, with the option that named it.
    fn targets(&self) -> Vec<(&'static str, PathBuf)> {
        let mut t = vec![];
        if let Some(p) = &self.junit {
            t.push(("--junit", p.clone()));
        }
        if let Some(p) = &self.html {
            t.push(("--html", p.clone()));
        }
        if let Some(p) = self.summary_path() {
            t.push(("--summary", p));
        }
        if let Some(p) = env_path(STEP_OUTPUT) {
            t.push((STEP_OUTPUT, p));
        }
        t
    }

    /// Before the run: create each report's directory and make sure a file can be written
    /// there (and that the path is not a directory). A usage error (exit 2) names the
    /// option and the path.
    pub(crate) fn prepare(&self) -> Result<()> {
        for (option, path) in self.targets() {
            check_writable(option, &path)?;
        }
        Ok(())
    }

    /// After the run: write the JUnit XML, the HTML page, the Markdown summary and the
    /// GitHub outputs that were asked for (each one even when an earlier one failed; the
    /// first error is returned). `junit` is the run's JUnit XML (a promotion's
    /// includes its gate).
    pub(crate) fn write(
        &self,
        view: &RunView<'_>,
        junit: impl FnOnce() -> Result<String>,
    ) -> Result<()> {
        let mut results = vec![];
        if let Some(path) = &self.junit {
            results.push(junit().and_then(|xml| write_file(path, &xml)));
        }
        if let Some(path) = &self.html {
            results.push(write_file(path, &staging_evidence::html(view)));
        }
        if let Some(path) = self.summary_path() {
            results.push(append(&path, &staging_evidence::markdown_summary(view)));
        }
        if let Some(path) = env_path(STEP_OUTPUT) {
            results.push(append(&path, &staging_evidence::github_outputs(view)));
        }
        results.into_iter().collect()
    }
}

/// What a command knew when it stopped before its pipeline could report (a refused
/// promotion, an error resolving the commit, a preflight that found no credentials): the
/// spec and, once resolved, the environment and commit. Its reports are a run of one step
/// that says why, so CI shows a verdict, `ok=false` and the exit code on every path.
#[derive(Debug)]
pub(crate) struct Unrun {
    command: &'static str,
    spec: Arc<LoadedSpec>,
    pub(crate) environment: Option<String>,
    pub(crate) commit: Option<String>,
    /// The step the command was in: `validate` until the run is resolved, then
    /// `preflight`, `gate`, `evidence`...
    pub(crate) step: &'static str,
    /// The pipeline ran and wrote its own reports: an error after that writes none.
    pub(crate) reported: bool,
    started: SystemTime,
}

impl Unrun {
    pub(crate) fn new(
        command: &'static str,
        spec: &Arc<LoadedSpec>,
        environment: Option<&str>,
    ) -> Self {
        Unrun {
            command,
            spec: spec.clone(),
            environment: environment.map(str::to_owned),
            commit: None,
            step: "validate",
            reported: false,
            started: SystemTime::now(),
        }
    }

    /// The run of one step `step` that ended as it did.
    pub(crate) fn report(&self, step: StepReport) -> RunReport {
        let at = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
        RunReport {
            ok: false,
            project: self.spec.spec.project.name.clone(),
            environment: self.environment.clone().unwrap_or_default(),
            commit: self.commit.clone().unwrap_or_default(),
            spec_hash: self.spec.hash.clone(),
            effective_spec_hash: self.spec.effective_hash.clone(),
            started_at: at(self.started),
            finished_at: at(SystemTime::now()),
            steps: vec![StepReport {
                duration_ms: self.started.elapsed().map_or(0, |d| d.as_millis() as u64),
                ..step
            }],
        }
    }

    /// After `error` ended the command: every report asked for, best effort (a report
    /// that cannot be written is said on stderr; the error stands).
    pub(crate) fn write_error(&self, reports: &ReportArgs, error: &Error) {
        if self.reported {
            return;
        }
        let report = self.report(StepReport::error(self.step, error));
        self.write(reports, &report, None);
    }

    /// Write `report`'s files, with `junit` as the JUnit XML when given (a refused
    /// promotion's names its gate), best effort.
    pub(crate) fn write(&self, reports: &ReportArgs, report: &RunReport, junit: Option<String>) {
        // The command may have stopped before it checked the paths (an unknown environment):
        // their directories are made now; a path that cannot be written fails below.
        let _ = reports.prepare();
        let view = RunView {
            command: self.command,
            report,
            services: vec![],
            evidence_id: None,
            redactor: staging_core::Redactor::global(),
        };
        let written = reports.write(&view, || match junit {
            Some(xml) => Ok(xml),
            None => staging_evidence::junit_xml(report),
        });
        if let Err(e) = written {
            eprintln!(
                "{}",
                staging_core::Redactor::global().redact(&format!("error: {e}"))
            );
        }
    }
}

/// The services of the run and their URLs, as the context resolved them.
pub(crate) fn services(ctx: &RunContext) -> Vec<(String, Option<String>)> {
    ctx.services
        .iter()
        .map(|(name, svc)| (name.clone(), svc.url.as_ref().map(|u| u.to_string())))
        .collect()
}

/// The view of a finished run for the report files.
pub(crate) fn view<'a>(
    command: &'a str,
    report: &'a RunReport,
    ctx: &'a RunContext,
    evidence_id: Option<String>,
) -> RunView<'a> {
    RunView {
        command,
        report,
        services: services(ctx),
        evidence_id,
        redactor: &ctx.redactor,
    }
}

fn check_writable(option: &str, path: &Path) -> Result<()> {
    let refuse = |why: String| Error::config(format!("{option} {}: {why}", path.display()));
    if path.is_dir() {
        return Err(refuse("is a directory; give a file path".into()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| {
        refuse(format!(
            "cannot create its directory {}: {e}",
            dir.display()
        ))
    })?;
    // Opening for append creates nothing that was not asked for when the file exists, and
    // proves it is writable; a file created here is removed again (the run writes it).
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| refuse(format!("cannot be written: {e}")))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Write `text`, a document whose fields were redacted, to `path`, every registered form
/// masked once more (its markup left as it is).
pub(crate) fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(
        path,
        staging_core::Redactor::global()
            .redact_forms(text)
            .as_bytes(),
    )
    .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

fn append(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    file.write_all(
        staging_core::Redactor::global()
            .redact_forms(text)
            .as_bytes(),
    )
    .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}
