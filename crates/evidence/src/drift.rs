//! `staging diff A B`: how two environments of one spec differ — variables, secret values
//! (by fingerprint, against the rules that say they must differ or match), migration
//! versions on each database, and provider settings.
//!
//! Only declared rules make the diff fail: environments are *meant* to differ in their
//! service names or instance counts, so those are shown, not judged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use staging_core::spec::LoadedSpec;
use staging_core::{MigrationState, MigrationStatus, ProviderRegistry, Redactor, Result};
use staging_migrate::EnvMigrations;
use staging_secrets::{DiffReport, Fingerprinter, Severity};

use crate::platform::{PlatformSide, PlatformVarDiff, compare_platforms, read_platform};

/// A declared rule one of the environments breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenRule {
    /// What it is about (`JWT_SECRET`, `database main`).
    pub subject: String,
    /// The rule (`differs_from`, `same_as`, `required`, `staging_before_production`...).
    pub rule: String,
    /// What is wrong, never a value.
    pub message: String,
}

/// The migrations of one database in one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MigrationSide {
    /// The versions applied (unchanged or not).
    pub applied: Vec<String>,
    /// The versions not applied yet.
    pub pending: Vec<String>,
    /// Why the database could not be read (unreachable, no URL): noted, not a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
}

/// One database compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseDrift {
    /// The database (`[databases.NAME]`).
    pub database: String,
    /// In the first environment.
    pub a: MigrationSide,
    /// In the second environment.
    pub b: MigrationSide,
    /// Versions applied in the first only (when both could be read).
    pub only_applied_in_a: Vec<String>,
    /// Versions applied in the second only (when both could be read).
    pub only_applied_in_b: Vec<String>,
}

/// One setting whose value differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingDiff {
    /// Where: `environment` or `service web`.
    pub scope: String,
    /// The setting (`plan`, `instance_count`, `region`, `provider`, `deploy_timeout`).
    pub key: String,
    /// Its value in the first environment, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<String>,
    /// Its value in the second environment, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<String>,
}

/// The live env var keys of one service that only one side has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveEnvDiff {
    /// The service.
    pub service: String,
    /// Keys set on the service in the first environment only.
    pub only_in_a: Vec<String>,
    /// Keys set on the service in the second environment only.
    pub only_in_b: Vec<String>,
}

/// The result of `staging diff A B`.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    /// The project.
    pub project: String,
    /// The first environment.
    pub a: String,
    /// The second environment.
    pub b: String,
    /// Declared variables: which side has a value, equal or not by fingerprint, the rules
    /// each side breaks.
    pub vars: DiffReport,
    /// Live env var keys of each service set on one side only, when the caller read them
    /// from the providers ([`DriftReport::add_live_env`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub live_env: Vec<LiveEnvDiff>,
    /// Migration versions of each database.
    pub migrations: Vec<DatabaseDrift>,
    /// Provider settings that differ.
    pub settings: Vec<SettingDiff>,
    /// What each environment's provider holds (platform ids, live commits), when read
    /// ([`DriftReport::add_platform`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformSide>,
    /// Each declared variable of each service compared on the platforms, by fingerprint,
    /// saying where each side's value came from (`spec` or `platform`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platform_vars: Vec<PlatformVarDiff>,
    /// Declared rules that are broken; empty when the diff passes.
    pub rules_broken: Vec<BrokenRule>,
}

impl DriftReport {
    /// Whether a declared rule is broken.
    pub fn broken(&self) -> bool {
        !self.rules_broken.is_empty()
    }

