//! A database that is a branch (`[databases.NAME] branch = ...`) takes its URL from the
//! branch: the branch's connection URL becomes the value of the database's `url_var` in the
//! environments the branch is for, so migrations, probes and the services' variables all
//! reach the branch and never a URL written by hand. The branch providers live in their own
//! crates, which this crate does not depend on: the CLI (or an embedder) says how to build
//! one with [`set_database_branches`].

use std::sync::{Arc, OnceLock, RwLock};

use staging_core::spec::{BranchSpec, LoadedSpec};
use staging_core::{DynDatabaseBranch, Redactor, Result};

use crate::resolve::ResolvedVars;

/// Builds the branch a spec describes (Neon, Supabase).
pub type DatabaseBranches = Arc<dyn Fn(&BranchSpec) -> Result<DynDatabaseBranch> + Send + Sync>;

fn builders() -> &'static RwLock<Option<DatabaseBranches>> {
    static B: OnceLock<RwLock<Option<DatabaseBranches>>> = OnceLock::new();
    B.get_or_init(Default::default)
}

/// Tell this crate how to build a database branch from its spec.
pub fn set_database_branches(b: DatabaseBranches) {
    *builders().write().unwrap_or_else(|e| e.into_inner()) = Some(b);
}

/// Replaces the `url_var` of each database whose branch is for `environment` with the
/// branch's connection URL (a secret, registered with the redactor). A branch that cannot
/// be built or read is an error of that variable, never a silent fallback to another URL.
pub(crate) async fn apply(spec: &LoadedSpec, environment: &str, out: &mut ResolvedVars) {
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
        out.secret_names.insert(var.clone());
        let built = builders()
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                staging_core::Error::config(format!(
                    "database `{name}` is a branch, and nothing here can reach its provider (set `staging_secrets::set_database_branches`)"
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
                Redactor::global().register(&url);
                out.values.insert(var, url);
            }
            Err(e) => {
                out.errors.insert(var, e.to_string());
            }
        }
    }
}
