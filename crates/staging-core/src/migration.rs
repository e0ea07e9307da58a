//! The [`Migration`] trait: what is applied to a database and how to apply the rest.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Result;

/// The state of one migration against one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    /// Applied, and the file is unchanged since.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but the file changed since (checksum differs).
    Modified,
    /// Applied, but the file is gone.
    Missing,
}

/// One migration and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationEntry {
    /// The version (`20260122103000`), or the tool's revision id.
    pub version: String,
    /// A human name (`add_checks`).
    pub name: String,
    /// Its state.
    pub state: MigrationState,
}

/// The status of a database's migrations.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct MigrationStatus {
    /// Every known migration, in order.
    pub entries: Vec<MigrationEntry>,
}

impl MigrationStatus {
    /// Versions in a given state.
    pub fn versions(&self, state: MigrationState) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.state == state)
            .map(|e| e.version.as_str())
            .collect()
    }

    /// Whether anything is modified or missing, which blocks applying.
    pub fn has_drift(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e.state, MigrationState::Modified | MigrationState::Missing))
    }
}

/// What applying would do, or did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct MigrationPlan {
    /// The versions to apply, in order.
    pub to_apply: Vec<MigrationEntry>,
}

/// The result of applying.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct MigrationReport {
    /// Migrations applied by this run, in order.
    pub applied: Vec<AppliedMigration>,
    /// What the run let through that it would normally refuse (drift allowed by an explicit
    /// escape hatch), one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One migration applied by a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedMigration {
    /// Its version.
    pub version: String,
    /// Its name.
    pub name: String,
    /// How long it took.
    #[serde(rename = "duration_ms", serialize_with = "ms")]
    pub duration: Duration,
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Migrations for one target database: a native SQL runner or an external tool.
#[async_trait]
pub trait Migration: Debug + Send + Sync + 'static {
    /// A short description (`sql:migrations on sqlite`, `command: alembic upgrade head`).
    fn describe(&self) -> String;

    /// The state of every migration against the target.
    async fn status(&self) -> Result<MigrationStatus>;

    /// What [`Migration::apply`] would do, changing nothing.
    async fn plan(&self) -> Result<MigrationPlan>;

    /// Apply every pending migration.
    async fn apply(&self) -> Result<MigrationReport>;
}

/// A migration runner behind a pointer.
pub type DynMigration = Arc<dyn Migration>;

#[async_trait]
impl<T: Migration + ?Sized> Migration for Arc<T> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    async fn status(&self) -> Result<MigrationStatus> {
        (**self).status().await
    }
    async fn plan(&self) -> Result<MigrationPlan> {
        (**self).plan().await
    }
    async fn apply(&self) -> Result<MigrationReport> {
        (**self).apply().await
    }
}
