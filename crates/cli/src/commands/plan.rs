//! `staging plan`: parses, asks the session for the plan ([`staging::plan::Plan`], the model
//! `up` carries out) and prints it.

use staging::plan::{Plan, VarAction};
use staging_core::{Error, Result};

use crate::Global;
use crate::commands::up::UpArgs;
use crate::context::session;
use crate::output::Output;

/// Read what is live and print what would change.
pub(crate) async fn run(global: &Global, args: &UpArgs, out: Output) -> Result<u8> {
    // `plan` shares `up`'s options; those about a run's reports and processes would be
    // silently ignored, so they are refused.
    let ignored: Vec<&str> = [
        (args.reports.junit.is_some(), "--junit"),
        (args.reports.html.is_some(), "--html"),
        (args.reports.summary.is_some(), "--summary"),
        (args.keep_running, "--keep-running"),
        (args.cancel_on_interrupt, "--cancel-on-interrupt"),
        (args.redeploy, "--redeploy"),
    ]
    .into_iter()
    .filter_map(|(given, name)| given.then_some(name))
    .collect();
    if !ignored.is_empty() {
        return Err(Error::config(format!(
            "`staging plan` runs nothing and writes no report: {} {} `staging up`'s",
            ignored.join(", "),
            if ignored.len() == 1 { "is" } else { "are" }
        )));
    }
    let session = session(global)?;
    let env = session.environment(global.env.as_deref())?;
    let commit = session.resolve_commit(args.commit.as_deref())?;
    let plan = session.plan(&env, &commit).await?;
    // An API that did not answer leaves the plan incomplete: exit 3, never 0.
    let code = plan.exit_code();
    if code != 0 {
        out.fail(
            "cannot_proceed",
            &format!(
                "the plan is incomplete: {} could not be read",
                plan.unavailable.join("; ")
            ),
        );
    }
    if out.json {
        out.json(&plan);
        return Ok(code);
    }
    let Plan {
        environment: env,
        provider,
        commit,
        steps,
        environment_setup: setup,
        create,
        create_not_supported,
        services,
        vars_error,
        databases,
        probes,
        gate,
        up_refused: direct_up,
        unavailable,
        ..
    } = plan;
    out.line(&format!(
        "plan for `{env}` on {} at {} (reads only; nothing was changed):",
        provider,
        short(&commit)
    ));
    out.line(&format!("steps: {}", steps.join(" → ")));
    if let Some(setup) = &setup {
        out.line(&format!("environment: {setup}"));
    }
    for c in &create {
        out.line(&format!("create {}", c.describe()));
        for (k, v) in &c.settings {
            out.line(&format!("  {k} = {v}"));
        }
    }
    if let Some(why) = &create_not_supported {
        out.line(&format!("create: not possible here: {why}"));
    }
    for s in &services {
        let target = s.id.as_deref().unwrap_or("?");
        let live = s
            .live_commit
            .as_deref()
            .map(short)
            .unwrap_or("nothing live");
        let change = if s.changes_commit {
            format!("{live} → {}", short(&s.commit))
        } else {
            format!("{live} (unchanged)")
        };
        if s.created_by_up {
            out.line(&format!(
                "service {} (created by up): nothing live → {}",
                s.service,
                short(&s.commit)
            ));
        } else {
            out.line(&format!("service {} ({target}): {change}", s.service));
        }
        if let Some(e) = &s.error {
            out.line(&format!("  error: {e}"));
        }
        for v in &s.vars {
            let fp = |f: &Option<String>| f.clone().unwrap_or_else(|| "-".into());
            let detail = match v.action {
                VarAction::Change => format!("{} → {}", fp(&v.platform), fp(&v.spec)),
                VarAction::Add => fp(&v.spec),
                VarAction::Unchanged => fp(&v.spec),
                VarAction::Remove => format!("{} (not declared; left as is)", fp(&v.platform)),
                VarAction::Unknown => v.note.clone().unwrap_or_default(),
            };
            out.line(&format!(
                "  {:<10} {}{} {detail}",
                format!("{:?}", v.action).to_lowercase(),
                v.name,
                if v.secret { " (secret)" } else { "" }
            ));
        }
    }
    if let Some(e) = &vars_error {
        out.line(&format!("variables: not all could be read: {e}"));
    }
    for d in &databases {
        match &d.error {
            Some(e) => out.line(&format!("database {}: cannot read status: {e}", d.database)),
            None if d.pending.is_empty() => {
                out.line(&format!("database {}: no pending migration", d.database))
            }
            None => out.line(&format!(
                "database {}: pending {}",
                d.database,
                d.pending.join(", ")
            )),
        }
        if let Some(r) = &d.refresh {
            out.line(&format!("  refresh: {r}"));
        }
        if !d.drift.is_empty() {
            out.line(&format!(
                "  modified or missing since applied: {}",
                d.drift.join(", ")
            ));
        }
    }
    out.line(&format!(
        "probes: {}",
        if probes.is_empty() {
            "none".to_owned()
        } else {
            probes.join(", ")
        }
    ));
    out.line(&format!("gate: {}", gate.reason));
    if let Some(why) = direct_up {
        out.line(&format!("note: {why}"));
    }
    for what in &unavailable {
        out.line(&format!("not read: {what}"));
    }
    Ok(code)
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}
