//! Environment isolation: a run never changes what belongs to another environment.
//!
//! Before the first write of a run (`up`, `promote`, `secrets sync`, `secrets rotate`,
//! `migrate apply`), the run works out what it will change — each service as its
//! provider's *effective* settings name it (after `overrides.ENV`), each database by its
//! URL's host, port and database — and compares that with what every other environment
//! of the spec names. Two levels:
//!
//! 1. **Offline, always** ([`check`]): [`Resource`]s come from the providers'
//!    [`crate::ProviderFactory::resources`] (no credentials needed) and from database URLs
//!    that can be read here (never printed: only scheme, host, port and database name are
//!    kept). This alone catches a misspelt override that falls back to production's name.
//! 2. **Platform ids, where the run's credentials can read the other environment**
//!    ([`check_platform_ids`]): two different names that resolve to the same platform id.
//!    A CI job holding only staging's credentials skips this level; level 1 never needs
//!    production's credentials.
//!
//! A resource shared on purpose says so (`shared_with = ["production"]` on the service or
//! database). Every write to it is then a write to the environments it is shared with: from
//! an environment that is not protected, a write to a resource shared with a protected one
//! is refused.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::provider::ServiceHandle;
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
        }
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
        return Some(Resource::new("database", owner, [("sqlite", Some(shown))]).shared_with(&shared));
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

/// What one run will change, and what each other environment names.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The environment of the run.
    pub environment: String,
    /// What the run changes.
    pub mine: Vec<Resource>,
    /// What each other environment names (as far as it can be known here).
    pub others: BTreeMap<String, Vec<Resource>>,
}

/// Refuse (exit 2) when the run of `plan.environment` would change something another
/// environment names, or something shared with a protected environment from an
/// environment that is not protected. The message names both environments and the
/// resource.
pub fn check(spec: &LoadedSpec, plan: &Plan) -> Result<()> {
    let env = &plan.environment;
    let me = spec.spec.environment(env)?;
    for mine in &plan.mine {
        for other in &mine.shared_with {
            let protected = spec
                .spec
                .environments
                .get(other)
                .is_some_and(|e| e.protected);
            if protected && !me.protected && other != env {
                return Err(Error::config(format!(
                    "{} ({mine}) is declared shared with protected environment `{other}` (`shared_with`): a write to it from `{env}` is a write to `{other}`, refused. Give `{env}` its own copy (a database branch on Neon or Supabase, a Render or RDS copy restored from a backup) and remove `shared_with`",
                    mine.owner
                )));
            }
        }
        for (other_env, theirs) in &plan.others {
            if other_env == env {
                continue;
            }
            for t in theirs.iter().filter(|t| mine.same_as(t)) {
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
                return Err(Error::config(format!(
                    "environment `{env}` would change {} ({mine}), which is also {} of {}environment `{other_env}`{}: refused before any write. Give `{env}` its own (check `overrides.{env}` for a misspelt or missing key), or, if sharing is deliberate, say so with `shared_with = [\"{other_env}\"]`",
                    mine.owner,
                    t.owner,
                    if protected { "protected " } else { "" },
                    if t == mine { String::new() } else { format!(" ({t})") },
                )));
            }
        }
    }
    Ok(())
}

/// Level 2: `mine` are the services of the run located on the platform, `theirs` the same
/// services located in another environment with the run's own credentials (only those it
/// could read). Two different spec names that resolve to the same platform id are refused.
pub fn check_platform_ids(
    spec: &LoadedSpec,
    environment: &str,
    mine: &[ServiceHandle],
    theirs: &[ServiceHandle],
) -> Result<()> {
    for m in mine {
        for t in theirs.iter().filter(|t| t.id == m.id && t.environment != environment) {
            let shared = spec
                .spec
                .services
                .get(&m.name)
                .is_some_and(|s| s.shared_with.contains(&t.environment));
            if shared {
                continue;
            }
            return Err(Error::config(format!(
                "service `{}` of environment `{environment}` resolves to platform id `{}`, which is also service `{}` of environment `{}`: refused before any write (two names, one service on the platform)",
                m.name, m.id, t.name, t.environment
            )));
        }
    }
    Ok(())
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

    #[test]
    fn an_unnamed_part_matches_anything_and_named_parts_must_all_agree() {
        let a = r(&[("owner", Some("tea-1")), ("name", Some("shop"))]);
        assert!(a.same_as(&r(&[("owner", None), ("name", Some("shop"))])));
        assert!(!a.same_as(&r(&[("owner", Some("tea-2")), ("name", Some("shop"))])));
        assert!(!a.same_as(&r(&[("owner", Some("tea-1")), ("name", Some("shop-2"))])));
    }
}