    /// 1 when a rule is broken, else 0.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.broken())
    }

    /// Read what each environment's provider holds (reads only) and compare it: each
    /// declared variable of each service by fingerprint (the platform's value where it
    /// could be read, else the spec's), judged by the `same_as` / `differs_from` rules
    /// between the two environments; live commits and platform ids are reported.
    pub async fn add_platform(
        &mut self,
        backends: &staging_core::SecretBackends,
        spec: &Arc<LoadedSpec>,
        registry: &ProviderRegistry,
    ) {
        let side_a = read_platform(spec, &self.a, registry).await;
        let side_b = read_platform(spec, &self.b, registry).await;
        let values = |env: &str| {
            let spec = spec.clone();
            let env = env.to_owned();
            let backends = backends.clone();
            async move {
                staging_secrets::resolve_vars(&backends, &spec, &env, None)
                    .await
                    .map(|r| r.values)
                    .unwrap_or_default()
            }
        };
        let (values_a, values_b) = (values(&self.a).await, values(&self.b).await);
        let fingerprints = Fingerprinter::for_project(&spec.spec.project.name);
        let (rows, broken) = compare_platforms(
            spec,
            (&side_a, &values_a),
            (&side_b, &values_b),
            &fingerprints,
        );
        for (service, keys_a, keys_b) in spec.spec.services.keys().filter_map(|s| {
            let a = side_a.services.get(s)?.vars.as_ref()?;
            let b = side_b.services.get(s)?.vars.as_ref()?;
            Some((
                s.clone(),
                a.keys().cloned().collect::<Vec<_>>(),
                b.keys().cloned().collect::<Vec<_>>(),
            ))
        }) {
            self.add_live_env(&service, keys_a, keys_b);
        }
        self.platform_vars = rows;
        self.rules_broken.extend(broken);
        self.platforms = vec![side_a, side_b];
    }

    /// Add the env var keys a provider reports as set on `service` in each environment (the
    /// CLI reads them through `Provider::env_vars`; only the keys are kept).
    pub fn add_live_env(
        &mut self,
        service: &str,
        keys_a: impl IntoIterator<Item = String>,
        keys_b: impl IntoIterator<Item = String>,
    ) {
        let a: BTreeSet<String> = keys_a.into_iter().collect();
        let b: BTreeSet<String> = keys_b.into_iter().collect();
        let only_in_a: Vec<String> = a.difference(&b).cloned().collect();
        let only_in_b: Vec<String> = b.difference(&a).cloned().collect();
        if !only_in_a.is_empty() || !only_in_b.is_empty() {
            self.live_env.push(LiveEnvDiff {
                service: service.to_owned(),
                only_in_a,
                only_in_b,
            });
        }
    }
}

/// Compare environments `a` and `b` of `spec`. Reads each side's secrets (compared by
/// keyed fingerprint, never printed) and each database's migration status; a database that
/// cannot be reached is noted in its [`MigrationSide::unreachable`], not an error.
pub async fn diff_environments(
    backends: &staging_core::SecretBackends,
    spec: &Arc<LoadedSpec>,
    a: &str,
    b: &str,
) -> Result<DriftReport> {
    spec.spec.environment(a)?;
    spec.spec.environment(b)?;
    let vars = staging_secrets::diff(backends, spec, a, b, None).await?;
    let mut rules_broken = var_rules(&vars);

    let migrations = migrations(backends, spec, a, b).await?;
    rules_broken.extend(migration_rules(spec, a, b, &migrations));

    Ok(DriftReport {
        project: spec.spec.project.name.clone(),
        a: a.to_owned(),
        b: b.to_owned(),
        vars,
        live_env: vec![],
        migrations,
        settings: settings(spec, a, b),
        platforms: vec![],
        platform_vars: vec![],
        rules_broken,
    })
}

fn var_rules(vars: &DiffReport) -> Vec<BrokenRule> {
    let mut out = vec![];
    for row in &vars.vars {
        // The pair rule between exactly these two environments, judged here once.
        match (row.expected, row.equal) {
            (Some("differ"), Some(true)) => out.push(BrokenRule {
                subject: row.name.clone(),
                rule: "differs_from".to_owned(),
                message: format!(
                    "`{}` has the same value in {} and {} ({}), but the rules say they must differ: \
                     a leak of one environment's value must not open the other",
                    row.name,
                    vars.a,
                    vars.b,
                    row.fingerprint_a.as_deref().unwrap_or("?")
                ),
            }),
            (Some("same"), Some(false)) => out.push(BrokenRule {
                subject: row.name.clone(),
                rule: "same_as".to_owned(),
                message: format!(
                    "`{}` differs between {} ({}) and {} ({}), but the rules say they must match",
                    row.name,
                    vars.a,
                    row.fingerprint_a.as_deref().unwrap_or("?"),
                    vars.b,
                    row.fingerprint_b.as_deref().unwrap_or("?"),
                ),
            }),
            _ => {}
        }
        for (env, problems) in [(&vars.a, &row.problems_a), (&vars.b, &row.problems_b)] {
            for p in problems {
                let pair_rule = matches!(p.rule, "differs_from" | "same_as");
                if p.severity != Severity::Error || pair_rule && row.expected.is_some() {
                    continue;
                }
                out.push(BrokenRule {
                    subject: row.name.clone(),
                    rule: p.rule.to_owned(),
                    message: format!("in {env}: {}", p.message),
                });
            }
        }
    }
    out
}

fn applied(status: &MigrationStatus) -> Vec<String> {
    status
        .entries
        .iter()
        .filter(|e| e.state != MigrationState::Pending)
        .map(|e| e.version.clone())
        .collect()
}

