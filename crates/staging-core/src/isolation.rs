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
//! 2. **Platform identities, through the run's credentials** ([`check_before_write`]):
//!    every service of the run and of every other environment on the same provider is
//!    located through the run's own credentials, each answered with its platform
//!    [`crate::Identity`] (Render workspace + service id, Railway service + environment id,
//!    Netlify site + context, ...). What the other environments own goes into the run's
//!    [`crate::WriteBoundary`], which issues the target of every platform write and refuses
//!    one whose identity another environment owns (see [`crate::boundary`]). A read that
//!    fails fails the check (exit 3) within [`READ_BOUND`]; only "not found", for another
//!    environment's service, is an answer (the run's credentials cannot reach what they are
//!    told does not exist).
//!
//! [`check_before_write`] runs both; the pipeline's [`crate::pipeline::IsolationStep`]
//! runs it right after `validate` in `up` and `promote`, and the CLI before
//! `secrets sync --apply`, `secrets rotate`, `rollback` and `migrate apply`.
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

use crate::boundary::{Owned, WriteBoundary};
use crate::error::{Error, Result};
use crate::provider::{DynProvider, ProviderExt, ServiceHandle};
use crate::registry::ProviderRegistry;
use crate::spec::LoadedSpec;

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

/// An [`EnvValues`] that reads nothing: databases are not compared, only services (for an
/// embedder whose run writes no database).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoValues;

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

/// How long the platform reads of [`check_before_write`] may take, all of them together:
/// every service of the run and of every other environment on the same provider, located
/// through the run's own credentials. A platform that has not answered them all by then fails
/// the check (exit 3) naming what it could not read, before any write.
pub const READ_BOUND: Duration = Duration::from_secs(30);

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
/// reports) and which other environments' platform identities were compared.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IsolationReport {
    /// Each service of the run's environment: its effective platform target
    /// (`render service service_name=shop-worker-staging`), and, when it exists already, what
    /// the platform says it is (`render service owner=tea-1 service=srv-1`).
    pub targets: BTreeMap<String, String>,
    /// The other environments whose services were located with the run's credentials and
    /// compared by platform identity (level 2).
    pub compared_ids_with: Vec<String>,
    /// Services of other environments the platform told the run's credentials do not exist
    /// (`production/web`): nothing the run writes through those credentials can be them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_visible: Vec<String>,
    /// Services of the run not on the platform yet (created by this run, or missing): each is
    /// compared when it is next written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_there_yet: Vec<String>,
}

/// A platform read the check needed and could not make: exit 3, naming it.
fn unreadable(provider: &str, what: &str, e: &Error) -> Error {
    Error::Provider {
        provider: provider.to_owned(),
        source: format!(
            "the isolation check could not read {what}, so nothing is written (a run writes only what it has compared with every other environment): {e}"
        )
        .into(),
        retryable: false,
    }
}

/// What one locate answered, for level 2.
enum Read {
    Found(ServiceHandle),
    /// The platform said it does not exist, to the run's credentials.
    NotThere,
}

/// Locate service `service` of `environment` through `provider`, the run's credentials.
/// Not found is an answer; any other failure (refused credentials, 5xx, a silent peer) is
/// not, and fails the check. `pending` names the reads not answered yet, for the bound's
/// message.
async fn read_one(
    provider: &DynProvider,
    environment: &str,
    service: &str,
    pending: &std::sync::Mutex<std::collections::BTreeSet<String>>,
) -> Result<Read> {
    let what = format!("service `{service}` of environment `{environment}`");
    let answer = provider.locate(environment, service).await;
    pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&what);
    match answer {
        Ok(h) => Ok(Read::Found(h)),
        Err(Error::NotFound { .. }) => Ok(Read::NotThere),
        // Several candidates for one name: the spec must say which (exit 2).
        Err(e @ Error::ConfigInvalid { .. }) => Err(e),
        Err(e) => Err(unreadable(provider.name(), &what, &e)),
    }
}

