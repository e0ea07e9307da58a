//! `staging evidence list|show`, `staging diff`, `staging doctor`.

use clap::{Args, Subcommand};
use staging_core::pipeline::EvidenceRef;
use staging_core::{Error, Result};
use staging_evidence::EvidenceFilter;

use crate::Global;
use crate::context::session;
use crate::output::Output;

/// The `evidence` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum EvidenceCmd {
    /// Recorded runs, newest first (filtered by --env and --commit).
    List {
        /// Only runs of this commit (a prefix is enough).
        #[arg(long)]
        commit: Option<String>,
    },
    /// One recorded run, by the id `list` shows.
    Show {
        /// The id.
        id: String,
    },
}

/// Options of `doctor`.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Diagnose the latest run of this commit (default: the latest run of the environment).
    #[arg(long)]
    commit: Option<String>,
}

pub(crate) async fn evidence(global: &Global, cmd: &EvidenceCmd, out: Output) -> Result<u8> {
    let session = session(global)?;
    let spec = session.spec().clone();
    let store = staging_evidence::open_store(&spec).await?;
    match cmd {
        EvidenceCmd::List { commit } => {
            let mut filter = EvidenceFilter::new().project(spec.spec.project.name.clone());
            if let Some(env) = &global.env {
                filter = filter.environment(env.clone());
            }
            if let Some(c) = commit {
                filter = filter.commit(c.clone());
            }
            let listing = store.list(&filter).await?;
            if out.json {
                out.json(&serde_json::json!({ "runs": listing.summaries(), "unreadable": listing.unreadable }));
                return Ok(0);
            }
            out.line(&format!(
                "{:<14} {:<14} {:<26} {:<7} {:<7} ID",
                "ENVIRONMENT", "COMMIT", "RECORDED", "RESULT", "INTACT"
            ));
            for s in listing.summaries() {
                let result = if s.ok {
                    "passed".to_owned()
                } else {
                    format!(
                        "failed{}",
                        s.failed_step.map(|f| format!(" ({f})")).unwrap_or_default()
                    )
                };
                out.line(&format!(
                    "{:<14} {:<14} {:<26} {:<7} {:<7} {}",
                    s.environment,
                    &s.commit[..s.commit.len().min(12)],
                    s.recorded_at,
                    result,
                    if s.intact { "yes" } else { "EDITED" },
                    s.id
                ));
            }
            for u in &listing.unreadable {
                out.line(&format!("unreadable: {} ({})", u.id, u.reason));
            }
            Ok(0)
        }
        EvidenceCmd::Show { id } => {
            let stored = store.get(id).await?;
            let source_check = match &stored.evidence.promoted_from {
                Some(source) => Some(check_source(&*store, source).await),
                None => None,
            };
            if out.json {
                let mut doc = serde_json::to_value(&stored).unwrap_or_default();
                if let (Some((check, _)), Some(obj)) = (&source_check, doc.as_object_mut()) {
                    obj.insert("promoted_from_check".to_owned(), (*check).into());
                }
                out.json(&doc);
            } else {
                let e = &stored.evidence;
                out.line(&format!(
                    "{} {} at {} ({})",
                    e.project,
                    e.environment,
                    e.commit,
                    if e.ok { "passed" } else { "failed" }
                ));
                out.line(&format!(
                    "recorded {} by staging {}; spec {}",
                    e.recorded_at, e.tool_version, e.spec_hash
                ));
                out.line(&format!(
                    "content hash {}",
                    if stored.intact {
                        "matches"
                    } else {
                        "DOES NOT MATCH: the record was edited"
                    }
                ));
                if let (Some(source), Some((_, why))) = (&e.promoted_from, &source_check) {
                    out.line(&format!(
                        "promoted on `{}` evidence {} (content hash {}): {why}",
                        source.environment, source.id, source.content_hash
                    ));
                }
                for step in &e.steps {
                    out.line(&format!(
                        "  {:<8} {:<9} {}",
                        step["status"].as_str().unwrap_or("?"),
                        step["step"].as_str().unwrap_or("?"),
                        step["summary"].as_str().unwrap_or("")
                    ));
                }
            }
            Ok(0)
        }
    }
}

/// Whether the record a promotion names is still in `store` as it was relied on: `matches`,
/// `differs` (its content hash is not the one named, or no longer matches its content),
/// `missing`, or `unreadable`; with a sentence for people.
async fn check_source(
    store: &dyn staging_evidence::EvidenceStore,
    source: &EvidenceRef,
) -> (&'static str, String) {
    match store.get(&source.id).await {
        Ok(found) if found.intact && found.evidence.content_hash == source.content_hash => (
            "matches",
            format!("the record is in {} unchanged", store.describe()),
        ),
        Ok(_) => (
            "differs",
            format!(
                "the record in {} is NOT the one relied on (its content changed)",
                store.describe()
            ),
        ),
        Err(Error::NotFound { .. }) => (
            "missing",
            format!("the record is not in {}", store.describe()),
        ),
        Err(e) => ("unreadable", format!("the record cannot be read: {e}")),
    }
}

