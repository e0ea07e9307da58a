//! `staging rollback`: return the services of an environment (or one) to the previous live
//! deploy, or to a named one; wait until live, verify the live commit, record evidence.

use clap::Args;
use staging_core::pipeline::{Pipeline, RollbackStep, ValidateStep};
use staging_core::{Capability, Error, Result};
use staging_evidence::RecordEvidence;

use crate::Global;
use crate::context::session;
use crate::output::Output;

/// Options of `rollback`.
#[derive(Debug, Args, Clone)]
pub(crate) struct RollbackArgs {
    /// Only this service (default: every service of the spec).
    #[arg(long)]
    pub(crate) service: Option<String>,
    /// Roll back to this deploy (the provider's deploy id: a Render `dep-…`, a Netlify
    /// deploy id, an ECS task-definition revision `web:7` or its ARN) instead of the
    /// previous live one; needs --service.
    #[arg(long, value_name = "DEPLOY_ID", requires = "service")]
    pub(crate) to: Option<String>,
    #[command(flatten)]
    pub(crate) lease: crate::lease::LeaseArgs,
}

/// Roll back, verify and record. Allowed on protected environments: a rollback returns to a
/// deploy that was live before, and the record says so.
pub(crate) async fn run(global: &Global, args: &RollbackArgs, out: Output) -> Result<u8> {
    let session = session(global)?;
    let spec = session.spec().clone();
    let env = session.environment(global.env.as_deref())?;
    // A provider that cannot roll back says so before anything runs or is recorded.
    let factory = session.registry().clone().factory_for(&spec, &env)?;
    factory.check(&spec, &env)?;
    let provider = factory.build(&spec, &env)?;
    if !provider.capabilities().has(Capability::Rollback) {
        return Err(Error::not_supported(
            provider.name(),
            format!("rolling back environment `{env}` (see the provider's capabilities)"),
        ));
    }
    // A rollback changes deploys: the same isolation check as `up` before the first write.
    let boundary = session
        .check_isolation(&env, staging_core::isolation::Writes::Run, Some(&provider))
        .await?;
    drop(provider);
    let store = staging_evidence::open_store(&spec).await?;
    let mut stop = super::up::StopSignals::listen()?;
    let mut lease = match crate::lease::take(
        &store,
        crate::lease::holder(&spec, &env, "rollback", None),
        &args.lease,
        &mut stop,
        out,
    )
    .await?
    {
        Ok(lease) => lease,
        Err(signal) => return Ok(signal.exit_code()),
    };
    let mut step = RollbackStep::new();
    if let Some(s) = &args.service {
        step = step.service(s);
    }
    if let Some(to) = &args.to {
        step = step.to(to);
    }
    let pipeline = Pipeline::new()
        .step(ValidateStep::new(session.registry().clone()))
        .step(step)
        .step(RecordEvidence::new(store));
    // The commit is the one the rollback leaves live; the step fills it in.
    let mut ctx = match session.run_context(&env, "unknown".to_owned()) {
        Ok(ctx) => ctx,
        Err(e) => {
            crate::lease::release(lease, out).await;
            return Err(e);
        }
    };
    ctx.boundary = Some(boundary);
    if !out.json {
        out.line(&format!(
            "{} {} on {env}",
            out.paint("1", "staging rollback"),
            ctx.spec.spec.project.name
        ));
    }
    let held = crate::lease::run_held(&mut lease, &mut stop, pipeline.run(&mut ctx)).await;
    let code = match crate::lease::finish(
        held,
        "the rollback (started, it may still be going live: see `staging status`)",
        out,
    ) {
        Ok(report) => {
            out.run(&report);
            report.exit_code()
        }
        Err(code) => code,
    };
    // On the local provider the rolled-back service lives as long as this process.
    drop(ctx);
    crate::lease::release(lease, out).await;
    Ok(code)
}
