//! `staging plan`: what `up` (or `promote`) would change, read from what is live — never
//! written. Per service: the resolved target (name and platform id) and live commit → the
//! commit to deploy; per variable: add, change, unchanged, or only on the platform, by
//! fingerprint (never a value); per database: pending migrations; the probes that will run;
//! whether the gate would allow a promote. What a reviewer reads before approving.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;
use serde::Serialize;
use staging_core::pipeline::commits_match;
use staging_core::spec::LoadedSpec;
use staging_core::{Capability, DynProvider, Error, MigrationState, Result};
use staging_evidence::{GateDecision, GateRequest, RecordEvidence};
use staging_secrets::Fingerprinter;

use crate::Global;
use crate::commands::up::UpArgs;
use crate::context::{commit, environment, load_spec, registry, up_pipeline};
use crate::output::Output;

/// What happens to one variable of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum VarAction {
    /// Declared, not on the platform: the deploy sets it.
    Add,
    /// On the platform with another value: the deploy sets it.
    Change,
    /// On the platform with the same value: left alone.
    Unchanged,
    /// On the platform, not declared for this service: the deploy leaves it (it never
    /// deletes); remove it on the platform if it is stale.
    Remove,
    /// Declared, but its value could not be read here (see `note`).
    Unknown,
}

#[derive(Debug, Serialize)]
struct VarPlan {
    name: String,
    action: VarAction,
    secret: bool,
    /// Fingerprint of the spec's value (keyed, never reversible), when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    spec: Option<String>,
    /// Fingerprint of the platform's value, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct ServicePlan {
    service: String,
    /// The platform id the service resolves to.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    live_deploy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    live_commit: Option<String>,
    commit: String,
    /// Whether the commit to deploy differs from the live one.
    changes_commit: bool,
    vars: Vec<VarPlan>,
    /// Missing, and created by `up` before its first deploy (see `create`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    created_by_up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct DatabasePlan {
    database: String,
    /// What `staging refresh` of this environment would do to this database (offline).
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh: Option<String>,
    pending: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    drift: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct GatePlan {
    /// The environment whose evidence gates a promote to this one, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    /// Whether `promote` would be allowed now (`null` when no gate applies).
    allowed: Option<bool>,
    reason: String,
}

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
    let spec = load_spec(global)?;
    let env = environment(global, &spec)?;
    let commit = commit(args.commit.as_deref(), &spec)?;
    // Credentials and reachability first, bounded: exit 3 naming what to set.
    staging_core::pipeline::preflight(&registry(), &spec, &env).await?;
    let environment = spec.spec.environment(&env)?;
    let factory = registry().factory_for(&spec, &env)?;
    factory.check(&spec, &env)?;
    let evidence = RecordEvidence::new(Arc::new(staging_evidence::dir_store(&spec)));
    let steps = up_pipeline(&spec, &commit, args.probes.step(), false, evidence).step_names();
    let direct_up = staging_evidence::check_direct_up(&spec, &env)
        .err()
        .map(|e| e.to_string());

    // What `up` would create first (reads only); refused offline, like `up`, on a protected
    // environment without `allow_create`.
    let creation = staging_core::provision::plan(&registry(), &spec, &env).await?;

    let fingerprints = Fingerprinter::for_project(&spec.spec.project.name);
    let (values, secret_names, vars_error) =
        match staging_secrets::resolve_vars(&spec, &env, Some(&commit)).await {
            // Resolving registered every secret value with the redactor.
            Ok(r) => (r.values, r.secret_names, None),
            Err(e) => (BTreeMap::new(), Default::default(), Some(e.to_string())),
        };
    let provider = factory.build(&spec, &env);
    // What the platform must create before the first deploy (a Railway environment copied
    // from the one this promotes to), or why that cannot be read.
    let setup = match &provider {
        Ok(p) => p
            .environment_setup(&env)
            .await
            .unwrap_or_else(|e| Some(format!("cannot tell: {e}"))),
        Err(_) => None,
    };
    let mut services = vec![];
    for name in spec.spec.services.keys() {
        let plan = match &provider {
            Ok(p) => {
                service_plan(
                    p,
                    &spec,
                    &env,
                    name,
                    &commit,
                    &values,
                    &secret_names,
                    &fingerprints,
                )
                .await
            }
            Err(e) => ServicePlan {
                service: name.clone(),
                id: None,
                live_deploy: None,
                live_commit: None,
                commit: commit.clone(),
                changes_commit: true,
                vars: vec![],
                created_by_up: false,
                error: Some(format!("cannot reach the provider: {e}")),
            },
        };
        services.push(plan);
    }
    for s in &mut services {
        let owner = format!("service {}", s.service);
        if creation.create.iter().any(|c| c.owner == owner) {
            s.created_by_up = true;
            s.error = None;
            s.vars.iter_mut().for_each(|v| {
                if v.action == VarAction::Unknown {
                    return;
                }
                v.action = VarAction::Add;
                v.platform = None;
            });
        }
    }
    let databases = database_plans(&spec, &env, &commit).await;
    let probes: Vec<&str> = spec
        .spec
        .probes
        .iter()
        .filter(|p| {
            p.environments
                .as_ref()
                .is_none_or(|envs| envs.contains(&env))
        })
        .map(|p| p.name.as_str())
        .collect();
    let gate = gate_plan(&spec, &env, &commit).await;

