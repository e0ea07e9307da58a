//! `staging migrate status|apply`.

use std::sync::Arc;

use clap::{Args, Subcommand};
use staging_core::{MigrationState, Result};
use staging_migrate::{EnvMigrations, MigrateOptions};

use crate::Global;
use crate::context::session;
use crate::output::Output;
use staging_core::isolation::Writes;

/// The `migrate` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum MigrateCmd {
    /// Each database's migrations: applied, pending, modified since applied, missing.
    Status,
    /// Apply pending migrations (a protected environment only after the one promoting to it).
    Apply(ApplyArgs),
    /// Run each database's declared `reset` command (flush, truncate, recreate); refused on
    /// a protected environment.
    Reset(ResetArgs),
}

/// Options of `migrate reset`.
#[derive(Debug, Args)]
pub(crate) struct ResetArgs {
    /// Say what would run and change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    lease: crate::lease::LeaseArgs,
}

/// Options of `migrate apply`.
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The escape hatch: apply although applied migrations were modified or are missing
    /// (logged, and recorded in the report).
    #[arg(long)]
    allow_drift: bool,
    /// The commit, for `${commit}` in variables (default: none needed).
    #[arg(long)]
    commit: Option<String>,
    #[command(flatten)]
    lease: crate::lease::LeaseArgs,
}

fn state_word(state: MigrationState) -> &'static str {
    match state {
        MigrationState::Applied => "applied",
        MigrationState::Pending => "pending",
        MigrationState::Modified => "MODIFIED since applied",
        MigrationState::Missing => "MISSING file",
    }
}

pub(crate) async fn run(global: &Global, cmd: &MigrateCmd, out: Output) -> Result<u8> {
    let session = session(global)?;
    let spec = session.spec().clone();
    let env = session.environment(global.env.as_deref())?;
    // What changes a database takes the environment's lease; status and dry runs only read.
    let lease_args = match cmd {
        MigrateCmd::Apply(a) if !a.dry_run => &a.lease,
        MigrateCmd::Reset(r) if !r.dry_run => &r.lease,
        _ => return super::stoppable(out, run_unleased(&session, &env, cmd, out)).await,
    };
    let store = staging_evidence::open_store(&spec).await?;
    let mut stop = super::up::StopSignals::listen()?;
    let command = match cmd {
        MigrateCmd::Reset(_) => "migrate reset",
        _ => "migrate apply",
    };
    let mut lease = match crate::lease::take(
        &store,
        crate::lease::holder(&spec, &env, command, None),
        lease_args,
        &mut stop,
        out,
    )
    .await?
    {
        Ok(lease) => lease,
        Err(signal) => return Ok(signal.exit_code()),
    };
    // A signal drops the run, and with it the migration command's whole process group,
    // before the lease is released: nothing writes to the database after the exit.
    let held = crate::lease::run_held(
        &mut lease,
        &mut stop,
        run_unleased(&session, &env, cmd, out),
    )
    .await;
    let result = match crate::lease::finish(held, &format!("`staging {command}`"), out) {
        Ok(result) => result,
        Err(code) => Ok(code),
    };
    crate::lease::release(lease, out).await;
    result
}

/// The command's work, once any lease it needs is held.
async fn run_unleased(
    session: &staging::Staging,
    env: &str,
    cmd: &MigrateCmd,
    out: Output,
) -> Result<u8> {
    let (spec, env) = (session.spec().clone(), env.to_owned());
    let commit = match cmd {
        MigrateCmd::Apply(a) => a.commit.clone(),
        MigrateCmd::Status | MigrateCmd::Reset(_) => None,
    };
    if let MigrateCmd::Apply(a) = cmd
        && !a.dry_run
    {
        session
            .check_isolation(&env, Writes::Migrations, None)
            .await?;
    }
    let migrations = EnvMigrations::from_secrets(
        session.backends(),
        Arc::clone(&spec),
        &env,
        commit.as_deref(),
    )
    .await?
    .on_output(Arc::new(
        move |line: &staging_migrate::command::OutputLine| {
            if !out.json {
                out.note(&format!("  | {}", line.line));
            }
        },
    ));
    let (report, declares) = match cmd {
        MigrateCmd::Status => {
            let report = migrations.status().await;
            if out.json {
                out.json(&report);
            } else {
                for db in &report.databases {
                    out.line(&format!("database {} ({})", db.database, db.runner));
                    if let Some(e) = &db.error {
                        out.line(&format!("  error: {e}"));
                    }
                    for entry in db.status.iter().flat_map(|s| &s.entries) {
                        out.line(&format!(
                            "  {:<16} {:<32} {}",
                            entry.version,
                            entry.name,
                            state_word(entry.state)
                        ));
                    }
                }
                if report.databases.is_empty() {
                    out.line(&format!("no database of `{env}` declares migrations"));
                }
            }
            return Ok(if report.ok { 0 } else { 1 });
        }
        MigrateCmd::Apply(args) => {
            let options = MigrateOptions {
                dry_run: args.dry_run,
                allow_drift: args.allow_drift,
                ..MigrateOptions::default()
            };
            (
                migrations.with_options(options).apply().await,
                "declares migrations",
            )
        }
        MigrateCmd::Reset(args) => {
            let options = MigrateOptions {
                dry_run: args.dry_run,
                ..MigrateOptions::default()
            };
            let report = migrations.with_options(options).reset().await;
            (report, "declares a `reset` command")
        }
    };
    if out.json {
        out.json(&report);
        return Ok(report.exit_code());
    }
    for db in &report.databases {
        let mark = if db.ok {
            out.paint("32", "ok  ")
        } else {
            out.paint("31", "FAIL")
        };
        out.line(&format!("{mark} database {} ({})", db.database, db.runner));
        if let Some(plan) = &db.plan {
            if plan.to_apply.is_empty() {
                out.line("       nothing to apply");
            }
            for e in &plan.to_apply {
                out.line(&format!("       would apply {} {}", e.version, e.name));
            }
        }
        if let Some(r) = &db.report {
            for a in &r.applied {
                out.line(&format!(
                    "       applied {} {} ({} ms)",
                    a.version,
                    a.name,
                    a.duration.as_millis()
                ));
            }
            for w in &r.warnings {
                out.line(&format!("       warning: {w}"));
            }
        }
        if let Some(seed) = &db.seed {
            out.line(&format!("       seed: {seed}"));
        }
        if let Some(e) = &db.error {
            for l in e.lines() {
                out.line(&format!("       {l}"));
            }
        }
    }
    if report.databases.is_empty() {
        out.line(&format!("no database of `{env}` {declares}"));
    }
    Ok(report.exit_code())
}
