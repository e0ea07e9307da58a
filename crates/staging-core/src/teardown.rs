//! Tearing an ephemeral instance down: deleting exactly what its runs created, and nothing
//! else.
//!
//! An instance of an ephemeral environment (`staging up --env preview --instance pr-42`)
//! records every resource it asks a platform to create in its [`Ledger`] — *before* the
//! request is sent (so a run stopped mid-request leaves the entry) and again with the
//! platform's id once the answer is in. `staging down` reads that ledger back and, for each
//! entry in reverse order, asks the platform what it holds now ([`Teardown::find`]) and
//! deletes it only through a [`DeletionTarget`], which only [`crate::WriteBoundary::deletion`]
//! issues, after the one check of this module ([`judge`]):
//!
//! - the environment is ephemeral and not protected, and the boundary is the instance's own;
//! - what the platform holds is what the ledger recorded: the same id, or — for an entry whose
//!   answer never came in — a resource of the recorded name that the platform says was created
//!   within [`INTERRUPTED_WINDOW`] of the recorded request;
//! - the platform's own marking, where it keeps one, does not say it belongs to something
//!   else;
//! - no other environment's resource has that id or that name in the same namespace.
//!
//! Anything else is refused with the reason and deleted by nobody. No ledger: nothing is
//! deleted at all.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::provision::Creation;

/// How far from the recorded request a resource found by name (its creation answer never
/// came in) may have been created and still be taken as this request's: the platform's
/// clock and ours may differ, and a creation may take a while to be listed.
pub const INTERRUPTED_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Who can find and delete a recorded resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "name")]
pub enum CreatedBy {
    /// The environment's provider ([`crate::ProviderFactory::teardown`]): a service, a
    /// datastore, a deploy context.
    Provider,
    /// The branch of the named database ([`crate::DatabaseBranch::teardown`]).
    Database(String),
}

/// One resource a run of an instance asked a platform to create, as its ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// What it is, in the platform's words (`render web service`, `neon branch`).
    pub kind: String,
    /// Its name on the platform.
    pub name: String,
    /// What in the spec asked for it (`service api`, `datastore db`, `database main`).
    pub owner: String,
    /// Where its name is unique, when the creation said ([`Creation::namespace`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Who can find and delete it.
    pub by: CreatedBy,
    /// The platform's id, once the creation's answer came in; `None` while the request is
    /// (or was, when the run stopped) in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When the request was about to be sent (seconds since the epoch).
    pub requested_at: u64,
    /// When it was deleted, once it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<u64>,
}

impl Created {
    /// The entry for `creation`, about to be requested now.
    pub fn requested(creation: &Creation, by: CreatedBy) -> Self {
        Created {
            kind: creation.kind.clone(),
            name: creation.name.clone(),
            owner: creation.owner.clone(),
            namespace: creation.namespace.clone(),
            by,
            id: None,
            requested_at: now_secs(),
            deleted_at: None,
        }
    }

    /// `render web service `shop-api-pr-7` (service api)`, for reports.
    pub fn describe(&self) -> String {
        format!("{} `{}` ({})", self.kind, self.name, self.owner)
    }
}

/// What a platform holds now under a recorded resource ([`Teardown::find`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// Its id on the platform.
    pub id: String,
    /// Its name on the platform.
    pub name: String,
    /// When the platform says it was created (seconds since the epoch), when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<u64>,
    /// What the platform's own marking of the resource says (tags, metadata), where it keeps
    /// one: `Some(false)` when it names another owner. `None`: the platform keeps none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marked_ours: Option<bool>,
}

/// Finds and deletes what a ledger recorded, on one platform. Offered by
/// [`crate::ProviderFactory::teardown`] for what the provider creates and by
/// [`crate::DatabaseBranch::teardown`] for a branch.
#[async_trait]
pub trait Teardown: Debug + Send + Sync {
    /// What the platform holds now for `created`: by its recorded id when there is one,
    /// else by its name; `None` when it is gone. Reads only; a read that fails is an error,
    /// never `None`.
    async fn find(&self, created: &Created) -> Result<Option<Found>>;

    /// Deletes it. Only [`crate::WriteBoundary::deletion`] issues the target. Something that
    /// is gone by the time the request lands is success (a second `down` is a no-op).
    async fn delete(&self, target: &DeletionTarget) -> Result<()>;
}

