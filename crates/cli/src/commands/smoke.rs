//! `staging smoke`: the spec's probes against what is live now.

use std::path::PathBuf;

use clap::Args;
use staging_core::Result;
use staging_core::pipeline::{LocateStep, Pipeline, StepStatus, ValidateStep};
use staging_smoke::{RunnerOptions, SmokeStep};

use crate::Global;
use crate::context::{commit, environment, load_spec, registry, run_context};
use crate::output::Output;

/// Options of `smoke`.
#[derive(Debug, Args, Clone)]
pub(crate) struct SmokeArgs {
    /// The commit the probes expect as `${commit}` (default: the git HEAD).
    #[arg(long)]
    pub(crate) commit: Option<String>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "PATH")]
    pub(crate) junit: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) probes: ProbeOptions,
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

pub(crate) async fn run(global: &Global, args: &SmokeArgs, out: Output) -> Result<u8> {
    let spec = load_spec(global)?;
    let env = environment(global, &spec)?;
    let commit = commit(args.commit.as_deref(), &spec)?;
    let mut ctx = run_context(global, spec, &env, commit)?;
    let smoke = args.probes.step();
    let setup = Pipeline::new()
        .step(ValidateStep::new(registry()))
        .step(staging_secrets::SecretsStep)
        .step(LocateStep);
    let report = setup.run(&mut ctx).await;
    if report
        .steps
        .iter()
        .any(|s| matches!(s.status, StepStatus::Failed | StepStatus::Error))
    {
        // For people the failed step was shown as it ended; for machines, the setup's report.
        if out.json {
            out.json(&report);
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
            if out.json {
                out.json(&serde_json::json!({ "ok": false, "error": message, "exit_code": 3 }));
            } else {
                out.note(&format!("error: {message}"));
            }
            return Ok(3);
        }
    }
    let smoke_report = smoke.run_report(&ctx).await?;
    if let Some(path) = &args.junit {
        staging_smoke::write_junit(&smoke_report, &ctx.redactor, path)?;
    }
    if out.json {
        out.line(&staging_smoke::render_json(&smoke_report, &ctx.redactor));
    } else {
        out.line(&staging_smoke::render_human(
            &smoke_report,
            &ctx.redactor,
            out.color,
        ));
    }
    Ok(if smoke_report.ok { 0 } else { 1 })
}
