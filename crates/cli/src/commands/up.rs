//! `staging up`, `staging plan`, `staging status`, `staging promote`.

use std::time::Duration;

use clap::Args;
use staging::{Gate, RunOptions, Staging};
use staging_core::pipeline::{EvidenceRef, RunContext, RunReport, StepReport, StepStatus};
use staging_core::{Error, ErrorClass, ProviderExt, Result};
use staging_evidence::{GateDecision, Junit};

use crate::Global;
use crate::context::session;
use crate::output::Output;
use crate::reports::Unrun;

/// Options of `up` and `plan`.
#[derive(Debug, Args, Clone)]
pub(crate) struct UpArgs {
    /// The commit to deploy (default: the git HEAD of the spec's checkout).
    #[arg(long)]
    pub(crate) commit: Option<String>,
    #[command(flatten)]
    pub(crate) reports: crate::reports::ReportArgs,
    /// On Ctrl-C, SIGTERM or SIGHUP, also cancel the deploys this run requested that are
    /// not live yet (where the provider can), from the moment each request is sent: one
    /// whose answer had not arrived is found on the platform by its commit.
    #[arg(long)]
    pub(crate) cancel_on_interrupt: bool,
    /// After the run (passed or failed), keep the services up until Ctrl-C or SIGTERM when
    /// the provider runs them in this process (local), so that `staging smoke` and
    /// `staging status` in another terminal reach them; exits with the run's code. On a
    /// platform the services keep running anyway, and this only says so.
    #[arg(long)]
    pub(crate) keep_running: bool,
    /// Deploy every service even when it already serves the commit with the same
    /// variables (by default such a service is left as it is, and the report says so).
    #[arg(long)]
    pub(crate) redeploy: bool,
    #[command(flatten)]
    pub(crate) probes: super::smoke::ProbeOptions,
    /// Run although the environment holds unscrubbed production data (after a fork from
    /// production, a failed or interrupted scrub, or a copy without one); recorded in evidence.
    #[arg(long)]
    pub(crate) allow_unscrubbed: bool,
    #[command(flatten)]
    pub(crate) lease: crate::lease::LeaseArgs,
}

/// Options of `promote`.
#[derive(Debug, Args, Clone)]
pub(crate) struct PromoteArgs {
    /// The environment to promote to (e.g. `production`).
    #[arg(long, value_hint = clap::ValueHint::Other)]
    pub(crate) to: String,
    /// The environment whose evidence gates the promotion (default: the one promoting to `--to`).
    #[arg(long, value_hint = clap::ValueHint::Other)]
    pub(crate) from: Option<String>,
    /// Refuse evidence older than this (default: `project.evidence_max_age`, else 24h).
    #[arg(long, value_parser = staging_core::spec::duration::parse)]
    pub(crate) max_age: Option<Duration>,
    /// When the deploy went live but verify or smoke failed, leave it live instead of
    /// rolling each service back to the deploy that was live before (the default).
    #[arg(long)]
    pub(crate) no_rollback: bool,
    #[command(flatten)]
    pub(crate) run: UpArgs,
}

/// What a finished run hands back: its report, its context (whose provider holds the
/// services a local provider runs until it is dropped), the id of the evidence recorded, and
/// the environment's lease, to release once the services are stopped.
type Finished = (
    RunReport,
    RunContext,
    Option<String>,
    staging_evidence::Lease,
);