/// A teardown behind a pointer.
pub type DynTeardown = Arc<dyn Teardown>;

/// A resource that may be deleted: issued only by [`crate::WriteBoundary::deletion`] after
/// [`judge`] found it to be exactly what the instance's ledger recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionTarget {
    pub(crate) created: Created,
    pub(crate) found: Found,
}

impl DeletionTarget {
    /// The ledger's entry.
    pub fn created(&self) -> &Created {
        &self.created
    }

    /// What the platform holds, as found right before the check: the id to delete.
    pub fn found(&self) -> &Found {
        &self.found
    }

    /// The platform id to delete.
    pub fn id(&self) -> &str {
        &self.found.id
    }

    /// A target issued without any check, for provider tests only (feature `testkit`):
    /// production code never has this function.
    #[cfg(feature = "testkit")]
    pub fn unchecked_for_tests(created: Created, found: Found) -> Self {
        DeletionTarget { created, found }
    }
}

/// The one of `candidates` (what a platform lists under `created`'s name or id), `None`
/// when there is none; several are an error naming each by `id_of`: the one this instance
/// created cannot be told apart, so it is neither found nor deleted. `place` says where
/// they were listed (`resources on Render`, `branches of Neon project p-1`).
pub fn only_one<T>(
    created: &Created,
    mut candidates: Vec<T>,
    place: &str,
    id_of: impl Fn(&T) -> &str,
) -> Result<Option<T>> {
    match candidates.len() {
        0 | 1 => Ok(candidates.pop()),
        n => Err(Error::config(format!(
            "{}: {n} {place} are named `{}` ({}), so the one this instance created cannot be told apart; nothing is deleted",
            created.describe(),
            created.name,
            candidates.iter().map(&id_of).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// What the one check says of one ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// The platform holds nothing under it any more: nothing to delete.
    Gone,
    /// It is the recorded resource: it may be deleted.
    Ours(Found),
    /// It may not be deleted, and why.
    Refused(String),
}

/// The one decision of whether `found` is the resource `created` recorded (the boundary's
/// part — another environment's resources — is [`crate::WriteBoundary::deletion`]'s).
pub fn judge(created: &Created, found: Option<Found>) -> Judgement {
    let Some(found) = found else {
        return Judgement::Gone;
    };
    let what = created.describe();
    if found.marked_ours == Some(false) {
        return Judgement::Refused(format!(
            "{what}: the platform marks `{}` ({}) as belonging to something else",
            found.name, found.id
        ));
    }
    match &created.id {
        Some(id) if *id == found.id => {}
        Some(id) => {
            return Judgement::Refused(format!(
                "{what}: the ledger recorded id `{id}`, but the platform now holds `{}` under that name (id `{}`): it is not the resource this instance created (made again by hand?)",
                found.name, found.id
            ));
        }
        None => {
            let Some(at) = found.created_at else {
                return Judgement::Refused(format!(
                    "{what}: the run stopped before the platform answered its creation, and the platform does not say when `{}` ({}) was created, so it cannot be told apart from one made by hand",
                    found.name, found.id
                ));
            };
            let window = INTERRUPTED_WINDOW.as_secs();
            let from = created.requested_at.saturating_sub(window);
            let to = created.requested_at.saturating_add(window);
            if at < from || at > to {
                return Judgement::Refused(format!(
                    "{what}: the run stopped before the platform answered its creation, and `{}` ({}) was created at {at}, not within {} minutes of the request at {}: not this instance's",
                    found.name,
                    found.id,
                    window / 60,
                    created.requested_at
                ));
            }
        }
    }
    if found.name != created.name {
        return Judgement::Refused(format!(
            "{what}: the platform's resource `{}` is now named `{}`, not as recorded",
            found.id, found.name
        ));
    }
    Judgement::Ours(found)
}

/// Everything recorded for one instance of an ephemeral environment: what `down`, `list`
/// and `gc` read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    /// The ephemeral environment (`preview`).
    pub environment: String,
    /// The instance (`pr-42`).
    pub instance: String,
    /// How many times it was saved: the newest revision is the record.
    #[serde(default)]
    pub revision: u64,
    /// When its first `up` started (seconds since the epoch).
    pub created_at: u64,
    /// When its last `up` started.
    pub updated_at: u64,
    /// The commit of its last `up`.
    pub commit: String,
    /// When it expires (the environment's `ttl` after the last `up`), if it has a ttl.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Every resource it asked a platform to create, in order.
    #[serde(default)]
    pub created: Vec<Created>,
    /// When `down` removed everything (the record is kept for the audit trail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_at: Option<u64>,
}

impl InstanceRecord {
    /// The resources not deleted yet.
    pub fn remaining(&self) -> impl Iterator<Item = &Created> {
        self.created.iter().filter(|c| c.deleted_at.is_none())
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.down_at.is_none() && self.expires_at.is_some_and(|at| at <= now)
    }
}

/// Where instance records are kept: the evidence store (a directory or a Postgres table),
/// so runners that share evidence share them.
#[async_trait]
pub trait LedgerStore: Debug + Send + Sync {
    /// The record of `instance` of `environment`, if any.
    async fn load(&self, environment: &str, instance: &str) -> Result<Option<InstanceRecord>>;

    /// Writes the record whole (durably, before returning: a creation is requested only
    /// after its entry is stored).
    async fn save(&self, record: &InstanceRecord) -> Result<()>;

    /// Every record (of `environment`, when given), taken down or not.
    async fn list(&self, environment: Option<&str>) -> Result<Vec<InstanceRecord>>;
}

/// A ledger store behind a pointer.
pub type DynLedgerStore = Arc<dyn LedgerStore>;

/// The ledger of one instance during a run: its record, kept in step with the store. Every
/// creation of the run is recorded through it before the request ([`Ledger::requested`]) and
/// after the answer ([`Ledger::answered`]); a store that cannot be written stops the
/// creation (fail closed: nothing is created that the ledger does not know).
#[derive(Debug, Clone)]
pub struct Ledger {
    store: DynLedgerStore,
    record: Arc<tokio::sync::Mutex<InstanceRecord>>,
}

impl Ledger {
    /// Opens the ledger of `instance` for a run of `commit`: its record as stored (or a new
    /// one), its `updated_at`, `commit` and expiry set and saved before anything else.
    pub async fn open(
        store: DynLedgerStore,
        environment: &str,
        instance: &str,
        commit: &str,
        ttl: Option<Duration>,
    ) -> Result<Self> {
        let now = now_secs();
        let mut record =
            store
                .load(environment, instance)
                .await?
                .unwrap_or_else(|| InstanceRecord {
                    environment: environment.to_owned(),
                    instance: instance.to_owned(),
                    revision: 0,
                    created_at: now,
                    updated_at: now,
                    commit: commit.to_owned(),
                    expires_at: None,
                    created: vec![],
                    down_at: None,
                });
        record.updated_at = now;
        record.commit = commit.to_owned();
        record.down_at = None;
        record.expires_at = ttl.map(|t| now.saturating_add(t.as_secs()));
        save(&*store, &mut record).await?;
        Ok(Ledger {
            store,
            record: Arc::new(tokio::sync::Mutex::new(record)),
        })
    }

    /// Records that `creation` is about to be requested, and stores it; the index to give
    /// [`Ledger::answered`].
    pub async fn requested(&self, creation: &Creation, by: CreatedBy) -> Result<usize> {
        let mut record = self.record.lock().await;
        record.created.push(Created::requested(creation, by));
        let index = record.created.len() - 1;
        if let Err(e) = save(&*self.store, &mut record).await {
            let what = creation.describe();
            record.created.pop();
            return Err(Error::io(
                format!(
                    "the ledger of instance `{}` could not be written, so {what} was not requested",
                    record.instance
                ),
                std::io::Error::other(e.to_string()),
            ));
        }
        Ok(index)
    }

    /// Records the platform's id of the creation at `index`, and stores it.
    pub async fn answered(&self, index: usize, id: &str) -> Result<()> {
        let mut record = self.record.lock().await;
        if let Some(c) = record.created.get_mut(index) {
            c.id = Some(id.to_owned());
        }
        save(&*self.store, &mut record).await
    }

    /// The record as it stands.
    pub async fn record(&self) -> InstanceRecord {
        self.record.lock().await.clone()
    }
}

/// Saves `record` as its next revision.
pub async fn save(store: &dyn LedgerStore, record: &mut InstanceRecord) -> Result<()> {
    record.revision += 1;
    store.save(record).await
}
