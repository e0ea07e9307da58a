//! Environment isolation: a run never changes what belongs to another environment.
//!
//! Before the first write of a run (`up`, `promote`, `secrets sync`, `secrets rotate`,
//! `migrate apply`), the run works out what it will change — each service as its
//! provider's *effective* settings name it (after `overrides.ENV`), each database by its
//! URL's host, port and database — and compares that with what every other environment
//! of the spec names. Two levels:
//!
//! 1. **Offline, always** ([`check_offline`]): [`Resource`]s come from the providers'
//!    [`crate::ProviderFactory::resources`] (the effective settings, no credentials
//!    needed) and from the database URLs that can be read here (never printed: only
//!    scheme, host, port and database name are kept). This alone catches a misspelt
//!    override that falls back to production's name — though the typed settings already
//!    refuse the typo itself — and an override that was simply forgotten.
//! 2. **Platform ids, where the run's credentials can read the other environment**
//!    ([`check_platform_ids`]): each service is located in the run's environment and, with
//!    the same credentials, in every other environment of the same provider; two different
//!    names that resolve to the same platform id are refused. An environment the
//!    credentials cannot read (a CI job holding only staging's token) is skipped: level 1
//!    never needs production's credentials.
//!
//! [`check_before_write`] runs both; the pipeline's [`crate::pipeline::IsolationStep`]
//! runs it right after `validate` in `up` and `promote`, and the CLI before
//! `secrets sync --apply`, `secrets rotate` and `migrate apply`.
//!
//! A resource shared on purpose says so (`shared_with = ["production"]` on the service or
//! database). Every write to it is then a write to the environments it is shared with: from
//! an environment that is not protected, a write to a resource shared with a protected one
//! is refused.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::provider::{DynProvider, ServiceHandle};
use crate::registry::ProviderRegistry;
use crate::spec::LoadedSpec;

/// How long locating one service of another environment may take (level 2).
const LOCATE_BOUND: Duration = Duration::from_secs(60);

/// One thing on a platform that a run can change, as one environment's spec names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// What it is (`render service`, `netlify site`, `ecs service`, `database`,
    /// `local port`). Only resources of the same kind are compared.
    pub kind: String,
    /// The spec's name of what it belongs to: `service web`, `database main`.
    pub owner: String,
    /// The parts that identify it on the platform, in order (`owner_id`, `service_name`).
    /// `None` is a part the spec leaves to the platform or the credentials (no owner: any
    /// workspace the key sees; no region: the chain's): it matches any value.
    pub identity: Vec<(String, Option<String>)>,
    /// The environments this resource is deliberately shared with (`shared_with`).
    pub shared_with: Vec<String>,
    /// Whether the run itself writes it (a deploy, env vars, migrations, a seed), as
    /// opposed to only handing it to a service: what a `shared_with` refusal is about.
    pub written: bool,
    /// The part of its platform id this resource is, when environments divide one platform
    /// object among themselves (a Netlify site's deploy context: deploys and variable values
    /// are per context). Two services that resolve to one platform id in different scopes
    /// are different resources; the offline comparison sees the scope in `identity` too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl Resource {
    /// A resource of `kind` owned by `owner` with these identifying parts.
    pub fn new<K, V>(
        kind: impl Into<String>,
        owner: impl Into<String>,
        identity: impl IntoIterator<Item = (K, Option<V>)>,
    ) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Resource {
            kind: kind.into(),
            owner: owner.into(),
            identity: identity
                .into_iter()
                .map(|(k, v)| (k.into(), v.map(Into::into)))
                .collect(),
            shared_with: vec![],
            written: true,
            scope: None,
        }
    }

    /// The same resource, as the part `scope` of its platform id (see [`Resource::scope`]).
    pub fn within(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The same resource, declared shared with these environments.
    pub fn shared_with(mut self, environments: &[String]) -> Self {
        self.shared_with = environments.to_vec();
        self
    }

    /// Whether `self` and `other` name the same thing: same kind, and every identifying
    /// part that both name is equal.
    pub fn same_as(&self, other: &Resource) -> bool {
        self.kind == other.kind
            && self.identity.len() == other.identity.len()
            && self
                .identity
                .iter()
                .zip(&other.identity)
                .all(|((ka, va), (kb, vb))| {
                    ka == kb
                        && match (va, vb) {
                            (Some(a), Some(b)) => a == b,
                            _ => true,
                        }
                })
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        let parts: Vec<String> = self
            .identity
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("(any)")))
            .collect();
        if !parts.is_empty() {
            write!(f, " {}", parts.join(" "))?;
        }
        Ok(())
    }
}