/// Run the pipeline on `env` under its lease (`command` names the run in it), recording
/// evidence (naming `promoted_from`, the record that allowed a promotion); SIGINT (Ctrl-C),
/// SIGTERM (how CI cancels a job) and SIGHUP (the terminal went away) stop it and the
/// services it started, alike, and so does the loss of the lease. `Err(signal)` when stopped
/// (nothing is recorded as passed: the evidence step never runs; the lease is released
/// after the services stopped).
#[allow(clippy::too_many_arguments)]
async fn run_pipeline(
    session: &Staging,
    checked: staging::Preflight,
    command: &str,
    args: &UpArgs,
    promoted_from: Option<EvidenceRef>,
    auto_rollback: bool,
    stop: &mut StopSignals,
    out: Output,
) -> Result<std::result::Result<Finished, Stopped>> {
    let spec = session.spec().clone();
    let (env, commit) = (
        checked.environment().to_owned(),
        checked.commit().to_owned(),
    );
    let env = env.as_str();
    out.run_header(&spec.spec.project.name, env, &commit);
    let run = session
        .start(
            checked,
            RunOptions {
                smoke: Some(args.probes.smoke_step()),
                promoted_from,
                auto_rollback,
                redeploy: args.redeploy,
                allow_unscrubbed: args.allow_unscrubbed,
            },
        )
        .await?;
    // Before the first read of the platform: the run that holds the lease is the only one
    // reading and writing this environment.
    let mut lease = match crate::lease::take(
        &run.store,
        crate::lease::holder(&spec, env, command, Some(&commit)),
        &args.lease,
        stop,
        out,
    )
    .await?
    {
        Ok(lease) => lease,
        Err(signal) => return Ok(Err(signal)),
    };
    // The environment's data state is the pipeline's `branches` step's to check, under this
    // lease and after any branch the run forks from production.
    let staging::Run {
        pipeline,
        context: mut ctx,
        recorded,
        ..
    } = run;
    let stopped = tokio::select! {
        report = pipeline.run(&mut ctx) => {
            let id = recorded.recorded_id();
            return Ok(Ok((report, ctx, id, lease)));
        }
        signal = stop.wait() => signal,
        why = lease.lost() => {
            let e = Error::Locked {
                message: format!(
                    "the run was stopped: {why}; the services it started were stopped and nothing was recorded"
                ),
            };
            crate::commands::report_error(&e, out);
            Stopped::LeaseLost
        }
    };
    if args.cancel_on_interrupt {
        cancel_started_deploys(&ctx, out).await;
    } else {
        name_running_deploys(&ctx, out);
    }
    // Dropping the context drops the provider, which stops the services it started (each
    // process group whole) and removes their state files; only then is the lease released.
    drop(ctx);
    crate::lease::release(lease, out).await;
    Ok(Err(stopped))
}

/// Cancel each deploy the run asked for, from the moment its request was sent (one whose
/// answer had not arrived is read back by its commit), bounded, reporting each.
async fn cancel_started_deploys(ctx: &RunContext, out: Output) {
    for report in staging_core::pipeline::cancel_sent(ctx).await {
        out.note(&report.to_string());
    }
}

/// Without `--cancel-on-interrupt`: the deploys the run asked a platform for keep running
/// there; say which (a provider that runs services in this process stops them anyway).
fn name_running_deploys(ctx: &RunContext, out: Output) {
    let Some(provider) = &ctx.provider else {
        return;
    };
    if provider.runs_services_in_process() {
        return;
    }
    for sent in ctx.sent_deploys.all() {
        let commit = &sent.commit[..sent.commit.len().min(12)];
        let deploy = match &sent.deploy_id {
            Some(id) => format!("deploy {id} of {commit}"),
            None => format!("the deploy of {commit} (requested, its answer not in)"),
        };
        out.note(&format!(
            "{}: {deploy} may still be running on {} (`--cancel-on-interrupt` cancels the deploys of an interrupted run)",
            sent.service,
            provider.name()
        ));
    }
}

/// What `up`/`promote` say when a signal stopped the run; the exit code is 128 + the signal
/// (3 when the run lost its lease).
fn interrupted(out: Output, signal: Stopped) -> u8 {
    if signal == Stopped::LeaseLost {
        // Said where the loss was found, as the run's error.
        return signal.exit_code();
    }
    out.note(&format!(
        "interrupted by {}: the run was stopped and the services it started were stopped; nothing was recorded",
        signal.name()
    ));
    signal.exit_code()
}

/// The signal that stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// SIGINT (Ctrl-C): exit 130.
    Interrupt,
    /// SIGTERM: exit 143.
    Terminate,
    /// SIGHUP: exit 129.
    Hangup,
    /// The environment's lease was lost (released by force, or not renewed before it
    /// expired): another run may be changing the environment. Exit 3.
    LeaseLost,
}

impl Stopped {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stopped::Interrupt => "SIGINT",
            Stopped::Terminate => "SIGTERM",
            Stopped::Hangup => "SIGHUP",
            Stopped::LeaseLost => "the loss of the lease",
        }
    }

    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Stopped::Interrupt => 130,
            Stopped::Terminate => 143,
            Stopped::Hangup => 129,
            Stopped::LeaseLost => 3,
        }
    }
}