/// Drift between two environments.
pub(crate) async fn diff(global: &Global, a: &str, b: &str, out: Output) -> Result<u8> {
    let session = session(global)?;
    let report = session.diff(a, b).await?;
    if out.json {
        out.json(&report);
        return Ok(report.exit_code());
    }
    out.line(&format!("drift between `{a}` and `{b}`:"));
    if !report.vars.only_in_a.is_empty() {
        out.line(&format!(
            "  variables only in {a}: {}",
            report.vars.only_in_a.join(", ")
        ));
    }
    if !report.vars.only_in_b.is_empty() {
        out.line(&format!(
            "  variables only in {b}: {}",
            report.vars.only_in_b.join(", ")
        ));
    }
    for v in report.vars.vars.iter().filter(|v| v.equal.is_some()) {
        let same = if v.equal == Some(true) {
            "equal"
        } else {
            "different"
        };
        let rule = v
            .expected
            .map(|e| format!(" (must {e})"))
            .unwrap_or_default();
        out.line(&format!("  {:<24} {same}{rule}", v.name));
    }
    for m in &report.migrations {
        let side = |s: &staging_evidence::MigrationSide| match &s.unreachable {
            Some(why) => format!("unreachable ({why})"),
            None => format!("{} applied, {} pending", s.applied.len(), s.pending.len()),
        };
        out.line(&format!(
            "  database {}: {a} {}; {b} {}",
            m.database,
            side(&m.a),
            side(&m.b)
        ));
        if !m.only_applied_in_a.is_empty() {
            out.line(&format!(
                "    applied only in {a}: {}",
                m.only_applied_in_a.join(", ")
            ));
        }
        if !m.only_applied_in_b.is_empty() {
            out.line(&format!(
                "    applied only in {b}: {}",
                m.only_applied_in_b.join(", ")
            ));
        }
    }
    for side in &report.platforms {
        if let Some(why) = &side.unreadable {
            out.line(&format!(
                "  platform of {}: not read ({why})",
                side.environment
            ));
            continue;
        }
        for (name, svc) in &side.services {
            out.line(&format!(
                "  platform of {}: {name} ({}) serves {}{}",
                side.environment,
                svc.id.as_deref().unwrap_or("?"),
                svc.live_commit
                    .as_deref()
                    .map(|c| &c[..c.len().min(12)])
                    .unwrap_or("nothing"),
                svc.note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ));
        }
    }
    for v in &report.platform_vars {
        let fp = |f: &Option<String>| f.clone().unwrap_or_else(|| "-".into());
        let same = match v.equal {
            Some(true) => "equal",
            Some(false) => "different",
            None => "not comparable",
        };
        let rule = v
            .expected
            .map(|e| format!(" (must {e})"))
            .unwrap_or_default();
        out.line(&format!(
            "  {:<24} {} {same}{rule}: {a} {} ({}) / {b} {} ({})",
            v.var,
            v.service,
            fp(&v.a),
            v.a_from,
            fp(&v.b),
            v.b_from
        ));
    }
    for s in &report.settings {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        out.line(&format!(
            "  setting {} {}: {a} {} / {b} {}",
            s.scope,
            s.key,
            show(&s.a),
            show(&s.b)
        ));
    }
    if report.rules_broken.is_empty() {
        out.line("no rule is broken");
    } else {
        for r in &report.rules_broken {
            out.line(&format!(
                "  {} {}: {}",
                out.paint("31", "BROKEN"),
                r.subject,
                r.message
            ));
        }
    }
    Ok(report.exit_code())
}

/// Each failure of the latest run, with its likely cause and remedy.
pub(crate) async fn doctor(global: &Global, args: &DoctorArgs, out: Output) -> Result<u8> {
    let session = session(global)?;
    let spec = session.spec().clone();
    let store = staging_evidence::open_store(&spec).await?;
    let mut filter = EvidenceFilter::new().project(spec.spec.project.name.clone());
    if let Some(env) = &global.env {
        filter = filter.environment(env.clone());
    }
    if let Some(c) = &args.commit {
        filter = filter.commit(c.clone());
    }
    let stored = staging_evidence::latest(&*store, &filter)
        .await?
        .ok_or_else(|| Error::not_found("a recorded run to diagnose (run `staging up` first)"))?;
    let diagnosis = staging_evidence::diagnose_evidence(&stored.evidence);
    if out.json {
        out.json(&diagnosis);
        return Ok(0);
    }
    let c = &diagnosis.commit;
    out.line(&format!(
        "latest run of `{}` at {} ({})",
        diagnosis.environment,
        &c[..c.len().min(12)],
        stored.id
    ));
    if diagnosis.ok {
        out.line("it passed: nothing to diagnose");
    }
    for d in &diagnosis.failures {
        out.line(&format!(
            "{} {} / {}: {}",
            out.paint("31", "x"),
            d.step,
            d.subject,
            d.failure.lines().next().unwrap_or_default()
        ));
        out.line(&format!("    likely cause: {}", d.cause));
        out.line(&format!("    remedy:       {}", d.remedy));
    }
    Ok(0)
}
