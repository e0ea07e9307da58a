//! [`SecretBackends`]: what a run reaches beyond the spec's own secret stores — the secret
//! store a provider offers (`source = { provider = "KEY" }`), the database branches
//! (`[databases.NAME] branch = ...`, whose URL replaces the database's variable) and the
//! secret store a branch offers (`source = { supabase = "KEY" }`). The provider and branch
//! crates implement these and the crates that resolve variables do not depend on them, so
//! whoever composes a run (the `staging` facade's session) passes them down as a value:
//! there is no process-wide setting, and two sessions in one process never see each
//! other's.

use std::fmt;
use std::sync::Arc;

use crate::database_branch::DynDatabaseBranch;
use crate::error::Result;
use crate::secret::DynSecretStore;
use crate::spec::{BranchSpec, LoadedSpec};

/// Finds the secret store a provider offers for an environment of a spec.
pub type ProviderStores =
    Arc<dyn Fn(&LoadedSpec, &str) -> Result<Option<DynSecretStore>> + Send + Sync>;

/// Builds the branch a spec describes (Neon, Supabase).
pub type DatabaseBranches = Arc<dyn Fn(&BranchSpec) -> Result<DynDatabaseBranch> + Send + Sync>;

/// Builds the secret store a branch offers (a Supabase branch's API keys and database URL),
/// or `None` for a branch that offers none.
pub type BranchSecretStores =
    Arc<dyn Fn(&BranchSpec) -> Result<Option<DynSecretStore>> + Send + Sync>;

/// The secret sources a run reaches beyond the spec's own stores. Each is `None` until the
/// composer sets it; a spec that uses one left unset gets an error naming what is missing
/// (never a silent fallback).
#[derive(Clone, Default)]
pub struct SecretBackends {
    /// Where `source = { provider = "KEY" }` reads (a provider registry's
    /// [`crate::ProviderRegistry::secret_store`]).
    pub provider_stores: Option<ProviderStores>,
    /// How a database that is a branch is reached.
    pub database_branches: Option<DatabaseBranches>,
    /// Where `source = { supabase = "KEY" }` reads.
    pub branch_secret_stores: Option<BranchSecretStores>,
}

impl SecretBackends {
    /// None set: only the spec's own stores (env, dotenv, file, command) are read.
    pub fn none() -> Self {
        Self::default()
    }
}

impl fmt::Debug for SecretBackends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBackends")
            .field("provider_stores", &self.provider_stores.is_some())
            .field("database_branches", &self.database_branches.is_some())
            .field("branch_secret_stores", &self.branch_secret_stores.is_some())
            .finish()
    }
}
