//! `staging refresh --env E [--from P]`: make E's databases fresh copies of P's (a branch
//! reset, or pg_dump/pg_restore for plain Postgres), then E's migrations, then the spec's
//! scrub, then the spec's database probes; record evidence. Refused on a protected
//! environment, always.

use clap::Args;
use staging_core::Result;

use crate::Global;
use crate::context::session;
use crate::output::Output;

/// Options of `refresh`.
#[derive(Debug, Args, Clone)]
pub(crate) struct RefreshArgs {
    /// The environment to copy from (default: the one `--env` promotes to).
    #[arg(long, value_name = "ENV")]
    pub(crate) from: Option<String>,
    /// Fail when the built-in PII scan finds e-mail addresses or phone numbers left after
    /// the scrub (the spec's `scrub.verify` checks fail the refresh either way).
    #[arg(long)]
    pub(crate) strict: bool,
    #[command(flatten)]
    pub(crate) lease: crate::lease::LeaseArgs,
}

/// Refresh, scrub and record.
pub(crate) async fn run(global: &Global, args: &RefreshArgs, out: Output) -> Result<u8> {
    let session = session(global)?;
    let target = session.environment(global.env.as_deref())?;
    let staging::RefreshRun {
        target,
        source,
        pipeline,
        context: mut ctx,
        store,
    } = session
        .prepare_refresh(&target, args.from.as_deref(), args.strict)
        .await?;
    let spec = session.spec();
    let mut stop = super::up::StopSignals::listen()?;
    let mut lease = match crate::lease::take(
        &store,
        crate::lease::holder(spec, &target, "refresh", None),
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
            "{} {target} from {source}",
            out.paint("1", "staging refresh"),
        ));
    }
    // A signal drops the run, and with it pg_dump, pg_restore and the migration and scrub
    // commands (each process group whole), before the lease is released.
    let held = crate::lease::run_held(&mut lease, &mut stop, pipeline.run(&mut ctx)).await;
    let code = match crate::lease::finish(held, "the refresh", out) {
        Ok(report) => {
            out.run(&report);
            report.exit_code()
        }
        Err(code) => code,
    };
    drop(ctx);
    crate::lease::release(lease, out).await;
    Ok(code)
}
