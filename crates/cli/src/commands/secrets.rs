//! `staging secrets check|diff|sync|rotate`.

use clap::{Args, Subcommand};
use serde::Serialize;
use staging_core::Result;

use crate::Global;
use crate::context::session;
use crate::output::Output;

/// The `secrets` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SecretsCmd {
    /// Every variable of an environment: source, status, fingerprint (never the value).
    Check,
    /// Compare two environments: keys on one side only, equal values, rule violations.
    Diff {
        /// The first environment.
        a: String,
        /// The second environment.
        b: String,
    },
    /// Push the declared values to the provider's env vars, one key at a time (plan only
    /// without --apply; keys not in the spec are left alone).
    Sync(SyncArgs),
    /// Generate a new value from the OS CSPRNG, write it to the store and the provider.
    Rotate {
        /// The variable to rotate.
        name: String,
        /// Show what would change (the current value's fingerprint, the store, the
        /// services), generate nothing for use and write nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        lease: crate::lease::LeaseArgs,
    },
}

/// Options of `secrets sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// Carry out the plan.
    #[arg(long)]
    apply: bool,
    /// Apply even when some values break the rules.
    #[arg(long)]
    allow_violations: bool,
    #[command(flatten)]
    lease: crate::lease::LeaseArgs,
}

/// The snake_case name serde gives an enum value.
fn word<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(crate) async fn run(global: &Global, cmd: &SecretsCmd, out: Output) -> Result<u8> {
    let session = session(global)?;
    let spec = session.spec().clone();
    // Writing to the provider or a store takes the environment's lease; the rest only reads.
    let (lease_args, command) = match cmd {
        SecretsCmd::Sync(a) if a.apply => (&a.lease, "secrets sync"),
        SecretsCmd::Rotate { dry_run, lease, .. } if !dry_run => (lease, "secrets rotate"),
        _ => return super::stoppable(out, run_unleased(global, &session, cmd, out)).await,
    };
    let env = session.environment(global.env.as_deref())?;
    let store = staging_evidence::open_store(&spec).await?;
    let mut stop = super::up::StopSignals::listen()?;
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
    // A signal drops the run: no write is started after it, and a secret store's command
    // is stopped (its process group whole) before the lease is released.
    let held = crate::lease::run_held(
        &mut lease,
        &mut stop,
        run_unleased(global, &session, cmd, out),
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
    global: &Global,
    session: &staging::Staging,
    cmd: &SecretsCmd,
    out: Output,
) -> Result<u8> {
    match cmd {
        SecretsCmd::Check => {
            let env = session.environment(global.env.as_deref())?;
            let report = session.check_secrets(&env, None).await?;
            if out.json {
                out.json(&report);
            } else {
                out.line(&format!(
                    "secrets of `{env}` (fingerprints keyed by {} key):",
                    report.fingerprint_key
                ));
                out.line(&format!(
                    "{:<24} {:<8} {:<28} {:<16} PROBLEMS",
                    "VARIABLE", "STATUS", "SOURCE", "FINGERPRINT"
                ));
                for v in &report.vars {
                    let status = word(&v.status);
                    let status = if v.status.fails() {
                        out.paint("31", &format!("{status:<8}"))
                    } else {
                        format!("{status:<8}")
                    };
                    let fp = v.fingerprint.clone().unwrap_or_else(|| "-".into());
                    let first = v.problems.first().map(|p| p.message.as_str()).unwrap_or("");
                    out.line(&format!(
                        "{:<24} {status} {:<28} {fp:<16} {first}",
                        v.name, v.source
                    ));
                    for p in v.problems.iter().skip(1) {
                        out.line(&format!("{:<80} {}", "", p.message));
                    }
                }
                let failed = report.failures().count();
                out.line(&if failed == 0 {
                    "all variables pass their rules".to_owned()
                } else {
                    format!("{failed} variable(s) fail their rules")
                });
            }
            Ok(report.exit_code())
        }
        SecretsCmd::Diff { a, b } => {
            let report = session.diff_secrets(a, b).await?;
            if out.json {
                out.json(&report);
            } else {
                out.line(&format!(
                    "{:<24} {:<16} {:<16} {:<8} NOTE",
                    "VARIABLE", a, b, "EQUAL"
                ));
                for r in &report.vars {
                    let side = |has: bool, fp: &Option<String>| {
                        if has {
                            fp.clone().unwrap_or_else(|| "set".into())
                        } else {
                            "-".into()
                        }
                    };
                    let equal = r.equal.map(|e| if e { "yes" } else { "no" }).unwrap_or("-");
                    let mut notes: Vec<String> = r
                        .problems_a
                        .iter()
                        .map(|p| format!("{a}: {}", p.message))
                        .collect();
                    notes.extend(r.problems_b.iter().map(|p| format!("{b}: {}", p.message)));
                    if let Some(exp) = r.expected {
                        notes.insert(0, format!("must {exp}"));
                    }
                    out.line(&format!(
                        "{:<24} {:<16} {:<16} {equal:<8} {}",
                        r.name,
                        side(r.in_a, &r.fingerprint_a),
                        side(r.in_b, &r.fingerprint_b),
                        notes.join("; ")
                    ));
                }
                if !report.only_in_a.is_empty() {
                    out.line(&format!("only in {a}: {}", report.only_in_a.join(", ")));
                }
                if !report.only_in_b.is_empty() {
                    out.line(&format!("only in {b}: {}", report.only_in_b.join(", ")));
                }
            }
            Ok(report.exit_code())
        }
        SecretsCmd::Sync(args) => {
            let env = session.environment(global.env.as_deref())?;
            let options = staging_secrets::SyncOptions {
                apply: args.apply,
                allow_violations: args.allow_violations,
            };
            let report = session.sync_secrets(&env, options).await?;
            if out.json {
                out.json(&report);
            } else {
                let verb = if report.applied { "applied" } else { "plan" };
                out.line(&format!(
                    "secrets sync of `{env}` to {} ({verb}):",
                    report.provider
                ));
                for s in &report.services {
                    out.line(&format!("  {} ({})", s.service, s.id));
                    for i in &s.items {
                        let fp = i.fingerprint.clone().unwrap_or_default();
                        let outcome = i
                            .outcome
                            .as_ref()
                            .map(|o| format!(" -> {}", word(o)))
                            .unwrap_or_default();
                        let note = i
                            .note
                            .as_ref()
                            .map(|n| format!(" ({n})"))
                            .unwrap_or_default();
                        out.line(&format!(
                            "    {:<10} {:<24} {fp}{outcome}{note}",
                            word(&i.action),
                            i.key
                        ));
                    }
                    if !s.unmanaged.is_empty() {
                        out.line(&format!(
                            "    left alone (not in the spec): {}",
                            s.unmanaged.join(", ")
                        ));
                    }
                }
                if let Some(why) = &report.refused {
                    out.line(&format!("refused: {why}"));
                } else if !report.applied && report.pending_changes() > 0 {
                    out.line(&format!(
                        "{} change(s) pending; run again with --apply to carry them out",
                        report.pending_changes()
                    ));
                }
            }
            Ok(report.exit_code())
        }
        SecretsCmd::Rotate { name, dry_run, .. } => {
            let env = session.environment(global.env.as_deref())?;
            // A dry run runs every check the rotation would, isolation included.
            let report = session.rotate_secret(&env, name, *dry_run).await?;
            let previous = report.previous_fingerprint.as_deref().unwrap_or("no value");
            if out.json {
                out.json(&report);
            } else if report.dry_run {
                out.line(&format!(
                    "would rotate {} in `{env}`: {previous} in {} would be replaced by a new generated value",
                    report.var, report.store
                ));
                if !report.provider_services.is_empty() {
                    out.line(&format!(
                        "would set on: {}",
                        report.provider_services.join(", ")
                    ));
                }
                out.line("dry run: nothing was written");
            } else {
                out.line(&format!(
                    "rotated {} in `{env}`: {previous} -> new value {} written to {}",
                    report.var, report.fingerprint, report.store
                ));
                if !report.provider_services.is_empty() {
                    out.line(&format!("set on: {}", report.provider_services.join(", ")));
                }
                for e in &report.provider_errors {
                    out.line(&format!("not set: {e}"));
                }
                for w in &report.warnings {
                    out.note(&format!("warning: {w}"));
                }
            }
            Ok(if report.ok { 0 } else { 1 })
        }
    }
}
