//! The `smoke` step of the pipeline.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use staging_core::Result;
use staging_core::pipeline::{Finding, RunContext, Step, StepReport};

use crate::build::build_probes;
use crate::runner::{ProbeStatus, Runner, RunnerOptions, SmokeReport};

/// Runs the spec's probes for the context's environment: the `smoke` step of `staging up`,
/// and all of `staging smoke`.
///
/// Clones share the last report, so a caller can hand one clone to a
/// [`staging_core::pipeline::Pipeline`] and read the [`SmokeReport`] from another afterwards
/// (to render `--json` or `--junit`).
#[derive(Debug, Clone, Default)]
pub struct SmokeStep {
    options: RunnerOptions,
    last: Arc<Mutex<Option<SmokeReport>>>,
}

impl SmokeStep {
    /// The step's name in reports.
    pub const NAME: &'static str = "smoke";

    /// A step with the default [`RunnerOptions`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A step with these options (concurrency, fail-fast).
    pub fn with_options(options: RunnerOptions) -> Self {
        SmokeStep {
            options,
            last: Arc::default(),
        }
    }

    /// The report of the last run of this step (or of any clone of it).
    pub fn last_report(&self) -> Option<SmokeReport> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Build and run the probes of `ctx`'s environment; the report is redacted with
    /// `ctx.redactor` and kept for [`SmokeStep::last_report`]. `Err` only when the probes
    /// cannot be built (a spec error, a missing variable).
    pub async fn run_report(&self, ctx: &RunContext) -> Result<SmokeReport> {
        let built = build_probes(ctx)?;
        let runner = Runner::new(self.options)
            .with_redactor(ctx.redactor.clone())
            .with_progress(ctx.progress.clone());
        let mut report = runner.run(built.probes, built.skipped).await;
        report.environment = Some(ctx.environment.clone());
        report.commit = Some(ctx.commit.clone());
        let report = report.redacted(&ctx.redactor);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
        Ok(report)
    }
}

/// The pipeline's view of a smoke report: one finding per probe.
pub fn step_report(report: &SmokeReport) -> StepReport {
    let s = report.summary;
    let summary = format!(
        "{} passed, {} failed, {} skipped",
        s.passed, s.failed, s.skipped
    );
    if s.passed == 0 && s.failed == 0 {
        let mut r = StepReport::skipped(SmokeStep::NAME, format!("no probes to run ({summary})"));
        r.findings = findings(report);
        return r;
    }
    StepReport::from_findings(SmokeStep::NAME, summary, findings(report))
}

fn findings(report: &SmokeReport) -> Vec<Finding> {
    report
        .probes
        .iter()
        .map(|p| {
            let d = std::time::Duration::from_millis(p.duration_ms);
            match p.status {
                ProbeStatus::Passed => {
                    Finding::ok(&p.name, p.detail.clone().unwrap_or_else(|| "passed".into()))
                        .with_duration(d)
                }
                ProbeStatus::Skipped => {
                    Finding::skipped(&p.name, p.reason.as_deref().unwrap_or(""))
                }
                ProbeStatus::Failed => {
                    let expected = p.expected.clone().unwrap_or_default();
                    let observed = p.observed.clone().unwrap_or_default();
                    let what = if p.errored { "could not run" } else { "failed" };
                    // The request and the start of the body, as `smoke --junit` shows them.
                    let finding = Finding::failed(&p.name, format!("{} probe {what}", p.kind))
                        .with_evidence(expected, observed)
                        .with_details(p.evidence.clone())
                        .with_duration(d);
                    if p.errored {
                        finding.could_not_run()
                    } else {
                        finding
                    }
                }
            }
        })
        .collect()
}

#[async_trait]
impl Step for SmokeStep {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let report = self.run_report(ctx).await?;
        Ok(step_report(&report))
    }
}