/// `--keep-running`, once the run has ended and its report is out: when the provider runs
/// the services in this process, print where each live one answers and hold them until
/// SIGINT or SIGTERM; dropping the context afterwards stops them. On a platform, one line.
///
/// It holds after a failed run too: a stack whose smoke probes failed is the one worth
/// poking at. The caller exits with the run's own code either way: the signal ends the
/// wait, not the run, so it is not the 130 of an interrupted run. Never prompts; without a
/// terminal it waits all the same (in CI:
/// `timeout --preserve-status -s INT 10m staging up --keep-running`).
async fn keep_running(ctx: &RunContext, stop: &mut StopSignals, out: Output) -> Result<()> {
    // Human output on stdout; with --json stdout holds the one document, so stderr.
    let say = |text: &str| {
        if out.json {
            out.note(text);
        } else {
            out.line(text);
        }
    };
    let Some(provider) = ctx.provider.clone() else {
        say("--keep-running: the run deployed nothing, so nothing is kept running");
        return Ok(());
    };
    if !provider.runs_services_in_process() {
        say(&format!(
            "--keep-running: the services keep running on {} anyway; nothing to wait for",
            provider.name()
        ));
        return Ok(());
    }
    let mut live = vec![];
    for (name, svc) in &ctx.services {
        let state = provider.live_state(&svc.handle).await?;
        if let Some(url) = &state.url {
            let commit = state.live_commit().unwrap_or("-");
            live.push(format!(
                "  {name}: {url} (commit {})",
                &commit[..commit.len().min(12)]
            ));
        }
    }
    if live.is_empty() {
        say("--keep-running: no service is live, so nothing is kept running");
        return Ok(());
    }
    say(&format!(
        "services of `{}` kept running on {}:",
        ctx.environment,
        provider.name()
    ));
    for line in &live {
        say(line);
    }
    say("press Ctrl-C to stop");
    stop.wait().await;
    say("stopping the services");
    Ok(())
}

/// SIGINT, SIGTERM and SIGHUP, listened to from before the run starts (so none of them
/// kills the process without the cleanup): one that arrives between the end of the run and
/// the `--keep-running` wait (while the report prints) still ends the wait.
#[derive(Debug)]
pub(crate) struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub(crate) fn listen() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind| {
            signal(kind).map_err(|e| Error::io("cannot listen for SIGINT, SIGTERM and SIGHUP", e))
        };
        Ok(StopSignals {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
            hangup: listen(SignalKind::hangup())?,
        })
    }

    pub(crate) async fn wait(&mut self) -> Stopped {
        tokio::select! {
            _ = self.interrupt.recv() => Stopped::Interrupt,
            _ = self.terminate.recv() => Stopped::Terminate,
            _ = self.hangup.recv() => Stopped::Hangup,
        }
    }
}

/// `--keep-running` after the report; a failure to hold the services is reported, and the
/// run's own code stands.
async fn hold(ctx: &RunContext, stop: Option<StopSignals>, out: Output) {
    if let Some(mut stop) = stop
        && let Err(e) = keep_running(ctx, &mut stop, out).await
    {
        out.note(&format!("--keep-running: {e}"));
    }
}

/// Run the whole pipeline. Once the spec is read, every way this ends writes the reports
/// asked for (and the GitHub summary and outputs).
pub(crate) async fn up(global: &Global, args: &UpArgs, out: Output) -> Result<u8> {
    let session = session(global)?;
    let mut unrun = Unrun::new("up", session.spec(), global.env.as_deref());
    let result = up_run(global, &session, args, out, &mut unrun).await;
    if let Err(e) = &result {
        unrun.write_error(&args.reports, e);
    }
    result
}

async fn up_run(
    global: &Global,
    session: &Staging,
    args: &UpArgs,
    out: Output,
    unrun: &mut Unrun,
) -> Result<u8> {
    let env = session.environment(global.env.as_deref())?;
    unrun.environment = Some(env.clone());
    staging_evidence::check_direct_up(session.spec(), &env)?;
    let commit = session.resolve_commit(args.commit.as_deref())?;
    unrun.commit = Some(commit.clone());
    args.reports.prepare()?;
    unrun.step = "preflight";
    let checked = session.preflight(&env, &commit).await?;
    unrun.step = "run";
    let mut stop = StopSignals::listen()?;
    let (report, ctx, evidence_id, lease) =
        match run_pipeline(session, checked, "up", args, None, false, &mut stop, out).await? {
            Ok(done) => done,
            Err(signal) => return Ok(interrupted(out, signal)),
        };
    unrun.reported = true;
    let stop = args.keep_running.then_some(stop);
    let view = crate::reports::view("up", &report, &ctx, evidence_id);
    let written = args
        .reports
        .write(&view, || staging_evidence::junit_xml(&report));
    if written.is_ok() {
        out.run(&report);
        hold(&ctx, stop, out).await;
    }
    // Dropping the context drops the provider, which stops the services it runs; then the
    // environment is free for the next run.
    drop(ctx);
    crate::lease::release(lease, out).await;
    written?;
    Ok(report.exit_code())
}

/// Promote: refuse unless the source environment has passing evidence for the same commit
/// and spec, then run the pipeline on the target.
pub(crate) async fn promote(global: &Global, args: &PromoteArgs, out: Output) -> Result<u8> {
    let session = session(global)?;
    let mut unrun = Unrun::new("promote", session.spec(), Some(&args.to));
    let result = promote_run(&session, args, out, &mut unrun).await;
    if let Err(e) = &result {
        unrun.write_error(&args.run.reports, e);
    }
    result
}

