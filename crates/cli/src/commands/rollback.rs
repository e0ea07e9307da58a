//! `staging rollback`: return the services of an environment (or one) to the previous live
//! deploy, or to a named one; wait until live, verify the live commit, record evidence.

use clap::Args;
use staging::RollbackOptions;
use staging_core::Result;

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
    // A provider that cannot roll back, or a target that is another environment's, is
    // refused before anything runs or is recorded.
    let options = RollbackOptions {
        service: args.service.clone(),
        to: args.to.clone(),
    };
    let staging::Run {
        pipeline,
        context: mut ctx,
        store,
        ..
    } = session.start_rollback(&env, options).await?;
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
