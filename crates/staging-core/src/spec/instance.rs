//! Ephemeral environments and their instances: `[environments.preview] ephemeral = true,
//! like = "staging", ttl = "72h"`, run as `--instance pr-42`.
//!
//! An instance is not a second spec: the file is loaded once for it
//! ([`super::LoadOptions::with_instance`]), `${instance}` becoming the instance's name as
//! literal text, like a process variable. So every name an instance uses — a Render service
//! `shop-api-${instance}`, a Neon branch `preview-${instance}`, a variable's value — is
//! read from the one load, never substituted twice. `${instance}` may be written only where
//! it belongs to an ephemeral environment (its own table, `overrides.ENV`, `values.ENV`,
//! `sources.ENV`, a database branch of ephemeral environments only): anywhere else it would
//! rename a long-lived environment's resources per pull request.
//!
//! What belongs to an instance in the evidence store (its lease, its evidence, the data
//! state of its branches, its ledger) is keyed by [`LoadedSpec::state_key`]
//! (`preview.pr-42`), so two instances never share any of it.

use super::{Create, LoadedSpec, Spec};
use crate::error::{Error, Result};

/// The name of the reference an instance fills in: `${instance}`.
pub const INSTANCE: &str = "instance";

/// The longest instance name: it becomes part of platform names (a Render service, a Neon
/// branch, a DNS label) that have their own limits.
pub const MAX_INSTANCE_LEN: usize = 40;

/// Refuses an instance name that could not be part of a platform name or a file name:
/// lowercase ASCII letters, digits and `-`, starting and ending with a letter or digit, at
/// most [`MAX_INSTANCE_LEN`] characters (`pr-42`).
pub fn check_instance_name(instance: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let valid = !instance.is_empty()
        && instance.len() <= MAX_INSTANCE_LEN
        && instance.chars().all(ok_char)
        && !instance.starts_with('-')
        && !instance.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(Error::config(format!(
            "instance `{}` is not a valid instance name: use lowercase letters, digits and `-` (not first or last), at most {MAX_INSTANCE_LEN} characters (e.g. `pr-42`)",
            instance.escape_debug()
        )))
    }
}

impl Spec {
    /// Fills in what an ephemeral environment takes from the one it is `like`: its provider
    /// when it names none, and each variable's value or source where it gives none. Done
    /// once at load, so every reader sees the same environment.
    pub(crate) fn apply_like(&mut self) {
        let likes: Vec<(String, String)> = self
            .environments
            .iter()
            .filter(|(_, e)| e.ephemeral)
            .filter_map(|(n, e)| e.like.clone().map(|l| (n.clone(), l)))
            .collect();
        for (name, like) in likes {
            let Some(provider) = self.environments.get(&like).map(|e| e.provider.clone()) else {
                continue; // reported by the check, at its place
            };
            if let Some(env) = self.environments.get_mut(&name)
                && env.provider.is_empty()
            {
                env.provider = provider;
            }
            for var in self.vars.values_mut() {
                let own = var.values.contains_key(&name) || var.sources.contains_key(&name);
                if own {
                    continue;
                }
                if let Some(v) = var.values.get(&like).cloned() {
                    var.values.insert(name.clone(), v);
                }
                if let Some(s) = var.sources.get(&like).cloned() {
                    var.sources.insert(name.clone(), s);
                }
            }
        }
    }
}

impl LoadedSpec {
    /// The key of what belongs to `environment` in the evidence store (lease, evidence, data
    /// state, ledger): the environment's name, or `ENV.INSTANCE` for an instance of an
    /// ephemeral one.
    pub fn state_key(&self, environment: &str) -> String {
        match (&self.instance, self.is_ephemeral(environment)) {
            (Some(i), true) => format!("{environment}.{i}"),
            _ => environment.to_owned(),
        }
    }

    /// Whether `environment` is declared ephemeral.
    pub fn is_ephemeral(&self, environment: &str) -> bool {
        self.spec
            .environments
            .get(environment)
            .is_some_and(|e| e.ephemeral)
    }