/// Level 1 before the first write of a command on `environment`, offline: the effective
/// settings and the database URLs `values` can read, compared with every other
/// environment's ([`check_offline`]); returns what the run changes. The first half of
/// [`check_before_write`]; a command runs it on its own before it asks any platform
/// anything (its preflight), so that what the spec and the local sources alone show is
/// refused (exit 2) before a request is made.
pub async fn check_offline_before_write(
    registry: &ProviderRegistry,
    spec: &LoadedSpec,
    environment: &str,
    writes: Writes,
    values: &dyn EnvValues,
) -> Result<Vec<Resource>> {
    let deadline = tokio::time::Instant::now() + READ_BOUND;
    offline_within(registry, spec, environment, writes, values, deadline).await
}

/// [`check_offline_before_write`], every read of `values` done by `deadline`: a source that
/// does not answer in time (a database URL read from a silent platform) fails the check
/// (exit 3) naming what it could not read.
async fn offline_within(
    registry: &ProviderRegistry,
    spec: &LoadedSpec,
    environment: &str,
    writes: Writes,
    values: &dyn EnvValues,
    deadline: tokio::time::Instant,
) -> Result<Vec<Resource>> {
    let silent = |env: &str| {
        let provider = registry
            .factory_for(spec, env)
            .map(|f| f.name().to_owned())
            .unwrap_or_else(|_| "isolation".to_owned());
        let urls: Vec<String> = spec
            .spec
            .databases
            .iter()
            .map(|(name, db)| format!("`{}` of database `{name}`", db.url_var))
            .collect();
        Error::Provider {
            provider,
            source: format!(
                "the isolation check could not read the values of environment `{env}` ({}) within {} (no answer), so nothing is written",
                urls.join(", "),
                humantime::format_duration(READ_BOUND)
            )
            .into(),
            retryable: true,
        }
    };
    let mine = tokio::time::timeout_at(
        deadline,
        resources_of(registry, spec, environment, writes, values),
    )
    .await
    .map_err(|_| silent(environment))??;
    let mut others = BTreeMap::new();
    for other in spec.spec.environments.keys().filter(|e| *e != environment) {
        let theirs = tokio::time::timeout_at(
            deadline,
            resources_of(registry, spec, other, Writes::Run, values),
        )
        .await
        .map_err(|_| silent(other))?
        .map_err(|e| {
            Error::config(format!(
                "cannot work out what environment `{other}` names, so `{environment}` cannot be checked against it: {e}"
            ))
        })?;
        others.insert(other.clone(), theirs);
    }
    check_offline(spec, environment, &mine, &others)?;
    Ok(mine)
}