/// The database `name` of the spec at `url`, identified by scheme, host, port and database
/// (never user or password), or `None` when the URL cannot be read. SQLite files are
/// identified by their path, resolved against the spec's directory.
pub fn database_resource(spec: &LoadedSpec, name: &str, url: &str) -> Option<Resource> {
    let owner = format!("database {name}");
    let shared = spec
        .spec
        .databases
        .get(name)
        .map(|d| d.shared_with.clone())
        .unwrap_or_default();
    let trimmed = url.trim();
    if let Some(path) = trimmed
        .strip_prefix("sqlite://")
        .or_else(|| trimmed.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path == ":memory:" {
            return None;
        }
        let resolved = spec.resolve_path(path);
        let shown = std::fs::canonicalize(&resolved)
            .unwrap_or(resolved)
            .display()
            .to_string();
        return Some(
            Resource::new("database", owner, [("sqlite", Some(shown))]).shared_with(&shared),
        );
    }
    let parsed = url::Url::parse(trimmed).ok()?;
    let scheme = match parsed.scheme() {
        "postgres" | "postgresql" => "postgres",
        "mysql" | "mariadb" => "mysql",
        other => other,
    };
    let port = parsed.port().or(match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" | "rediss" => Some(6379),
        _ => None,
    });
    let database = parsed.path().trim_start_matches('/').to_owned();
    Some(
        Resource::new(
            "database",
            owner,
            [
                ("scheme", Some(scheme.to_owned())),
                ("host", parsed.host_str().map(str::to_ascii_lowercase)),
                ("port", port.map(|p| p.to_string())),
                ("database", Some(database)),
            ],
        )
        .shared_with(&shared),
    )
}

/// What a command writes, so that only what it changes is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// `up`, `promote`: deploys and env vars of every service, migrations and seeds of
    /// every database, and the databases the deployed services are given.
    Run,
    /// `secrets sync`, `secrets rotate`: the services' env vars.
    Env,
    /// `migrate apply`: the databases that declare migrations or a seed.
    Migrations,
}

/// The values of an environment's variables, as far as they can be read from here (what
/// the database URLs are taken from). Implemented over the spec's secret sources by the
/// CLI; an environment whose values cannot be read (no credentials for it) answers an
/// error, and its databases are then not compared.
#[async_trait]
pub trait EnvValues: fmt::Debug + Send + Sync {
    /// The variables of `environment` that could be read.
    async fn values(&self, environment: &str) -> Result<BTreeMap<String, SecretString>>;
}

