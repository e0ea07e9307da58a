//! `staging plan`: what `up` (or `promote`) would change, read from what is live — never
//! written. The plan is the model `up` carries out: its steps are `up`'s pipeline, its
//! variables the deploy step's own diff ([`staging_core::pipeline::var_changes`]), its
//! creations what the provision step creates. Per service: the resolved target (name and platform id) and live commit → the
//! commit to deploy; per variable: add, change, unchanged, or only on the platform, by
//! fingerprint (never a value); per database: pending migrations; the probes that will run;
//! whether the gate would allow a promote. What a reviewer reads before approving.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;
use serde::Serialize;
use staging_core::pipeline::commits_match;
use staging_core::spec::LoadedSpec;
use staging_core::{Capability, DynProvider, MigrationState, ProviderExt, Result, SecretBackends};
use staging_evidence::{GateDecision, GateRequest, RecordEvidence};
use staging_secrets::Fingerprinter;

pub use staging_core::pipeline::VarAction;

use crate::Staging;

/// One variable of one service in a [`ServicePlan`].
#[derive(Debug, Clone, Serialize)]
pub struct VarPlan {
    /// The variable's name.
    pub name: String,
    /// What the deploy does to it.
    pub action: VarAction,
    /// Whether its value is a secret.
    pub secret: bool,
    /// Fingerprint of the spec's value (keyed, never reversible), when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    /// Fingerprint of the platform's value, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Why the action is [`VarAction::Unknown`] or [`VarAction::Remove`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One service in a [`Plan`].
#[derive(Debug, Clone, Serialize)]
pub struct ServicePlan {
    /// The service's name in the spec.
    pub service: String,
    /// The platform id the service resolves to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The deploy live now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_deploy: Option<String>,
    /// The commit live now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_commit: Option<String>,
    /// The commit `up` deploys.
    pub commit: String,
    /// Whether the commit to deploy differs from the live one.
    pub changes_commit: bool,
    /// Each variable the service receives, and each only its platform has.
    pub vars: Vec<VarPlan>,
    /// Missing, and created by `up` before its first deploy (see `create`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub created_by_up: bool,
    /// What could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One database in a [`Plan`].
#[derive(Debug, Clone, Serialize)]
pub struct DatabasePlan {
    /// The database's name in the spec.
    pub database: String,
    /// What `staging refresh` of this environment would do to this database (offline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
    /// The migrations `up` applies.
    pub pending: Vec<String>,
    /// Applied migrations modified or missing since.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    /// Why the status could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the promotion gate would say, in a [`Plan`].
#[derive(Debug, Clone, Serialize)]
pub struct GatePlan {
    /// The environment whose evidence gates a promote to this one, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Whether `promote` would be allowed now (`null` when no gate applies).
    pub allowed: Option<bool>,
    /// Why, in a sentence.
    pub reason: String,
}

/// What `up` of an environment at a commit would change ([`Staging::plan`]): what
/// `staging plan --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The environment.
    pub environment: String,
    /// Its provider.
    pub provider: String,
    /// Whether it is protected.
    pub protected: bool,
    /// The commit `up` deploys.
    pub commit: String,
    /// The steps of `up`, in order.
    pub steps: Vec<&'static str>,
    /// What the platform creates before the first deploy (a Railway environment).
    pub environment_setup: Option<String>,
    /// What `up` creates first: the database branches (a Neon branch with its compute
    /// endpoint, a Supabase branch), then what the provision step creates.
    pub create: Vec<staging_core::Creation>,
    /// Why creation is not possible here, when the spec asks it.
    pub create_not_supported: Option<String>,
    /// Each service.
    pub services: Vec<ServicePlan>,
    /// Why not every variable could be read.
    pub vars_error: Option<String>,
    /// Each database.
    pub databases: Vec<DatabasePlan>,
    /// The probes the smoke step runs.
    pub probes: Vec<String>,
    /// The promotion gate.
    pub gate: GatePlan,
    /// Why `up` of this environment is refused (an environment only promoted to).
    pub up_refused: Option<String>,
    /// What could not be read because a platform or store did not answer, refused or
    /// could not be reached (never "not found"): the plan is incomplete, and
    /// `staging plan` exits 3 ([`Plan::exit_code`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<String>,
}

impl Plan {
    /// 0, or 3 (the run could not proceed) when something could not be read
    /// ([`Plan::unavailable`]): an API that never answered does not make a plan pass.
    pub fn exit_code(&self) -> u8 {
        if self.unavailable.is_empty() {
            0
        } else {
            staging_core::ErrorClass::CannotProceed.exit_code()
        }
    }
}

/// Notes `e` in `unavailable` when it says the platform or store could not be reached.
fn note_unavailable(unavailable: &mut Vec<String>, what: &str, e: &staging_core::Error) {
    if e.class() == staging_core::ErrorClass::CannotProceed
        && !matches!(e, staging_core::Error::NotFound { .. })
    {
        unavailable.push(format!("{what}: {e}"));
    }
}

/// Read what is live and work out what `up` would change.
pub(crate) async fn plan(session: &Staging, env: &str, commit: &str) -> Result<Plan> {
    let spec = session.spec().clone();
    let registry = session.registry();
    let backends = session.backends();
    // Credentials and reachability first, bounded: exit 3 naming what to set.
    staging_core::pipeline::preflight(registry, &spec, env).await?;
    let environment = spec.spec.environment(env)?;
    let factory = registry.factory_for(&spec, env)?;
    factory.check(&spec, env)?;
    let evidence = RecordEvidence::new(Arc::new(staging_evidence::dir_store(&spec)));
    let steps = session
        .up_pipeline(commit, Default::default(), false, evidence)
        .step_names();
    let direct_up = staging_evidence::check_direct_up(&spec, env)
        .err()
        .map(|e| e.to_string());

    // What `up` would create first (reads only); refused offline, like `up`, on a protected
    // environment without `allow_create`.
    let mut creation = staging_core::provision::plan(registry, &spec, env).await?;
    // Before them, the database branches `up`'s branches step creates (reads only).
    let (branch_creations, branch_errors) =
        branch_plans(backends, &spec, env, environment.protected).await;
    creation.create.splice(0..0, branch_creations);

    let fingerprints = Fingerprinter::for_project(&spec.spec.project.name);
    let mut unavailable = vec![];
    let (values, secret_names, vars_error) =
        match staging_secrets::resolve_vars(backends, &spec, env, Some(commit)).await {
            // Resolving registered every secret value with the redactor.
            Ok(r) => {
                for var in &r.unreachable {
                    let why = r.errors.get(var).map(String::as_str).unwrap_or_default();
                    unavailable.push(format!("variable `{var}`: {why}"));
                }
                (r.values, r.secret_names, None)
            }
            Err(e) => {
                note_unavailable(&mut unavailable, "variables", &e);
                (BTreeMap::new(), Default::default(), Some(e.to_string()))
            }
        };
    let provider = factory.build(&spec, env);
    // What the platform must create before the first deploy (a Railway environment copied
    // from the one this promotes to), or why that cannot be read.
    let setup = match &provider {
        Ok(p) => p.environment_setup(env).await.unwrap_or_else(|e| {
            note_unavailable(&mut unavailable, "environment setup", &e);
            Some(format!("cannot tell: {e}"))
        }),
        Err(_) => None,
    };
    let mut services = vec![];
    for name in spec.spec.services.keys() {
        let plan = match &provider {
            Ok(p) => {
                service_plan(
                    p,
                    &spec,
                    env,
                    name,
                    commit,
                    &values,
                    &secret_names,
                    &fingerprints,
                    &mut unavailable,
                )
                .await
            }
            Err(e) => ServicePlan {
                service: name.clone(),
                id: None,
                live_deploy: None,
                live_commit: None,
                commit: commit.to_owned(),
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
            // Created by `up`, it has no variable yet: the deploy sets every one it
            // receives, as the deploy step's diff against an empty set says.
            s.vars = var_plans(
                &spec,
                &s.service,
                &values,
                &secret_names,
                &fingerprints,
                Some(&BTreeMap::new()),
                &environment.provider,
            );
        }
    }
    let mut databases = database_plans(backends, &spec, env, commit).await;
    for (db, e) in branch_errors {
        if let Some(d) = databases.iter_mut().find(|d| d.database == db) {
            d.error = Some(match d.error.take() {
                Some(other) => format!("{e}; {other}"),
                None => e,
            });
        }
    }
    let probes: Vec<String> = spec
        .spec
        .probes
        .iter()
        .filter(|p| {
            p.environments
                .as_ref()
                .is_none_or(|envs| envs.iter().any(|e| e == env))
        })
        .map(|p| p.name.clone())
        .collect();
    let gate = gate_plan(&spec, env, commit).await;

    Ok(Plan {
        environment: env.to_owned(),
        provider: environment.provider.clone(),
        protected: environment.protected,
        commit: commit.to_owned(),
        steps,
        environment_setup: setup,
        create: creation.create,
        create_not_supported: creation.not_supported,
        services,
        vars_error,
        databases,
        probes,
        gate,
        up_refused: direct_up,
        unavailable,
    })
}

/// What `up`'s branches step would create for `env`'s database branches (a branch from its
/// parent, a Neon compute endpoint), read only; and per database, why it could not be read.
/// A protected environment creates none (`up` there only checks the branch exists).
async fn branch_plans(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    env: &str,
    protected: bool,
) -> (Vec<staging_core::Creation>, Vec<(String, String)>) {
    let mut create = vec![];
    let mut errors = vec![];
    for (db, d) in &spec.spec.databases {
        let Some(b) = d.branch.as_ref().filter(|b| b.applies_to(env, protected)) else {
            continue;
        };
        let Some(build) = &backends.database_branches else {
            errors.push((
                db.clone(),
                "its branch's provider is not in this build".into(),
            ));
            continue;
        };
        let missing = match build(b) {
            Ok(branch) => branch.missing(&format!("database {db}")).await,
            Err(e) => Err(e),
        };
        match missing {
            Ok(m) if protected && !m.is_empty() => errors.push((
                db.clone(),
                "its branch is missing, and `up` of a protected environment creates none".into(),
            )),
            Ok(m) => create.extend(m),
            Err(e) => errors.push((db.clone(), format!("cannot read its branch: {e}"))),
        }
    }
    (create, errors)
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
    unavailable: &mut Vec<String>,
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
    let what = format!("service `{name}`");
    let handle = match provider.locate(env, name).await {
        Ok(h) => h,
        Err(e) => {
            note_unavailable(unavailable, &what, &e);
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
        Err(e) => {
            note_unavailable(unavailable, &what, &e);
            plan.error = Some(e.to_string());
        }
    }
    let platform = if provider.capabilities().has(Capability::ReadEnv) {
        match provider.env_vars(&handle).await {
            Ok(v) => Some(v),
            Err(e) => {
                note_unavailable(unavailable, &what, &e);
                plan.error = Some(format!("cannot read its variables: {e}"));
                None
            }
        }
    } else {
        None
    };
    plan.vars = var_plans(
        spec,
        name,
        values,
        secret_names,
        fingerprints,
        platform.as_ref(),
        provider.name(),
    );
    plan
}

/// The variables of service `name` as the deploy step's own diff
/// ([`staging_core::pipeline::var_changes`]) gives them: what it will write is exactly what
/// is shown here. `platform` is `None` when the platform's variables cannot be read.
fn var_plans(
    spec: &LoadedSpec,
    name: &str,
    values: &BTreeMap<String, SecretString>,
    secret_names: &std::collections::BTreeSet<String>,
    fingerprints: &Fingerprinter,
    platform: Option<&BTreeMap<String, SecretString>>,
    provider_name: &str,
) -> Vec<VarPlan> {
    let declared: BTreeMap<String, SecretString> = values
        .iter()
        .filter(|(k, _)| spec.spec.vars.contains_key(k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut out = vec![];
    for change in staging_core::pipeline::var_changes(spec, name, &declared, platform) {
        let var = &change.name;
        let wanted = values.get(var);
        let held = platform.and_then(|p| p.get(var));
        let (action, note) = match change.action {
            VarAction::Unknown => (
                VarAction::Unknown,
                Some("no value for this environment could be read".to_owned()),
            ),
            // The deploy sets it either way; what the platform holds cannot be shown.
            VarAction::Add if platform.is_none() => (
                VarAction::Unknown,
                Some(format!(
                    "{provider_name} cannot read the platform's variables"
                )),
            ),
            VarAction::Remove => (
                VarAction::Remove,
                Some("on the platform, not declared for this service".into()),
            ),
            action => (action, None),
        };
        out.push(VarPlan {
            name: var.clone(),
            action,
            secret: change.action != VarAction::Remove && secret_names.contains(var),
            spec: wanted
                .filter(|_| change.action != VarAction::Remove)
                .map(|v| fingerprints.display(v)),
            platform: held.map(|v| fingerprints.display(v)),
            note,
        });
    }
    out
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

async fn database_plans(
    backends: &SecretBackends,
    spec: &Arc<LoadedSpec>,
    env: &str,
    commit: &str,
) -> Vec<DatabasePlan> {
    if spec.spec.databases.is_empty() {
        return vec![];
    }
    let migrations = match staging_migrate::EnvMigrations::from_secrets(
        backends,
        Arc::clone(spec),
        env,
        Some(commit),
    )
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
