//! The [`DatabaseBranch`] trait: a database that lives as a branch of another one (a Neon
//! branch forked from production, a Supabase preview branch).
//!
//! Beside [`Migration`](crate::Migration) on purpose: a branch decides *which* database an
//! environment's migrations, probes and services talk to; migrations decide what is in it.
//! The connection URL is a [`SecretString`] from the moment the provider reads it, and a
//! provider checks that the URL it read names the branch asked for (a known failure of other
//! tools hands back the parent's URL, which would point staging at production).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Serialize;

use crate::error::Result;

/// Where a branch is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchState {
    /// Usable: its operations are finished.
    Ready,
    /// Being created, reset or otherwise busy.
    Busy,
    /// Failed (the provider's word for it).
    Failed,
}

/// What a branch is, as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BranchStatus {
    /// The provider's id of the branch.
    pub id: String,
    /// Its name (`staging`).
    pub name: String,
    /// The id of the branch it was forked from, when known.
    pub parent_id: Option<String>,
    /// Its state.
    pub state: BranchState,
    /// Whether [`DatabaseBranch::ensure`] created it (`false` when it was found).
    pub created: bool,
}

/// A database that is a branch of a parent database.
///
/// Small on purpose: waiting for the provider's operations happens inside each call, so a
/// call that returns `Ok` leaves the branch ready.
#[async_trait]
pub trait DatabaseBranch: Debug + Send + Sync + 'static {
    /// A short description (`neon branch staging of main in project p-1`).
    fn describe(&self) -> String;

    /// Find the branch, or create it from its parent when it is missing.
    async fn ensure(&self) -> Result<BranchStatus>;

    /// Make the branch a fresh copy of its parent (the branch's own data is replaced).
    async fn reset_from_parent(&self) -> Result<BranchStatus>;

    /// The branch's connection URL, checked to name this branch and not its parent.
    async fn connection_url(&self) -> Result<SecretString>;

    /// The branch as the provider reports it now, without changing it.
    async fn status(&self) -> Result<BranchStatus>;
}

/// A database branch behind a pointer.
pub type DynDatabaseBranch = Arc<dyn DatabaseBranch>;

#[async_trait]
impl<T: DatabaseBranch + ?Sized> DatabaseBranch for Arc<T> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    async fn ensure(&self) -> Result<BranchStatus> {
        (**self).ensure().await
    }
    async fn reset_from_parent(&self) -> Result<BranchStatus> {
        (**self).reset_from_parent().await
    }
    async fn connection_url(&self) -> Result<SecretString> {
        (**self).connection_url().await
    }
    async fn status(&self) -> Result<BranchStatus> {
        (**self).status().await
    }
}

#[async_trait]
impl<T: DatabaseBranch + ?Sized> DatabaseBranch for Box<T> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    async fn ensure(&self) -> Result<BranchStatus> {
        (**self).ensure().await
    }
    async fn reset_from_parent(&self) -> Result<BranchStatus> {
        (**self).reset_from_parent().await
    }
    async fn connection_url(&self) -> Result<SecretString> {
        (**self).connection_url().await
    }
    async fn status(&self) -> Result<BranchStatus> {
        (**self).status().await
    }
}