    /// Refuses a command that changes `environment` when the spec was loaded for no
    /// instance of it (or for one of a long-lived environment): an ephemeral environment is
    /// a template, changed only through an instance.
    pub fn check_instance_for(&self, environment: &str) -> Result<()> {
        match (self.is_ephemeral(environment), &self.instance) {
            (true, Some(_)) | (false, None) => Ok(()),
            (true, None) => Err(Error::config(format!(
                "environment `{environment}` is ephemeral: name the instance (`--instance pr-42`)"
            ))),
            (false, Some(i)) => Err(Error::config(format!(
                "environment `{environment}` is not ephemeral, so it has no instances (`--instance {i}` given)"
            ))),
        }
    }

    /// The `create` that applies to `service` (or a datastore) in `environment`: its own,
    /// or — in an ephemeral environment that is `like` another and says none — a copy of that
    /// environment's resource.
    /// The `create` of service `name` in `environment` ([`LoadedSpec::effective_create`]).
    pub fn service_create(&self, name: &str, environment: &str) -> Option<Create> {
        let s = self.spec.services.get(name)?;
        self.effective_create(s.create.as_ref(), environment)
    }

    /// The `create` of datastore `name` in `environment` ([`LoadedSpec::effective_create`]).
    pub fn datastore_create(&self, name: &str, environment: &str) -> Option<Create> {
        let d = self.spec.datastores.get(name)?;
        self.effective_create(d.create.as_ref(), environment)
    }

    /// The `create` that applies in `environment` given a resource's own: its own, or — in
    /// an ephemeral environment `like` another, when it says none — a copy of that
    /// environment's resource.
    pub fn effective_create(&self, create: Option<&Create>, environment: &str) -> Option<Create> {
        if let Some(c) = create.filter(|c| c.applies_to(environment)) {
            return Some(c.clone());
        }
        if create.is_some_and(|c| !c.enabled) {
            return None; // `create = false` says no, everywhere
        }
        let env = self.spec.environments.get(environment)?;
        match (&env.like, env.ephemeral) {
            (Some(like), true) => Some(Create {
                enabled: true,
                like: Some(like.clone()),
            }),
            _ => None,
        }
    }

