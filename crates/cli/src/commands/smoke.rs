//! `staging smoke`: the spec's probes against what is live now.

use clap::Args;
use staging_core::pipeline::{LocateStep, Pipeline, StepReport, StepStatus, ValidateStep};
use staging_core::{Error, ErrorClass, ProviderExt, Result};
use staging_smoke::{RunnerOptions, SmokeStep};

use crate::Global;
use crate::context::session;
use crate::output::Output;
use crate::reports::Unrun;

/// Options of `smoke`.
#[derive(Debug, Args, Clone)]
pub(crate) struct SmokeArgs {
    /// The commit the probes expect as `${commit}` (default: the git HEAD).
    #[arg(long)]
    pub(crate) commit: Option<String>,
    #[command(flatten)]
    pub(crate) reports: crate::reports::ReportArgs,
    #[command(flatten)]
    pub(crate) probes: ProbeOptions,
    /// Probe although the environment holds unscrubbed production data; recorded in evidence.
    #[arg(long)]
    pub(crate) allow_unscrubbed: bool,
}

/// How probes run (in `smoke` and in the smoke step of `up`).
#[derive(Debug, Args, Clone)]
pub(crate) struct ProbeOptions {
    /// At most this many probes at once.
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// Stop at the first failing probe.
    #[arg(long)]
    pub(crate) fail_fast: bool,
}

impl ProbeOptions {
    pub(crate) fn step(&self) -> SmokeStep {
        SmokeStep::with_options(RunnerOptions {
            concurrency: self.concurrency.max(1),
            fail_fast: self.fail_fast,
            ..RunnerOptions::default()
        })
    }
}

/// Run the probes. Once the spec is read, every way this ends writes the reports asked for.
pub(crate) async fn run(global: &Global, args: &SmokeArgs, out: Output) -> Result<u8> {
    let session = session(global)?;
    let mut unrun = Unrun::new("smoke", session.spec(), global.env.as_deref());
    let result = smoke_run(global, &session, args, out, &mut unrun).await;
    if let Err(e) = &result {
        unrun.write_error(&args.reports, e);
    }
    result
}

async fn smoke_run(
    global: &Global,
    session: &staging::Staging,
    args: &SmokeArgs,
    out: Output,
    unrun: &mut Unrun,
) -> Result<u8> {
    let env = session.environment(global.env.as_deref())?;
    unrun.environment = Some(env.clone());
    let commit = session.resolve_commit(args.commit.as_deref())?;
    unrun.commit = Some(commit.clone());
    args.reports.prepare()?;
    unrun.step = "smoke";
    let spec = session.spec().clone();
    let store = staging_evidence::open_store(&spec).await?;
    staging_evidence::refuse_unscrubbed(&store, &spec, &env, "smoke", args.allow_unscrubbed)
        .await?;
    let mut ctx = session.run_context(&env, commit)?;
    let smoke = args.probes.step();
    let setup = Pipeline::new()
        .step(ValidateStep::new(session.registry().clone()))
        .step(staging_secrets::SecretsStep)
        .step(LocateStep);
    let mut report = setup.run(&mut ctx).await;
    if report
        .steps
        .iter()
        .any(|s| matches!(s.status, StepStatus::Failed | StepStatus::Error))
    {
        // For people the failed step was shown as it ended; for machines, the setup's report.
        unrun.write(&args.reports, &report, None);
        unrun.reported = true;
        if out.json {
            out.run_json(&report);
        }
        return Ok(report.exit_code());
    }
    if let Some(provider) = ctx
        .provider
        .as_ref()
        .filter(|p| p.runs_services_in_process())
    {
        let not_running: Vec<&str> = ctx
            .services
            .iter()
            .filter(|(_, svc)| svc.url.is_none())
            .map(|(name, _)| name.as_str())
            .collect();
        if !not_running.is_empty() {
            // Nothing to probe: the run cannot proceed (exit 3), rather than each probe
            // failing on a URL that has no value.
            let message = super::not_running(provider.name(), &env, &not_running);
            let mut step = StepReport::error("smoke", &Error::failed(message.clone()));
            step.status = StepStatus::Error;
            step.error_class = Some(ErrorClass::CannotProceed);
            report.steps.push(step);
            report.ok = false;
            report.finished_at =
                humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
            let view = crate::reports::view("smoke", &report, &ctx, None);
            let _ = args
                .reports
                .write(&view, || staging_evidence::junit_xml(&report));
            unrun.reported = true;
            out.fail("cannot_proceed", &message);
            return Ok(3);
        }
    }
    let smoke_report = smoke.run_report(&ctx).await?;
    // The run as the report files show it: the setup steps, then the probes.
    report.steps.push(staging_smoke::step_report(&smoke_report));
    report.ok = smoke_report.ok;
    report.finished_at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    unrun.reported = true;
    let view = crate::reports::view("smoke", &report, &ctx, None);
    args.reports.write(&view, || {
        staging_smoke::render_junit(&smoke_report, &ctx.redactor)
    })?;
    if out.json {
        let json = staging_smoke::render_json(&smoke_report, &ctx.redactor);
        match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(doc) => out.json(&doc),
            Err(e) => out.fail("io", &format!("cannot read the smoke report back: {e}")),
        }
        if let Some(p) = smoke_report.failures().next() {
            out.fail(
                "failed",
                &format!(
                    "probe `{}`: expected {}; observed {}",
                    p.name,
                    p.expected.as_deref().unwrap_or(""),
                    p.observed.as_deref().unwrap_or("")
                ),
            );
        }
    } else {
        out.line(&staging_smoke::render_human(
            &smoke_report,
            &ctx.redactor,
            out.color,
        ));
    }
    Ok(if smoke_report.ok { 0 } else { 1 })
}