/// What one environment names: its services (from the provider's effective settings) and
/// its databases (from their URLs).
async fn resources_of(
    registry: &ProviderRegistry,
    spec: &LoadedSpec,
    environment: &str,
    writes: Writes,
    values: &dyn EnvValues,
) -> Result<Vec<Resource>> {
    let mut out = vec![];
    if writes != Writes::Migrations {
        let factory = registry.factory_for(spec, environment)?;
        for r in factory.resources(spec, environment)? {
            let shared = spec
                .spec
                .services
                .get(r.owner.trim_start_matches("service "))
                .map(|s| s.shared_with.clone())
                .unwrap_or_default();
            out.push(r.shared_with(&shared));
        }
    }
    if let Ok(vars) = values.values(environment).await {
        for (name, db) in &spec.spec.databases {
            let declares_writes = db.migrations.is_some() || db.seed.is_some();
            if writes == Writes::Env || (writes == Writes::Migrations && !declares_writes) {
                continue;
            }
            let Some(url) = vars.get(&db.url_var) else {
                continue;
            };
            if let Some(mut r) = database_resource(spec, name, url.expose_secret()) {
                r.written = declares_writes;
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// Level 1, offline: refuse (exit 2) when the run of `environment` would change something
/// (`mine`) another environment also names (`others`), or write something shared with a
/// protected environment from an environment that is not protected. The message names
/// both environments and the resource.
pub fn check_offline(
    spec: &LoadedSpec,
    environment: &str,
    mine: &[Resource],
    others: &BTreeMap<String, Vec<Resource>>,
) -> Result<()> {
    let env = environment;
    let me = spec.spec.environment(env)?;
    for mine in mine {
        for other in &mine.shared_with {
            let protected = spec
                .spec
                .environments
                .get(other)
                .is_some_and(|e| e.protected);
            if mine.written && protected && !me.protected && other != env {
                return Err(Error::config(format!(
                    "{} ({mine}) is declared shared with protected environment `{other}` (`shared_with`): a write to it from `{env}` is a write to `{other}`, refused before any write. Give `{env}` its own copy (a database branch on Neon or Supabase, a Render or RDS copy restored from a backup, a service of its own) and remove `shared_with`",
                    mine.owner
                )));
            }
        }
        for (other_env, theirs) in others {
            if other_env == env {
                continue;
            }
            for t in theirs.iter().filter(|t| mine.same_as(t)) {
                // `shared_with = ["production"]` on a resource staging also names: shared
                // between the two, seen from either side.
                if mine.shared_with.iter().any(|s| s == other_env)
                    || t.shared_with.iter().any(|s| s == env)
                {
                    continue;
                }
                let protected = spec
                    .spec
                    .environments
                    .get(other_env)
                    .is_some_and(|e| e.protected);
                let hint = if protected && !me.protected {
                    format!(
                        "Give `{env}` its own (check `overrides.{env}` for a misspelt or missing key; for a database, a branch or a copy of production's)"
                    )
                } else {
                    format!(
                        "Give `{env}` its own (check `overrides.{env}` for a misspelt or missing key), or, if sharing is deliberate, say so with `shared_with = [\"{other_env}\"]`"
                    )
                };
                return Err(Error::config(format!(
                    "environment `{env}` would change {} ({mine}), which is also {} of {}environment `{other_env}`{}: refused before any write. {hint}",
                    mine.owner,
                    t.owner,
                    if protected { "protected " } else { "" },
                    if t.identity == mine.identity {
                        String::new()
                    } else {
                        format!(" ({t})")
                    },
                )));
            }
        }
    }
    Ok(())
}

/// Level 2: `mine` are the services of the run located on the platform, `theirs` the
/// services of other environments located with the run's own credentials (only those it
/// could read). Two different spec names that resolve to the same platform id are refused,
/// unless the service is declared shared with that environment.
pub fn check_platform_ids(
    spec: &LoadedSpec,
    environment: &str,
    mine: &[ServiceHandle],
    theirs: &[ServiceHandle],
) -> Result<()> {
    for m in mine {
        for t in theirs
            .iter()
            .filter(|t| t.id == m.id && t.environment != environment)
        {
            let service = spec.spec.services.get(&m.name);
            let declared = service.is_some_and(|s| {
                s.shared_with.contains(&t.environment)
                    || s.shared_with.iter().any(|e| e == environment)
            });
            if declared {
                let protected = spec
                    .spec
                    .environments
                    .get(&t.environment)
                    .is_some_and(|e| e.protected);
                let me_protected = spec
                    .spec
                    .environments
                    .get(environment)
                    .is_some_and(|e| e.protected);
                if !protected || me_protected {
                    continue;
                }
            }
            return Err(Error::config(format!(
                "service `{}` of environment `{environment}` resolves to platform id `{}`, which is also service `{}` of environment `{}`: refused before any write (two names in the spec, one service on the platform). Give `{environment}` a service of its own",
                m.name, m.id, t.name, t.environment
            )));
        }
    }
    Ok(())
}

/// The scope of service `service`'s resource among `resources`, if it has one.
fn scope_of<'a>(resources: &'a [Resource], service: &str) -> Option<&'a str> {
    resources
        .iter()
        .find(|r| r.owner.strip_prefix("service ") == Some(service))
        .and_then(|r| r.scope.as_deref())
}

/// Locate every service of the spec in `environment` with `provider`, each bounded; `None`
/// when any of them cannot be read (no credentials for that environment, not found).
async fn locate_all(
    spec: &LoadedSpec,
    provider: &DynProvider,
    environment: &str,
) -> Option<Vec<ServiceHandle>> {
    let mut out = vec![];
    for name in spec.spec.services.keys() {
        match tokio::time::timeout(LOCATE_BOUND, provider.locate(environment, name)).await {
            Ok(Ok(h)) => out.push(h),
            _ => return None,
        }
    }
    Some(out)
}

/// An [`EnvValues`] that reads nothing: databases are not compared.
#[derive(Debug)]
struct NoValues;

#[async_trait]
impl EnvValues for NoValues {
    async fn values(&self, environment: &str) -> Result<BTreeMap<String, SecretString>> {
        Err(Error::config(format!(
            "the values of `{environment}` are not read here"
        )))
    }
}

/// Level 1 for the services alone, from the spec alone (what `staging validate` runs for
/// each environment): refused when `environment`'s effective settings name what another
/// environment's name. Database URLs need the secret sources, so they are compared before
/// the first write only ([`check_before_write`]).
pub async fn check_settings(
    registry: &ProviderRegistry,
    spec: &LoadedSpec,
    environment: &str,
) -> Result<()> {
    let mine = resources_of(registry, spec, environment, Writes::Env, &NoValues).await?;
    let mut others = BTreeMap::new();
    for other in spec.spec.environments.keys().filter(|e| *e != environment) {
        others.insert(
            other.clone(),
            resources_of(registry, spec, other, Writes::Env, &NoValues).await?,
        );
    }
    check_offline(spec, environment, &mine, &others)
}

/// [`check_settings`] for each of `environments`, every environment's resources worked out
/// once (what `staging validate` runs: linear in the environments, not quadratic, for a
/// spec with thousands of them).
pub async fn check_settings_of(
    registry: &ProviderRegistry,
    spec: &LoadedSpec,
    environments: &[String],
) -> Result<()> {
    let mut all = BTreeMap::new();
    for env in spec.spec.environments.keys() {
        all.insert(
            env.clone(),
            resources_of(registry, spec, env, Writes::Env, &NoValues).await?,
        );
    }
    for environment in environments {
        let Some(mine) = all.remove(environment) else {
            // Not declared: the spec check says so.
            continue;
        };
        let result = check_offline(spec, environment, &mine, &all);
        all.insert(environment.clone(), mine);
        result?;
    }
    Ok(())
}

/// What [`check_before_write`] found: each service's target as the spec names it (for
/// reports) and which other environments' platform ids could be compared.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IsolationReport {
    /// Each service of the run's environment: its effective platform target
    /// (`render service service_name=shop-worker-staging`).
    pub targets: BTreeMap<String, String>,
    /// The other environments whose services were located with the run's credentials and
    /// compared by platform id (level 2).
    pub compared_ids_with: Vec<String>,
}

/// Both levels, before the first write of a command on `environment`: the offline
/// comparison of effective settings and database URLs with every other environment, then,
/// where the credentials of `provider` (the run's own, built if `None`) can read another
/// environment of the same provider, the platform ids.
pub async fn check_before_write(
    registry: &ProviderRegistry,
    spec: &LoadedSpec,
    environment: &str,
    writes: Writes,
    values: &dyn EnvValues,
    provider: Option<&DynProvider>,
) -> Result<IsolationReport> {
    let mine = resources_of(registry, spec, environment, writes, values).await?;
    let mut others = BTreeMap::new();
    for other in spec.spec.environments.keys().filter(|e| *e != environment) {
        let theirs = resources_of(registry, spec, other, Writes::Run, values)
            .await
            .map_err(|e| {
                Error::config(format!(
                    "cannot work out what environment `{other}` names, so `{environment}` cannot be checked against it: {e}"
                ))
            })?;
        others.insert(other.clone(), theirs);
    }
    check_offline(spec, environment, &mine, &others)?;
    let mut report = IsolationReport {
        targets: mine
            .iter()
            .filter_map(|r| {
                r.owner
                    .strip_prefix("service ")
                    .map(|s| (s.to_owned(), r.to_string()))
            })
            .collect(),
        ..IsolationReport::default()
    };
    if writes == Writes::Migrations {
        return Ok(report);
    }

    // Level 2: platform ids, with the run's credentials.
    let factory = registry.factory_for(spec, environment)?;
    let built;
    let provider = match provider {
        Some(p) => p,
        None => {
            built = factory.build(spec, environment)?;
            &built
        }
    };
    if provider.runs_services_in_process() {
        return Ok(report);
    }
    let mut mine_located: Option<Vec<ServiceHandle>> = None;
    for other in spec.spec.environments.keys().filter(|e| *e != environment) {
        let same_provider = registry
            .factory_for(spec, other)
            .is_ok_and(|f| f.name() == factory.name());
        if !same_provider {
            continue;
        }
        let Ok(theirs_provider) = factory.build(spec, other) else {
            continue;
        };
        let Some(theirs) = locate_all(spec, &theirs_provider, other).await else {
            continue;
        };
        if mine_located.is_none() {
            match locate_all(spec, provider, environment).await {
                Some(m) => mine_located = Some(m),
                // The run's own services cannot be located: the deploy step reports why.
                None => return Ok(report),
            }
        }
        let mine_handles = mine_located.as_deref().unwrap_or_default();
        // One platform id in two different scopes (a site's contexts) is two resources.
        let theirs_resources = others.get(other).map(Vec::as_slice).unwrap_or_default();
        let theirs: Vec<ServiceHandle> = theirs
            .into_iter()
            .filter(|t| {
                !mine_handles.iter().filter(|m| m.id == t.id).all(|m| {
                    matches!(
                        (scope_of(&mine, &m.name), scope_of(theirs_resources, &t.name)),
                        (Some(a), Some(b)) if a != b
                    )
                })
            })
            .collect();
        check_platform_ids(spec, environment, mine_handles, &theirs)?;
        report.compared_ids_with.push(other.clone());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(parts: &[(&str, Option<&str>)]) -> Resource {
        Resource::new(
            "render service",
            "service web",
            parts.iter().map(|(k, v)| (*k, v.map(str::to_owned))),
        )
    }

    fn spec() -> LoadedSpec {
        LoadedSpec::parse(
            "staging.toml",
            "[project]\nname = \"x\"\n[environments.staging]\nprovider = \"p\"\n[environments.production]\nprovider = \"p\"\nprotected = true\n".to_owned(),
            crate::spec::LoadOptions::new(&["p"]),
        )
        .unwrap()
    }

    #[test]
    fn a_database_is_identified_without_its_credentials_and_with_its_default_port() {
        let spec = spec();
        let a = database_resource(
            &spec,
            "main",
            "postgres://staging:s3cret@DB.example.com/shop",
        )
        .unwrap();
        let b = database_resource(
            &spec,
            "main",
            "postgresql://prod:other@db.example.com:5432/shop?sslmode=require",
        )
        .unwrap();
        assert!(a.same_as(&b), "{a} / {b}");
        assert!(!a.to_string().contains("s3cret") && !a.to_string().contains("staging:"));
        let c =
            database_resource(&spec, "main", "postgres://u:p@db.example.com/shop_staging").unwrap();
        assert!(!a.same_as(&c));
        assert!(database_resource(&spec, "main", "not a url").is_none());
    }

    #[test]
    fn a_resource_named_by_two_environments_is_refused_naming_both() {
        let spec = spec();
        let mine = [r(&[("owner", None), ("name", Some("shop"))])];
        let others = BTreeMap::from([(
            "production".to_owned(),
            vec![r(&[("owner", Some("tea-1")), ("name", Some("shop"))])],
        )]);
        let err = check_offline(&spec, "staging", &mine, &others)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("environment `staging`")
                && err.contains("protected environment `production`")
                && err.contains("name=shop"),
            "{err}"
        );
        // Declared shared with production and written from staging: refused as a write to
        // production.
        let shared = [mine[0].clone().shared_with(&["production".to_owned()])];
        let err = check_offline(&spec, "staging", &shared, &others)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("declared shared with protected environment `production`"),
            "{err}"
        );
        // From production itself, the declared sharing holds.
        let theirs = BTreeMap::from([("staging".to_owned(), shared.to_vec())]);
        check_offline(&spec, "production", &shared, &theirs).unwrap();
    }

    #[test]
    fn two_names_with_one_platform_id_are_refused() {
        let spec = spec();
        let h = |env: &str, id: &str| ServiceHandle {
            name: "web".into(),
            environment: env.into(),
            id: id.into(),
        };
        let err = check_platform_ids(
            &spec,
            "staging",
            &[h("staging", "srv-1")],
            &[h("production", "srv-1")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("platform id `srv-1`") && err.contains("`production`"),
            "{err}"
        );
        check_platform_ids(
            &spec,
            "staging",
            &[h("staging", "srv-2")],
            &[h("production", "srv-1")],
        )
        .unwrap();
    }

    #[test]
    fn an_unnamed_part_matches_anything_and_named_parts_must_all_agree() {
        let a = r(&[("owner", Some("tea-1")), ("name", Some("shop"))]);
        assert!(a.same_as(&r(&[("owner", None), ("name", Some("shop"))])));
        assert!(!a.same_as(&r(&[("owner", Some("tea-2")), ("name", Some("shop"))])));
        assert!(!a.same_as(&r(&[("owner", Some("tea-1")), ("name", Some("shop-2"))])));
    }
}
