//! `staging smoke`: the spec's probes against what is live now.

use clap::Args;
use staging::{SmokeOptions, SmokeOutcome, SmokeRun};
use staging_core::Result;
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
    pub(crate) fn smoke_step(&self) -> SmokeStep {
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
    let options = SmokeOptions {
        step: Some(args.probes.smoke_step()),
        allow_unscrubbed: args.allow_unscrubbed,
    };
    let SmokeRun {
        report,
        context: ctx,
        outcome,
    } = session.smoke(&env, &commit, options).await?;
    let smoke_report = match outcome {
        SmokeOutcome::SetupFailed => {
            // For people the failed step was shown as it ended; for machines, the setup's
            // report.
            unrun.write(&args.reports, &report, None);
            unrun.reported = true;
            if out.json {
                out.run_json(&report);
            }
            return Ok(report.exit_code());
        }
        SmokeOutcome::NotRunning(message) => {
            // Nothing to probe: the run cannot proceed (exit 3), rather than each probe
            // failing on a URL that has no value.
            let view = crate::reports::view("smoke", &report, &ctx, None);
            let _ = args
                .reports
                .write(&view, || staging_evidence::junit_xml(&report));
            unrun.reported = true;
            out.fail("cannot_proceed", &message);
            return Ok(3);
        }
        SmokeOutcome::Probed(smoke_report) => smoke_report,
    };
    // The run as the report files show it: the setup steps, then the probes.
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
