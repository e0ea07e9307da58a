//! `staging lock status` and `staging lock release --force`: the environment's lease, as
//! the evidence store holds it.

use clap::{Args, Subcommand};
use staging_core::pipeline::{Evidence, Finding, RunContext, StepReport, is_full_commit_id};
use staging_core::{Error, Result};
use staging_evidence::lease::this_host;

use crate::Global;
use crate::context::session;
use crate::output::Output;

/// The `lock` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum LockCmd {
    /// Who holds the environment's lease (run, command, commit, host, pid, since, until),
    /// or that it is free. Reads only.
    Status,
    /// Remove the environment's lease whoever holds it, and record that in the evidence:
    /// for a run that will not come back (its machine is gone) before its lease expires.
    /// A run that still holds it stops at its next renewal.
    Release(ReleaseArgs),
}

/// Options of `lock release`.
#[derive(Debug, Args)]
pub(crate) struct ReleaseArgs {
    /// Release it although another run holds it (required: there is no other release).
    #[arg(long)]
    force: bool,
}

pub(crate) async fn run(global: &Global, cmd: &LockCmd, out: Output) -> Result<u8> {
    let session = session(global)?;
    let spec = session.spec().clone();
    let env = session.environment(global.env.as_deref())?;
    let project = spec.spec.project.name.clone();
    let store = staging_evidence::open_store(&spec).await?;
    match cmd {
        LockCmd::Status => {
            let lease = store.leases().current(&project, &env).await?;
            if out.json {
                out.json(&serde_json::json!({
                    "environment": env,
                    "store": store.describe(),
                    "lease": lease,
                }));
                return Ok(0);
            }
            match lease {
                None => out.line(&format!(
                    "`{env}` is free: no run holds its lease ({})",
                    store.describe()
                )),
                Some(l) => {
                    out.line(&format!("`{env}` is held by {}", l.describe()));
                    out.line(&format!("  until {} unless renewed", l.expires_at));
                    if l.stale {
                        out.line(
                            "  stale: it expired, or its process on this host is gone; the next run takes it over",
                        );
                    }
                }
            }
            Ok(0)
        }
        LockCmd::Release(args) => {
            if !args.force {
                return Err(Error::config(format!(
                    "`staging lock release` removes the lease of `{env}` whoever holds it: pass --force to do so (`staging lock status` shows the holder)"
                )));
            }
            let by = format!(
                "{}@{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned()),
                this_host()
            );
            let Some(released) = store.leases().force_release(&project, &env, &by).await? else {
                if out.json {
                    out.json(&serde_json::json!({ "environment": env, "released": null }));
                } else {
                    out.line(&format!("`{env}` is free: there was no lease to release"));
                }
                return Ok(0);
            };
            // On record, under the holder's commit: a run cut off this way passed nothing,
            // so its commit needs a fresh run before the gate lets it through.
            let commit = released
                .holder
                .commit
                .clone()
                .filter(|c| is_full_commit_id(c))
                .unwrap_or_else(|| "unknown".to_owned());
            let mut ctx = RunContext::new(spec.clone(), &env, commit)?;
            let what = format!(
                "the lease of {} was released by force by {by}",
                released.describe()
            );
            ctx.reports.push(StepReport::from_findings(
                "lock",
                what.clone(),
                vec![Finding::failed(&env, what.clone())],
            ));
            let id = store.record(&Evidence::from_context(&ctx)).await?;
            if out.json {
                out.json(&serde_json::json!({
                    "environment": env,
                    "released": released,
                    "by": by,
                    "evidence": id,
                }));
            } else {
                out.line(&format!("released: {what}"));
                out.line(&format!(
                    "recorded as evidence {id} in {}",
                    store.describe()
                ));
            }
            Ok(0)
        }
    }
}