    /// The rules of ephemeral environments, each refused at its place.
    pub(crate) fn check_ephemeral(&self) -> Result<()> {
        let spec = &self.spec;
        for (name, env) in &spec.environments {
            let base = format!("environments.{name}");
            if let Some(like) = &env.like {
                let at = format!("{base}.like");
                if !env.ephemeral {
                    return Err(self.error_at(
                        &at,
                        "`like` is for ephemeral environments (`ephemeral = true`); a long-lived environment's services say `create = { like = \"ENV\" }` themselves",
                    ));
                }
                match spec.environments.get(like) {
                    None => {
                        return Err(self.error_at(
                            &at,
                            format!("`like` names environment `{like}`, which is not declared"),
                        ));
                    }
                    Some(_) if like == name => {
                        return Err(self.error_at(&at, "an environment cannot be like itself"));
                    }
                    Some(l) if l.ephemeral => {
                        return Err(self.error_at(
                            &at,
                            format!("`like` names `{like}`, which is ephemeral itself: name a long-lived environment (`staging`)"),
                        ));
                    }
                    Some(l) if l.provider != env.provider => {
                        return Err(self.error_at(
                            &at,
                            format!(
                                "`{name}` runs on `{}` but is like `{like}`, which runs on `{}`: an instance copies resources on its own platform only",
                                env.provider, l.provider
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
            if env.provider.is_empty() {
                return Err(self.error_at(
                    &base,
                    format!(
                        "environment `{name}` names no `provider` (give one, or `like = \"ENV\"` on an ephemeral environment)"
                    ),
                ));
            }
            if env.ttl.is_some() && !env.ephemeral {
                return Err(self.error_at(
                    &format!("{base}.ttl"),
                    "`ttl` is for ephemeral environments (`ephemeral = true`)",
                ));
            }
            if env.ttl.is_some_and(|t| t.is_zero()) {
                return Err(self.error_at(&format!("{base}.ttl"), "`ttl` must be longer than zero"));
            }
            if !env.ephemeral {
                continue;
            }
            if env.protected {
                return Err(self.error_at(
                    &format!("{base}.protected"),
                    "an ephemeral environment cannot be protected: its instances are deleted by `staging down`",
                ));
            }
            if env.promotes_to.is_some() {
                return Err(self.error_at(
                    &format!("{base}.promotes_to"),
                    "an ephemeral environment promotes to nothing: promote from a long-lived environment (`staging`)",
                ));
            }
            if let Some((from, _)) = spec
                .environments
                .iter()
                .find(|(_, e)| e.promotes_to.as_deref() == Some(name))
            {
                return Err(self.error_at(
                    &format!("environments.{from}.promotes_to"),
                    format!("`{from}` promotes to `{name}`, which is ephemeral: nothing is promoted into a preview"),
                ));
            }
            for (svc, s) in &spec.services {
                if s.shared_with.iter().any(|e| e == name) {
                    return Err(self.error_at(
                        &format!("services.{svc}.shared_with"),
                        format!("service `{svc}` cannot be shared with `{name}`: an ephemeral environment's instances are deleted"),
                    ));
                }
            }
            for (db, d) in &spec.databases {
                if d.shared_with.iter().any(|e| e == name) {
                    return Err(self.error_at(
                        &format!("databases.{db}.shared_with"),
                        format!("database `{db}` cannot be shared with `{name}`: an ephemeral environment's instances are deleted"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Refuses a `${instance}` written where it would not belong to an ephemeral
    /// environment, at its `line:col`.
    pub(crate) fn check_instance_places(&self, offsets: &[usize]) -> Result<()> {
        let ephemeral: Vec<&str> = self
            .spec
            .environments
            .iter()
            .filter(|(_, e)| e.ephemeral)
            .map(|(n, _)| n.as_str())
            .collect();
        for &at in offsets {
            let path = self.key_path_at(at).unwrap_or_default();
            if !instance_place_allowed(&self.spec, &path, &ephemeral) {
                return Err(Error::config_at(
                    self.format_place(Some(at)),
                    format!(
                        "`${{instance}}` here ({}) would belong to every environment: write it only in what belongs to an ephemeral environment — its own `[environments.ENV]` table, `overrides.ENV`, `values.ENV` / `sources.ENV` of a variable, or a database branch of ephemeral environments only{}",
                        if path.is_empty() { "top level" } else { &path },
                        if ephemeral.is_empty() {
                            " (the spec declares no ephemeral environment)".to_owned()
                        } else {
                            format!(" (ephemeral: {})", ephemeral.join(", "))
                        }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The deepest key path whose value spans byte `at`.
    fn key_path_at(&self, at: usize) -> Option<String> {
        self.spans
            .iter()
            .filter(|(_, r)| r.start <= at && at < r.end)
            .min_by_key(|(_, r)| r.end - r.start)
            .map(|(k, _)| k.clone())
    }
}

/// Whether a `${instance}` at `path` belongs to an ephemeral environment only.
fn instance_place_allowed(spec: &Spec, path: &str, ephemeral: &[&str]) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    let is_eph = |e: &str| ephemeral.contains(&e);
    match parts.as_slice() {
        ["environments", env, ..] => is_eph(env),
        ["services" | "datastores", _, "overrides", env, ..] => is_eph(env),
        ["vars", _, "values" | "sources", env, ..] => is_eph(env),
        ["databases", db, "branch", ..] => spec
            .databases
            .get(*db)
            .and_then(|d| d.branch.as_ref())
            .is_some_and(|b| {
                let envs = b.environments();
                !envs.is_empty() && envs.iter().all(|e| is_eph(e))
            }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_are_lowercase_labels() {
        for ok in ["pr-42", "a", "feature-x-1", &"a".repeat(MAX_INSTANCE_LEN)] {
            assert!(check_instance_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "PR-42",
            "-pr",
            "pr-",
            "pr_42",
            "pr/42",
            "../x",
            "pr 42",
            "pr.42",
            "prä",
            &"a".repeat(MAX_INSTANCE_LEN + 1),
        ] {
            assert!(check_instance_name(bad).is_err(), "{bad:?}");
        }
    }
}
