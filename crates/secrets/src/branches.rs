//! A database that is a branch (`[databases.NAME] branch = ...`) takes its URL from the
//! branch: the branch's connection URL becomes the value of the database's `url_var` in the
//! environments the branch is for, so migrations, probes and the services' variables all
//! reach the branch and never a URL written by hand. The branch providers live in their own
//! crates, which this crate does not depend on: whoever composes the run passes how to build
//! one in [`SecretBackends::database_branches`].

use staging_core::secret_backends::SecretBackends;
use staging_core::secretness::Origin;
use staging_core::spec::{BranchSpec, LoadedSpec};
use staging_core::{DynSecretStore, Error, Redactor, Result};

use crate::resolve::ResolvedVars;

/// The store of the Supabase branch that is `environment`'s database, and the key in it:
/// `key` is `KEY`, or `DATABASE.KEY` to pick one of several Supabase databases.
pub(crate) fn supabase_store(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
    key: &str,
) -> Result<(DynSecretStore, String)> {
    let (database, key) = match key.split_once('.') {
        Some((d, k)) => (Some(d), k),
        None => (None, key),
    };
    let env = spec.spec.environment(environment)?;
    let found: Vec<(&String, &BranchSpec)> = spec
        .spec
        .databases
        .iter()
        .filter(|(name, _)| database.is_none_or(|d| d == name.as_str()))
        .filter_map(|(name, db)| {
            db.branch
                .as_ref()
                .filter(|b| {
                    matches!(b, BranchSpec::Supabase(_)) && b.applies_to(environment, env.protected)
                })
                .map(|b| (name, b))
        })
        .collect();
    let branch = match found.as_slice() {
        [(_, b)] => *b,
        [] => {
            return Err(Error::config(format!(
                "`source = {{ supabase = \"{key}\" }}` reads the Supabase branch that is environment `{environment}`'s database, and no `[databases.{}] branch = {{ supabase = .. }}` is for `{environment}`",
                database.unwrap_or("NAME")
            )));
        }
        several => {
            let names: Vec<&str> = several.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::config(format!(
                "`source = {{ supabase = \"{key}\" }}`: environment `{environment}` has several Supabase databases ({}); name one, `supabase = \"{}.{key}\"`",
                names.join(", "),
                names[0]
            )));
        }
    };
    let build = backends.branch_secret_stores.clone().ok_or_else(|| {
        Error::config(
            "a `supabase` secret source needs the branch providers (`SecretBackends::branch_secret_stores`; the `staging` facade built with the `providers-supabase` feature sets it)",
        )
    })?;
    let store = build(branch)?
        .ok_or_else(|| Error::config("this database branch offers no secret store".to_owned()))?;
    Ok((store, key.to_owned()))
}

/// Replaces the `url_var` of each database whose branch is for `environment` with the
/// branch's connection URL (a secret, registered with the redactor). A branch that cannot
/// be built or read is an error of that variable, never a silent fallback to another URL.
pub(crate) async fn apply(
    backends: &SecretBackends,
    spec: &LoadedSpec,
    environment: &str,
    out: &mut ResolvedVars,
) {
    let Ok(env) = spec.spec.environment(environment) else {
        return;
    };
    for (name, db) in &spec.spec.databases {
        let Some(b) = db
            .branch
            .as_ref()
            .filter(|b| b.applies_to(environment, env.protected))
        else {
            continue;
        };
        let var = db.url_var.clone();
        out.values.remove(&var);
        out.missing.retain(|m| m != &var);
        let built = backends
            .database_branches
            .clone()
            .ok_or_else(|| {
                staging_core::Error::config(format!(
                    "database `{name}` is a branch, and nothing here can reach its provider (`SecretBackends::database_branches`; the `staging` facade built with the branch's `providers-*` feature sets it)"
                ))
            })
            .and_then(|f| f(b));
        let branch = match built {
            Ok(b) => b,
            Err(e) => {
                out.errors.insert(var, e.to_string());
                continue;
            }
        };
        out.sources.insert(var.clone(), branch.describe());
        match branch.connection_url().await {
            Ok(url) => {
                Redactor::global().register_if_secret(Origin::Credential, &url);
                out.values.insert(var, url);
            }
            Err(e) => {
                if e.class() == staging_core::ErrorClass::CannotProceed
                    && !matches!(e, staging_core::Error::NotFound { .. })
                {
                    out.unreachable.insert(var.clone());
                }
                out.errors.insert(var, e.to_string());
            }
        }
    }
}