    if out.json {
        out.json(&serde_json::json!({
            "environment": env,
            "provider": environment.provider,
            "protected": environment.protected,
            "commit": commit,
            "steps": steps,
            "environment_setup": setup,
            "create": creation.create,
            "create_not_supported": creation.not_supported,
            "services": services,
            "vars_error": vars_error,
            "databases": databases,
            "probes": probes,
            "gate": gate,
            "up_refused": direct_up,
        }));
        return Ok(0);
    }
    out.line(&format!(
        "plan for `{env}` on {} at {} (reads only; nothing was changed):",
        environment.provider,
        short(&commit)
    ));
    out.line(&format!("steps: {}", steps.join(" → ")));
    if let Some(setup) = &setup {
        out.line(&format!("environment: {setup}"));
    }
    for c in &creation.create {
        out.line(&format!("create {}", c.describe()));
        for (k, v) in &c.settings {
            out.line(&format!("  {k} = {v}"));
        }
    }
    if let Some(why) = &creation.not_supported {
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
    Ok(0)
}

#[allow(clippy::too_many_arguments)]
async fn service_plan(
    provider: &DynProvider,
    spec: &LoadedSpec,
    env: &str,
    name: &str,
    commit: &str,
    values: &BTreeMap<String, SecretString>,
    secret_names: &std::collections::BTreeSet<String>,
    fingerprints: &Fingerprinter,
) -> ServicePlan {
    let mut plan = ServicePlan {
        service: name.to_owned(),
        id: None,
        live_deploy: None,
        live_commit: None,
        commit: commit.to_owned(),
        changes_commit: true,
        vars: vec![],
        created_by_up: false,
        error: None,
    };
    let handle = match provider.locate(env, name).await {
        Ok(h) => h,
        Err(e) => {
            plan.error = Some(e.to_string());
            return plan;
        }
    };
    plan.id = Some(handle.id.clone());
    match provider.live_state(&handle).await {
        Ok(state) => {
            plan.live_deploy = state.live.as_ref().map(|d| d.id.clone());
            plan.live_commit = state.live_commit().map(str::to_owned);
            plan.changes_commit = !state
                .live_commit()
                .is_some_and(|c| commits_match(c, commit));
        }
        Err(e) => plan.error = Some(e.to_string()),
    }
    let platform = if provider.capabilities().has(Capability::ReadEnv) {
        match provider.env_vars(&handle).await {
            Ok(v) => Some(v),
            Err(e) => {
                plan.error = Some(format!("cannot read its variables: {e}"));
                None
            }
        }
    } else {
        None
    };
    for var in spec.spec.vars.keys() {
        if !staging_core::pipeline::service_receives(spec, var, name) {
            continue;
        }
        let secret = secret_names.contains(var);
        let wanted = values.get(var);
        let held = platform.as_ref().and_then(|p| p.get(var));
        let (action, note) = match (wanted, &platform, held) {
            (None, _, _) => (
                VarAction::Unknown,
                Some("no value for this environment could be read".to_owned()),
            ),
            (Some(_), None, _) => (
                VarAction::Unknown,
                Some(format!(
                    "{} cannot read the platform's variables",
                    provider.name()
                )),
            ),
            (Some(_), Some(_), None) => (VarAction::Add, None),
            (Some(w), Some(_), Some(h)) if fingerprints.same(w, h) => (VarAction::Unchanged, None),
            (Some(_), Some(_), Some(_)) => (VarAction::Change, None),
        };
        plan.vars.push(VarPlan {
            name: var.clone(),
            action,
            secret,
            spec: wanted.map(|v| fingerprints.display(v)),
            platform: held.map(|v| fingerprints.display(v)),
            note,
        });
    }
    if let Some(platform) = &platform {
        for (key, value) in platform {
            let declared = spec.spec.vars.contains_key(key)
                && staging_core::pipeline::service_receives(spec, key, name);
            if !declared {
                plan.vars.push(VarPlan {
                    name: key.clone(),
                    action: VarAction::Remove,
                    secret: false,
                    spec: None,
                    platform: Some(fingerprints.display(value)),
                    note: Some("on the platform, not declared for this service".into()),
                });
            }
        }
    }
    plan
}

/// What `staging refresh --env ENV` would do to `database`, read from the spec alone.
fn refresh_plan(spec: &LoadedSpec, env: &str, database: &str) -> Option<String> {
    let e = spec.spec.environment(env).ok()?;
    if e.protected {
        return Some("never refreshed: the environment is protected".to_owned());
    }
    let source = e.promotes_to.clone()?;
    let db = spec.spec.databases.get(database)?;
    let copy = match db
        .branch
        .as_ref()
        .filter(|b| b.applies_to(env, e.protected))
    {
        Some(staging_core::spec::BranchSpec::Neon(n)) => format!(
            "reset of neon branch `{}` from `{}`{}",
            n.branch,
            n.parent,
            n.preserve_under_name
                .as_ref()
                .map(|p| format!(" (old state kept as `{p}`)"))
                .unwrap_or_default()
        ),
        Some(staging_core::spec::BranchSpec::Supabase(s)) => {
            format!("reset of supabase branch `{}`", s.branch)
        }
        None => format!("pg_dump of `{source}`'s database, pg_restore into this one"),
    };
    let scrub = match &db.scrub {
        Some(s) => match &s.command {
            Some(c) => format!("scrub `{}`", c.join(" ")),
            None => format!("scrub {}", s.sql.join(", ")),
        },
        None => "NO scrub declared".to_owned(),
    };
    Some(format!(
        "`staging refresh` copies from `{source}`: {copy}, then migrations, then {scrub}"
    ))
}

async fn database_plans(spec: &Arc<LoadedSpec>, env: &str, commit: &str) -> Vec<DatabasePlan> {
    if spec.spec.databases.is_empty() {
        return vec![];
    }
    let migrations =
        match staging_migrate::EnvMigrations::from_secrets(Arc::clone(spec), env, Some(commit))
            .await
        {
            Ok(m) => m,
            Err(e) => {
                return spec
                    .spec
                    .databases
                    .keys()
                    .map(|d| DatabasePlan {
                        database: d.clone(),
                        refresh: refresh_plan(spec, env, d),
                        pending: vec![],
                        drift: vec![],
                        error: Some(e.to_string()),
                    })
                    .collect();
            }
        };
    let report = migrations.status().await;
    report
        .databases
        .into_iter()
        .map(|d| {
            let owned = |state| {
                d.status
                    .as_ref()
                    .map(|s| {
                        s.versions(state)
                            .into_iter()
                            .map(str::to_owned)
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            };
            let mut drift = owned(MigrationState::Modified);
            drift.extend(owned(MigrationState::Missing));
            DatabasePlan {
                refresh: refresh_plan(spec, env, &d.database),
                database: d.database.clone(),
                pending: owned(MigrationState::Pending),
                drift,
                error: d.error.clone(),
            }
        })
        .collect()
}

async fn gate_plan(spec: &LoadedSpec, env: &str, commit: &str) -> GatePlan {
    let Some(from) = spec.spec.promoted_from(env) else {
        return GatePlan {
            from: None,
            allowed: None,
            reason: format!("no environment promotes to `{env}`: no gate applies"),
        };
    };
    let request = GateRequest::new(spec, from, env, commit);
    let decision = match staging_evidence::open_store(spec).await {
        Ok(store) => staging_evidence::check_gate(&*store, &request).await,
        Err(e) => Err(e),
    };
    match decision {
        Ok(GateDecision::Allowed { evidence }) => GatePlan {
            from: Some(from.to_owned()),
            allowed: Some(true),
            reason: format!(
                "`staging promote --to {env}` would be allowed: `{from}` passed this commit (evidence {})",
                evidence.reference().id
            ),
        },
        Ok(GateDecision::Refused { refusal }) => GatePlan {
            from: Some(from.to_owned()),
            allowed: Some(false),
            reason: format!("`staging promote --to {env}` would be refused: {refusal}"),
        },
        Err(e) => GatePlan {
            from: Some(from.to_owned()),
            allowed: None,
            reason: format!("the gate could not be checked: {e}"),
        },
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}