/// Both levels, before the first write of a command on `environment`: the offline
/// comparison of effective settings and database URLs with every other environment, then
/// (level 2) every service of the run and of every other environment on the same provider
/// located through the run's own credentials (`provider`, built if `None`), within
/// [`READ_BOUND`]. Returns the report and the run's [`WriteBoundary`], the one issuer of the
/// targets every platform write takes.
///
/// **Fail closed.** A read that fails (refused credentials, 401/403, 5xx, no answer within
/// the bound) fails the check with exit 3 naming what could not be read, before any write.
/// The one answer accepted in place of an identity is "not found" for a service of *another*
/// environment: the run's own services are resolved through the same credentials (one
/// credential per provider and process), so a service those credentials are told does not
/// exist cannot be what they resolve for the run. A service of the run that is not found yet
/// (it is created by this run) is compared when it is written: the boundary is asked again
/// right before every write.
pub async fn check_before_write(
    registry: &ProviderRegistry,
    spec: &LoadedSpec,
    environment: &str,
    writes: Writes,
    values: &dyn EnvValues,
    provider: Option<&DynProvider>,
) -> Result<(IsolationReport, WriteBoundary)> {
    // One bound for every read of the check: the values resolved for the offline half (a
    // database URL read from the platform) and the platform identities below share it.
    let deadline = tokio::time::Instant::now() + READ_BOUND;
    let mine = offline_within(registry, spec, environment, writes, values, deadline).await?;
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
    let protected = spec.spec.environment(environment)?.protected;
    let shared: BTreeMap<String, Vec<String>> = spec
        .spec
        .services
        .iter()
        .map(|(name, s)| (name.clone(), s.shared_with.clone()))
        .collect();
    if writes == Writes::Migrations {
        // Migrations write no platform service: the boundary issues nothing.
        return Ok((report, WriteBoundary::closed(environment)));
    }

    // Level 2: platform identities, through the run's credentials.
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
        // A local service is its port, compared offline above; its process is this run's.
        return Ok((
            report,
            WriteBoundary::new(environment, protected, vec![], shared)
                .with_ephemeral(spec.is_ephemeral(environment)),
        ));
    }
    let services: Vec<&String> = spec.spec.services.keys().collect();
    let mut readers: Vec<(String, DynProvider)> = vec![(environment.to_owned(), provider.clone())];
    for other in spec.spec.environments.keys().filter(|e| *e != environment) {
        let same_provider = registry
            .factory_for(spec, other)
            .is_ok_and(|f| f.name() == factory.name());
        if !same_provider {
            continue;
        }
        let theirs = factory.build(spec, other).map_err(|e| match e {
            // The spec says something impossible of the other environment: exit 2 as is.
            e @ Error::ConfigInvalid { .. } => e,
            e => unreadable(
                factory.name(),
                &format!("how environment `{other}` names its services"),
                &e,
            ),
        })?;
        readers.push((other.clone(), theirs));
    }
    let pending = std::sync::Mutex::new(
        readers
            .iter()
            .flat_map(|(env, _)| {
                services
                    .iter()
                    .map(move |s| format!("service `{s}` of environment `{env}`"))
            })
            .collect::<std::collections::BTreeSet<String>>(),
    );
    let reads = futures_util::future::join_all(readers.iter().flat_map(|(env, p)| {
        let pending = &pending;
        services.iter().map(move |s| async move {
            (env.as_str(), s.as_str(), read_one(p, env, s, pending).await)
        })
    }));
    let reads = match tokio::time::timeout_at(deadline, reads).await {
        Ok(reads) => reads,
        Err(_) => {
            let unread: Vec<String> = pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned()
                .collect();
            return Err(Error::Provider {
                provider: provider.name().to_owned(),
                source: format!(
                    "the isolation check could not read {} within {} (no answer), so nothing is written",
                    unread.join(", "),
                    humantime::format_duration(READ_BOUND)
                )
                .into(),
                retryable: true,
            });
        }
    };
    let mut owned = vec![];
    let mut mine_found = vec![];
    for (env, service, read) in reads {
        match read? {
            Read::Found(h) if env == environment => mine_found.push(h),
            Read::Found(h) => owned.push(Owned {
                environment: env.to_owned(),
                service: service.to_owned(),
                identity: h.identity,
                protected: spec.spec.environments.get(env).is_some_and(|e| e.protected),
            }),
            Read::NotThere if env == environment => report.not_there_yet.push(service.to_owned()),
            Read::NotThere => report.not_visible.push(format!("{env}/{service}")),
        }
    }
    report.compared_ids_with = readers
        .iter()
        .map(|(e, _)| e.clone())
        .filter(|e| e != environment)
        .collect();
    let boundary = WriteBoundary::new(environment, protected, owned, shared)
        .with_ephemeral(spec.is_ephemeral(environment));
    // Each of the run's services that exists already, refused now rather than at its write.
    for h in mine_found {
        let name = h.name.clone();
        let identity = h.identity.to_string();
        boundary.target(h)?;
        if let Some(t) = report.targets.get_mut(&name) {
            t.push_str(&format!(" -> {identity}"));
        }
    }
    Ok((report, boundary))
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
    fn an_unnamed_part_matches_anything_and_named_parts_must_all_agree() {
        let a = r(&[("owner", Some("tea-1")), ("name", Some("shop"))]);
        assert!(a.same_as(&r(&[("owner", None), ("name", Some("shop"))])));
        assert!(!a.same_as(&r(&[("owner", Some("tea-2")), ("name", Some("shop"))])));
        assert!(!a.same_as(&r(&[("owner", Some("tea-1")), ("name", Some("shop-2"))])));
    }
}
