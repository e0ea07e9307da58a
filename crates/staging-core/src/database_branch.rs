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

use crate::boundary::{CreationTarget, WriteBoundary};
use crate::error::{Error, Result};
use crate::provision::Creation;

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
    /// Whether [`ensure`] created it from its parent (`false` when it was found).
    pub created: bool,
}

/// A database that is a branch of a parent database.
///
/// Small on purpose: waiting for the provider's operations happens inside each call, so a
/// call that returns `Ok` leaves the branch ready.
///
/// Creating is a write like a service's creation: [`DatabaseBranch::missing`] only reads and
/// says what would be created (the branch, or the compute endpoint an existing Neon branch
/// lacks), and [`DatabaseBranch::create`] takes a [`CreationTarget`], which only the run's
/// [`WriteBoundary`] issues ([`ensure`] does both). Every call refuses, before any write, a
/// branch that is its project's default (production) branch or its own parent.
#[async_trait]
pub trait DatabaseBranch: Debug + Send + Sync + 'static {
    /// A short description (`neon branch staging of main in project p-1`).
    fn describe(&self) -> String;

    /// What is missing for the branch to be usable, in the order it is created (the
    /// branch from its parent, with its compute endpoint; or the endpoint alone), each
    /// owned by `owner` (`database main`); empty when the branch is there and usable.
    /// Reads only.
    async fn missing(&self, owner: &str) -> Result<Vec<Creation>>;

    /// Creates one of what [`DatabaseBranch::missing`] returned, and waits until the branch
    /// is ready. Refuses a target that is none of this branch's creations.
    async fn create(&self, target: &CreationTarget) -> Result<BranchStatus>;

    /// Make the branch a fresh copy of its parent (the branch's own data is replaced).
    /// Refuses a branch that does not exist: only `staging up` creates one.
    async fn reset_from_parent(&self) -> Result<BranchStatus>;

    /// The branch's connection URL, checked to name this branch and not its parent.
    async fn connection_url(&self) -> Result<SecretString>;

    /// The branch as the provider reports it now, without changing it.
    async fn status(&self) -> Result<BranchStatus>;

    /// What finds and deletes this branch once an instance of an ephemeral environment
    /// created it ([`crate::teardown`]), or `None` when the provider deletes no branch.
    fn teardown(&self) -> Option<&dyn crate::teardown::Teardown> {
        None
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone)]
pub struct Ensured {
    /// The branch as it is now.
    pub status: BranchStatus,
    /// What was created, in order (empty: it was there and usable).
    pub created: Vec<Creation>,
}

impl Ensured {
    /// Whether the branch itself was created from its parent (a fork: it holds the
    /// parent's data).
    pub fn forked(&self) -> bool {
        self.created.iter().any(|c| c.kind.ends_with(BRANCH_KIND))
    }
}

/// How a provider's [`Creation`] of a branch ends its `kind` (`neon branch`,
/// `supabase branch`); a compute endpoint's kind does not.
pub const BRANCH_KIND: &str = " branch";

/// Find the branch, or create what it lacks from its parent, each creation through
/// `boundary` ([`WriteBoundary::creation`]) before the first is made; `owner` names what in
/// the spec asks for it (`database main`). `on_create` is told before each creation's
/// request is sent (the caller marks a fork's data state there, so that a run stopped
/// mid-creation leaves the mark).
pub async fn ensure<F, Fut>(
    branch: &dyn DatabaseBranch,
    boundary: &WriteBoundary,
    owner: &str,
    mut on_create: F,
) -> Result<Ensured>
where
    F: FnMut(Creation) -> Fut + Send,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let missing = branch.missing(owner).await?;
    if missing.is_empty() {
        return Ok(Ensured {
            status: branch.status().await?,
            created: vec![],
        });
    }
    let cleared = missing
        .iter()
        .map(|c| boundary.creation(c))
        .collect::<Result<Vec<_>>>()?;
    let mut status = None;
    for target in &cleared {
        on_create((**target).clone()).await?;
        status = Some(branch.create(target).await?);
    }
    let mut status = status.ok_or_else(|| Error::Failed {
        message: format!("{}: nothing was created", branch.describe()),
    })?;
    status.created = missing.iter().any(|c| c.kind.ends_with(BRANCH_KIND));
    Ok(Ensured {
        status,
        created: missing,
    })
}

/// Whether `target` is `expected` (same kind and name): what a provider's
/// [`DatabaseBranch::create`] checks first, refusing (exit 2) a target issued for anything
/// else.
pub fn check_target(target: &CreationTarget, expected: &Creation) -> Result<()> {
    if target.kind == expected.kind && target.name == expected.name {
        Ok(())
    } else {
        Err(Error::config(format!(
            "refused before any write: the creation target is {}, not {}",
            target.describe(),
            expected.describe()
        )))
    }
}

/// A database branch behind a pointer.
pub type DynDatabaseBranch = Arc<dyn DatabaseBranch>;

#[async_trait]
impl<T: DatabaseBranch + ?Sized> DatabaseBranch for Arc<T> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    async fn missing(&self, owner: &str) -> Result<Vec<Creation>> {
        (**self).missing(owner).await
    }
    async fn create(&self, target: &CreationTarget) -> Result<BranchStatus> {
        (**self).create(target).await
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
    fn teardown(&self) -> Option<&dyn crate::teardown::Teardown> {
        (**self).teardown()
    }
}

#[async_trait]
impl<T: DatabaseBranch + ?Sized> DatabaseBranch for Box<T> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    async fn missing(&self, owner: &str) -> Result<Vec<Creation>> {
        (**self).missing(owner).await
    }
    async fn create(&self, target: &CreationTarget) -> Result<BranchStatus> {
        (**self).create(target).await
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
    fn teardown(&self) -> Option<&dyn crate::teardown::Teardown> {
        (**self).teardown()
    }
}
