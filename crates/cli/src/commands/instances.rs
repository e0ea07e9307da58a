//! `staging down`, `staging list`, `staging gc`: the instances of ephemeral environments.

use clap::Args;
use staging::{DownReport, Instance};
use staging_core::Result;

use crate::Global;
use crate::context::session;
use crate::output::Output;

/// Options of `down`.
#[derive(Debug, Args, Clone)]
pub(crate) struct DownArgs {
    /// Say what would be deleted, and delete nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) lease: crate::lease::LeaseArgs,
}

/// Options of `list`.
#[derive(Debug, Args, Clone)]
pub(crate) struct ListArgs {
    /// Also the instances already torn down.
    #[arg(long)]
    pub(crate) all: bool,
}

/// Options of `gc`.
#[derive(Debug, Args, Clone)]
pub(crate) struct GcArgs {
    /// Tear the expired instances down. Without it, `gc` only lists what it would tear down
    /// (nothing ever prompts: CI passes `--yes`).
    #[arg(long)]
    pub(crate) yes: bool,
}

/// `staging down`: under the instance's lease (a signal stops it between deletions; what was
/// deleted is on record, and the next `down` deletes the rest).
pub(crate) async fn down(global: &Global, args: &DownArgs, out: Output) -> Result<u8> {
    let session = session(global)?;
    let spec = session.spec().clone();
    let env = session.environment(global.env.as_deref())?;
    spec.check_instance_for(&env)?;
    let store = staging_evidence::open_store(&spec).await?;
    let report = if args.dry_run {
        session.down_held(&store, &env, true).await?
    } else {
        let mut stop = super::up::StopSignals::listen()?;
        let mut lease = match crate::lease::take(
            &store,
            crate::lease::holder(&spec, &env, "down", None),
            &args.lease,
            &mut stop,
            out,
        )
        .await?
        {
            Ok(lease) => lease,
            Err(signal) => return Ok(signal.exit_code()),
        };
        let held = crate::lease::run_held(
            &mut lease,
            &mut stop,
            session.down_held(&store, &env, false),
        )
        .await;
        let result = crate::lease::finish(
            held,
            "the teardown (what it deleted is on record; `staging down` again deletes the rest)",
            out,
        );
        crate::lease::release(lease, out).await;
        match result {
            Ok(report) => report?,
            Err(code) => return Ok(code),
        }
    };
    show_down(&report, out);
    Ok(0)
}

fn show_down(report: &DownReport, out: Output) {
    if out.json {
        out.json(report);
        return;
    }
    let verb = if report.dry_run {
        "would tear down"
    } else {
        "tore down"
    };
    out.line(&format!(
        "{} instance `{}` of `{}`",
        out.paint("1", verb),
        report.instance,
        report.environment
    ));
    if report.resources.is_empty() {
        out.line("  nothing was recorded as created");
    }
    for t in &report.resources {
        out.line(&format!(
            "  {:<16} {}{}",
            t.action,
            t.resource.describe(),
            t.id.as_deref()
                .map(|i| format!(" [{i}]"))
                .unwrap_or_default()
        ));
    }
}

/// `staging list`.
pub(crate) async fn list(global: &Global, args: &ListArgs, out: Output) -> Result<u8> {
    let session = session(global)?;
    let instances = session.instances(global.env.as_deref(), args.all).await?;
    if out.json {
        out.json(&serde_json::json!({ "instances": instances }));
        return Ok(0);
    }
    if instances.is_empty() {
        out.line("no instance on record");
    }
    for i in &instances {
        out.line(&describe(i));
        for r in &i.resources {
            out.line(&format!("    {}", r.describe()));
        }
    }
    Ok(0)
}

fn describe(i: &Instance) -> String {
    let age = humantime::format_duration(std::time::Duration::from_secs(i.age_secs / 60 * 60));
    let short = i.commit.get(..12).unwrap_or(&i.commit);
    let expiry = match (i.down_at, i.expired, i.expires_at) {
        (Some(_), _, _) => "torn down".to_owned(),
        (None, true, _) => "EXPIRED".to_owned(),
        (None, false, Some(at)) => {
            let left = at.saturating_sub(staging_core::teardown::now_secs());
            format!(
                "expires in {}",
                humantime::format_duration(std::time::Duration::from_secs(left / 60 * 60))
            )
        }
        (None, false, None) => "no ttl".to_owned(),
    };
    format!(
        "{}/{}  age {}  commit {}  {}  {} resource(s)",
        i.environment,
        i.instance,
        if i.age_secs < 60 {
            "<1m".to_owned()
        } else {
            age.to_string()
        },
        short,
        expiry,
        i.resources.len()
    )
}

/// `staging gc`: exit 0 when every expired instance was torn down (or listed), 1 when one
/// could not be.
pub(crate) async fn gc(global: &Global, args: &GcArgs, out: Output) -> Result<u8> {
    let session = session(global)?;
    let results = session.gc(global.env.as_deref(), !args.yes).await?;
    let mut code = 0;
    let mut json = vec![];
    if !out.json && results.is_empty() {
        out.line("no expired instance");
    }
    for (instance, result) in results {
        match result {
            Ok(report) => {
                if out.json {
                    json.push(serde_json::json!({ "instance": instance, "down": report }));
                } else {
                    out.line(&describe(&instance));
                    show_down(&report, out);
                }
            }
            Err(e) => {
                code = 1;
                if out.json {
                    json.push(serde_json::json!({
                        "instance": instance,
                        "error": crate::output::error_of(&e),
                    }));
                } else {
                    out.line(&describe(&instance));
                    out.note(&format!(
                        "  {}/{} not torn down: {e}",
                        instance.environment, instance.instance
                    ));
                }
            }
        }
    }
    if out.json {
        out.json(&serde_json::json!({ "dry_run": !args.yes, "expired": json }));
    } else if !args.yes {
        out.line("(dry run: nothing was deleted; `staging gc --yes` tears these down)");
    }
    Ok(code)
}