async fn promote_run(
    session: &Staging,
    args: &PromoteArgs,
    out: Output,
    unrun: &mut Unrun,
) -> Result<u8> {
    let (from_env, to) =
        staging_evidence::promotion_pair(session.spec(), args.from.as_deref(), &args.to)?;
    let commit = session.resolve_commit(args.run.commit.as_deref())?;
    unrun.commit = Some(commit.clone());
    args.run.reports.prepare()?;
    unrun.step = "preflight";
    let checked = session.preflight(&to, &commit).await?;
    unrun.step = "evidence";
    // What is promoted was validated on `from`'s data: never on unscrubbed production data
    // without saying so.
    session
        .refuse_unscrubbed(&from_env, "promote", args.run.allow_unscrubbed)
        .await?;
    unrun.step = "gate";
    let Gate {
        from,
        to,
        request,
        decision,
    } = session
        .gate(args.from.as_deref(), &to, &commit, args.max_age)
        .await?;
    let mut junit = Junit::new("staging promote");
    junit.add_gate(&request, &decision);
    let allowed_by = match &decision {
        GateDecision::Allowed { evidence } => evidence.reference(),
        GateDecision::Refused { refusal } => {
            // Every report, as for a run: the refusal is its one failed step.
            let gate = StepReport {
                status: StepStatus::Failed,
                error_class: Some(ErrorClass::Failed),
                ..StepReport::passed(
                    "gate",
                    format!("refused promotion of {commit} from `{from}` to `{to}`: {refusal}"),
                )
            };
            let report = unrun.report(gate);
            unrun.write(&args.run.reports, &report, junit.to_xml().ok());
            unrun.reported = true;
            if out.json {
                out.json(&decision.to_json());
                crate::output::set_error(crate::output::error_value(
                    &format!("gate_{}", refusal.kind()),
                    &refusal.to_string(),
                    None,
                ));
            } else {
                out.line(&format!(
                    "{} promotion of {commit} from `{from}` to `{to}`",
                    out.paint("31;1", "REFUSED")
                ));
                out.line(&format!("  {refusal}"));
            }
            return Ok(decision.exit_code());
        }
    };
    if !out.json {
        out.line(&format!(
            "gate: `{from}` passed {commit} with this spec (evidence {}); promoting to `{to}`",
            allowed_by.id
        ));
    }
    let promoted_from = Some(allowed_by);
    unrun.step = "run";
    let mut stop = StopSignals::listen()?;
    let (report, ctx, evidence_id, lease) = match run_pipeline(
        session,
        checked,
        "promote",
        &args.run,
        promoted_from,
        !args.no_rollback,
        &mut stop,
        out,
    )
    .await?
    {
        Ok(done) => done,
        Err(signal) => return Ok(interrupted(out, signal)),
    };
    unrun.reported = true;
    let stop = args.run.keep_running.then_some(stop);
    junit.add_run(&report);
    let view = crate::reports::view("promote", &report, &ctx, evidence_id);
    let written = args.run.reports.write(&view, || junit.to_xml());
    if written.is_ok() {
        out.run(&report);
        hold(&ctx, stop, out).await;
    }
    drop(ctx);
    crate::lease::release(lease, out).await;
    written?;
    Ok(report.exit_code())
}

/// The live state of each service.
pub(crate) async fn status(global: &Global, out: Output) -> Result<u8> {
    let session = session(global)?;
    let env = session.environment(global.env.as_deref())?;
    let report = session.status(&env).await?;
    let not_running: Vec<&str> = report
        .services
        .iter()
        .filter(|s| s.state.live.is_none())
        .map(|s| s.service.as_str())
        .collect();
    if report.in_process && !not_running.is_empty() {
        out.note(&super::not_running(&report.provider, &env, &not_running));
    }
    if out.json {
        out.json(&report);
        return Ok(0);
    }
    out.line(&format!(
        "{:<12} {:<12} {:<14} {:<14} URL",
        "SERVICE", "STATUS", "LIVE COMMIT", "LATEST"
    ));
    for s in &report.services {
        let (name, state) = (&s.service, &s.state);
        let live = state
            .live_commit()
            .map(|c| &c[..c.len().min(12)])
            .unwrap_or("-");
        let latest = state
            .latest
            .as_ref()
            .map(|d| d.raw_status.as_str())
            .unwrap_or("no deploy");
        let status = state.live.as_ref().map(|_| "live").unwrap_or("not live");
        let url = state
            .url
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or_else(|| "-".into());
        out.line(&format!(
            "{name:<12} {status:<12} {live:<14} {latest:<14} {url}"
        ));
    }
    Ok(0)
}