async fn side(
    backends: &staging_core::SecretBackends,
    spec: &Arc<LoadedSpec>,
    env: &str,
) -> Result<BTreeMap<String, MigrationSide>> {
    let mut out = BTreeMap::new();
    let has_migrations = spec.spec.databases.values().any(|d| d.migrations.is_some());
    if !has_migrations {
        return Ok(out);
    }
    let resolved = staging_secrets::resolve_vars(backends, spec, env, None).await?;
    let report = EnvMigrations::new(spec.clone(), env, resolved.values)?
        .status()
        .await;
    for db in report.databases {
        let s = match (&db.status, &db.error) {
            (Some(status), _) => MigrationSide {
                applied: applied(status),
                pending: status
                    .versions(MigrationState::Pending)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                unreachable: None,
            },
            (None, error) => MigrationSide {
                unreachable: Some(error.clone().unwrap_or_else(|| "status unknown".to_owned())),
                ..MigrationSide::default()
            },
        };
        out.insert(db.database, s);
    }
    Ok(out)
}

async fn migrations(
    backends: &staging_core::SecretBackends,
    spec: &Arc<LoadedSpec>,
    a: &str,
    b: &str,
) -> Result<Vec<DatabaseDrift>> {
    let (mut sa, mut sb) = (
        side(backends, spec, a).await?,
        side(backends, spec, b).await?,
    );
    let names: BTreeSet<String> = sa.keys().chain(sb.keys()).cloned().collect();
    Ok(names
        .into_iter()
        .map(|name| {
            let a = sa.remove(&name).unwrap_or_default();
            let b = sb.remove(&name).unwrap_or_default();
            let both = a.unreachable.is_none() && b.unreachable.is_none();
            let only = |x: &MigrationSide, y: &MigrationSide| -> Vec<String> {
                if !both {
                    return vec![];
                }
                x.applied
                    .iter()
                    .filter(|v| !y.applied.contains(v))
                    .cloned()
                    .collect()
            };
            DatabaseDrift {
                only_applied_in_a: only(&a, &b),
                only_applied_in_b: only(&b, &a),
                database: name,
                a,
                b,
            }
        })
        .collect())
}

/// Staging before production: the environment promoted to must not have versions the one
/// promoting to it lacks.
fn migration_rules(spec: &LoadedSpec, a: &str, b: &str, dbs: &[DatabaseDrift]) -> Vec<BrokenRule> {
    let promotes = |from: &str, to: &str| {
        spec.spec
            .environments
            .get(from)
            .is_some_and(|e| e.promotes_to.as_deref() == Some(to))
    };
    let mut out = vec![];
    for db in dbs {
        let ahead = if promotes(a, b) {
            Some((b, a, &db.only_applied_in_b))
        } else if promotes(b, a) {
            Some((a, b, &db.only_applied_in_a))
        } else {
            None
        };
        if let Some((target, source, versions)) = ahead
            && !versions.is_empty()
        {
            out.push(BrokenRule {
                subject: format!("database {}", db.database),
                rule: "staging_before_production".to_owned(),
                message: format!(
                    "`{target}` has migration(s) `{source}` has not applied: {}; migrations reach `{target}` only after \
                     `{source}` ran them (`staging migrate apply --env {source}`)",
                    versions.join(", ")
                ),
            });
        }
    }
    out
}

fn show(v: &toml::Value) -> String {
    let text = match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Redactor::global().redact(&text).into_owned()
}

fn compare_tables(scope: &str, a: &toml::Table, b: &toml::Table, out: &mut Vec<SettingDiff>) {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let (va, vb) = (a.get(key), b.get(key));
        if va != vb {
            out.push(SettingDiff {
                scope: scope.to_owned(),
                key: key.clone(),
                a: va.map(show),
                b: vb.map(show),
            });
        }
    }
}

fn settings(spec: &LoadedSpec, a: &str, b: &str) -> Vec<SettingDiff> {
    let mut out = vec![];
    let (Some(ea), Some(eb)) = (spec.spec.environments.get(a), spec.spec.environments.get(b))
    else {
        return out;
    };
    let mut env_a = ea.settings.clone();
    let mut env_b = eb.settings.clone();
    for (table, e) in [(&mut env_a, ea), (&mut env_b, eb)] {
        table.insert(
            "provider".to_owned(),
            toml::Value::String(e.provider.clone()),
        );
        table.insert(
            "deploy_timeout".to_owned(),
            toml::Value::String(humantime::format_duration(e.deploy_timeout).to_string()),
        );
    }
    compare_tables("environment", &env_a, &env_b, &mut out);
    // Core's one merge of `overrides.ENV` onto `settings`, read as an untyped table.
    let merged = |service: &str, env: &str| {
        spec.service_settings::<toml::Table>(service, env)
            .map(|s| s.value)
            .unwrap_or_default()
    };
    for name in spec.spec.services.keys() {
        compare_tables(
            &format!("service {name}"),
            &merged(name, a),
            &merged(name, b),
            &mut out,
        );
    }
    out
}
