//! The native SQL runner: a directory of versioned files applied to Postgres or SQLite.

mod backend;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Serialize;
use staging_core::{
    AppliedMigration, Error, Migration, MigrationEntry, MigrationPlan, MigrationReport,
    MigrationState, MigrationStatus, Result,
};

use crate::db::{self, Conn, DbKind, IfMissing, TableName};
use crate::files::{self, MigrationFile};
use crate::split::{self, split_statements};
pub(crate) use backend::AppliedRow;

/// The default name of the metadata table.
pub const DEFAULT_TABLE: &str = "staging_migrations";

/// How long a runner waits for another runner's lock before giving up, by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// The native runner for one database: the files of `dir` against the database at `url`.
///
/// Every run takes the database's migration lock (a Postgres advisory lock, or a lock file
/// next to the SQLite file), so any number of runners may start at once: each migration is
/// applied exactly once, by whichever runner gets the lock first.
#[derive(Debug, Clone)]
pub struct SqlMigrator {
    url: SecretString,
    kind: DbKind,
    dir: PathBuf,
    table: TableName,
    allow_drift: bool,
    lock_timeout: Duration,
    applied_by: String,
}

/// A row of the metadata table, as `history` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// The version.
    pub version: String,
    /// The name when applied.
    pub name: String,
    /// SHA-256 of the file when applied.
    pub checksum: String,
    /// When (RFC 3339, UTC).
    pub applied_at: String,
    /// How long it took.
    pub duration_ms: i64,
    /// Which tool version on which host applied it.
    pub applied_by: String,
}

impl SqlMigrator {
    /// A runner for the files of `dir` against `url` (`postgres://…` or `sqlite:…`).
    pub fn new(url: SecretString, dir: impl Into<PathBuf>) -> Result<Self> {
        let kind = DbKind::of(&url)?;
        Ok(SqlMigrator {
            url,
            kind,
            dir: dir.into(),
            table: TableName::parse(DEFAULT_TABLE)?,
            allow_drift: false,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            applied_by: format!(
                "staging-migrate {} on {}",
                env!("CARGO_PKG_VERSION"),
                host_name()
            ),
        })
    }

    /// Keep the metadata in `table` (`name` or `schema.name`) instead of `staging_migrations`.
    pub fn with_table(mut self, table: &str) -> Result<Self> {
        self.table = TableName::parse(table)?;
        Ok(self)
    }

    /// The escape hatch: apply pending migrations even though some applied ones were modified
    /// or are missing. Each such migration is logged with `tracing::warn!` and listed in the
    /// report's `warnings`.
    pub fn allow_drift(mut self, allow: bool) -> Self {
        self.allow_drift = allow;
        self
    }

    /// How long to wait for another runner's lock (default 10 minutes).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Record `applied_by` as this instead of `staging-migrate VERSION on HOST`.
    pub fn applied_by(mut self, applied_by: impl Into<String>) -> Self {
        self.applied_by = applied_by.into();
        self
    }

    /// Which database the URL points at.
    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// The migrations directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files of the directory, in order.
    pub fn files(&self) -> Result<Vec<MigrationFile>> {
        files::load_dir(&self.dir)
    }

    /// The rows of the metadata table, in order of version (empty when it does not exist).
    pub async fn history(&self) -> Result<Vec<HistoryEntry>> {
        let Some(mut conn) =
            db::connect(&self.url, IfMissing::ReportAbsent, self.lock_timeout).await?
        else {
            return Ok(vec![]);
        };
        backend::read_history(&mut conn, &self.table).await
    }

    async fn applied_rows(&self) -> Result<Vec<AppliedRow>> {
        let Some(mut conn) =
            db::connect(&self.url, IfMissing::ReportAbsent, self.lock_timeout).await?
        else {
            return Ok(vec![]);
        };
        backend::read_applied(&mut conn, &self.table).await
    }

    /// The refusal for drift, or the warnings when the escape hatch is on.
    fn check_drift(&self, status: &MigrationStatus) -> Result<Vec<String>> {
        if !status.has_drift() {
            return Ok(vec![]);
        }
        let describe = |state: MigrationState| {
            status
                .entries
                .iter()
                .filter(|e| e.state == state)
                .map(|e| format!("{}_{}", e.version, e.name))
                .collect::<Vec<_>>()
        };
        let modified = describe(MigrationState::Modified);
        let missing = describe(MigrationState::Missing);
        let mut parts = vec![];
        if !modified.is_empty() {
            parts.push(format!(
                "modified since applied (checksum differs): {}",
                modified.join(", ")
            ));
        }
        if !missing.is_empty() {
            parts.push(format!(
                "applied but the file is gone: {}",
                missing.join(", ")
            ));
        }
        let what = parts.join("; ");
        if !self.allow_drift {
            return Err(Error::failed(format!(
                "refusing to apply migrations in {}: {what}. Restore the files as they were applied, or \
                 rerun with --allow-drift to apply the pending migrations anyway",
                self.dir.display()
            )));
        }
        let warning = format!("drift allowed by --allow-drift: {what}");
        tracing::warn!(dir = %self.dir.display(), "{warning}");
        Ok(vec![warning])
    }
}

/// Refuse, before any of them runs, pending migrations that control the transaction the
/// runner wraps each one in (`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, ...): a `COMMIT`
/// inside would make the statements before it permanent while a later failure "rolls back"
/// only the rest. Files with the no-transaction marker run without a wrapper and may.
pub(crate) fn check_transaction_control<'a>(
    pending: impl IntoIterator<Item = &'a MigrationFile>,
) -> Result<()> {
    let mut found = vec![];
    for file in pending.into_iter().filter(|f| !f.no_transaction) {
        for t in split::transaction_control(&file.sql) {
            found.push(format!(
                "{}:{}: `{}`",
                file.path.display(),
                t.line,
                t.keyword
            ));
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    Err(Error::failed(format!(
        "refusing to apply migrations: {} statement(s) control the transaction each migration runs in \
         (the runner commits a migration together with its metadata row, so a `COMMIT` of its own would leave \
         it half-applied): {}. Remove them, or put `{}` on a line of its own to run that file outside a \
         transaction; no migration was run",
        found.len(),
        found.join(", "),
        files::NO_TRANSACTION_MARKER
    )))
}

/// The status of `files` against the rows of the metadata table.
pub(crate) fn compute_status(files: &[MigrationFile], applied: &[AppliedRow]) -> MigrationStatus {
    let mut by_version: BTreeMap<i64, MigrationEntry> = BTreeMap::new();
    let applied_by_version: BTreeMap<i64, &AppliedRow> =
        applied.iter().map(|r| (r.version, r)).collect();
    for f in files {
        let state = match applied_by_version.get(&f.version) {
            Some(row) if row.checksum == f.checksum => MigrationState::Applied,
            Some(_) => MigrationState::Modified,
            None => MigrationState::Pending,
        };
        by_version.insert(
            f.version,
            MigrationEntry {
                version: f.version.to_string(),
                name: f.name.clone(),
                state,
            },
        );
    }
    for row in applied {
        by_version
            .entry(row.version)
            .or_insert_with(|| MigrationEntry {
                version: row.version.to_string(),
                name: row.name.clone(),
                state: MigrationState::Missing,
            });
    }
    MigrationStatus {
        entries: by_version.into_values().collect(),
    }
}

/// Where and why a migration failed, as the backend saw it.
#[derive(Debug)]
pub(crate) struct Failure {
    /// Index of the failing statement among the file's statements; `None` when the failure
    /// was in recording the migration, not in the file.
    pub(crate) statement: Option<usize>,
    /// Byte offset in the file where the database reports the error, when it does.
    pub(crate) at_byte: Option<usize>,
    /// The database's message, with its code.
    pub(crate) message: String,
}

/// The error of a failed migration: the file, the statement, the line, the database's words.
fn failure_error(file: &MigrationFile, failure: &Failure, not_run: usize) -> Error {
    let statements = split_statements(&file.sql);
    let mut place = String::new();
    if let Some(at) = failure.at_byte {
        place.push_str(&format!(" at line {}", split::line_at(&file.sql, at)));
    }
    let statement = failure
        .statement
        .and_then(|i| statements.get(i).map(|s| (i, *s)))
        .or_else(|| {
            failure.at_byte.and_then(|at| {
                statements
                    .iter()
                    .enumerate()
                    .find(|(_, s)| s.end >= at)
                    .map(|(i, s)| (i, *s))
            })
        });
    match statement {
        Some((i, s)) => {
            let text: String = s
                .text(&file.sql)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let text = staging_core::Redactor::global().shorten(&text, 160);
            let first = split::line_at(&file.sql, s.start);
            let last = split::line_at(&file.sql, s.end);
            let lines = if first == last {
                format!("line {first}")
            } else {
                format!("lines {first}-{last}")
            };
            if failure.at_byte.is_none() {
                place.push_str(&format!(" at line {first}"));
            }
            place.push_str(&format!(
                " (statement {} of {}, {lines}: `{text}`)",
                i + 1,
                statements.len()
            ));
        }
        None if failure.statement.is_none() && failure.at_byte.is_none() => {
            place.push_str(" while recording it in the metadata table");
        }
        None => {}
    }
    let rollback = if file.no_transaction {
        "it ran without a transaction (staging:no-transaction), so statements before the failing one stay applied"
    } else {
        "its transaction was rolled back"
    };
    let after = if not_run > 0 {
        format!("; {not_run} later migration(s) were not run")
    } else {
        String::new()
    };
    Error::failed(format!(
        "migration {} failed{place}: {}; {rollback}{after}",
        file.path.display(),
        failure.message
    ))
}

#[async_trait]
impl Migration for SqlMigrator {
    fn describe(&self) -> String {
        format!("sql:{} on {}", self.dir.display(), self.kind.name())
    }

    async fn status(&self) -> Result<MigrationStatus> {
        let files = self.files()?;
        let applied = self.applied_rows().await?;
        Ok(compute_status(&files, &applied))
    }

    async fn plan(&self) -> Result<MigrationPlan> {
        let files = self.files()?;
        let status = compute_status(&files, &self.applied_rows().await?);
        self.check_drift(&status)?;
        check_transaction_control(files.iter().filter(|f| {
            status
                .entries
                .iter()
                .any(|e| e.state == MigrationState::Pending && e.version == f.version.to_string())
        }))?;
        let to_apply = status
            .entries
            .into_iter()
            .filter(|e| e.state == MigrationState::Pending)
            .collect();
        Ok(MigrationPlan { to_apply })
    }

    async fn apply(&self) -> Result<MigrationReport> {
        let files = self.files()?;
        let mut conn = db::connect(&self.url, IfMissing::Create, self.lock_timeout)
            .await?
            .ok_or_else(|| Error::failed("the database could not be created"))?;
        let lock = backend::lock(&mut conn, &self.table, self.lock_timeout).await?;
        let result = self.apply_locked(&mut conn, &files).await;
        backend::unlock(&mut conn, lock).await;
        result
    }
}

impl SqlMigrator {
    async fn apply_locked(
        &self,
        conn: &mut Conn,
        files: &[MigrationFile],
    ) -> Result<MigrationReport> {
        backend::ensure_table(conn, &self.table).await?;
        // Read under the lock: a runner that waited sees what the one before it applied.
        let applied = backend::read_applied(conn, &self.table).await?;
        let status = compute_status(files, &applied);
        let warnings = self.check_drift(&status)?;
        let pending_versions: std::collections::HashSet<&str> = status
            .entries
            .iter()
            .filter(|e| e.state == MigrationState::Pending)
            .map(|e| e.version.as_str())
            .collect();
        let pending: Vec<&MigrationFile> = files
            .iter()
            .filter(|f| pending_versions.contains(f.version.to_string().as_str()))
            .collect();
        check_transaction_control(pending.iter().copied())?;
        let mut report = MigrationReport {
            applied: vec![],
            warnings,
        };
        let mut failed = None;
        for (i, file) in pending.iter().enumerate() {
            let started = Instant::now();
            tracing::info!(migration = %file.file_name(), "applying");
            match backend::apply_one(conn, &self.table, file, &self.applied_by).await {
                Ok(Ok(())) => {
                    let duration = started.elapsed();
                    tracing::info!(migration = %file.file_name(), duration_ms = duration.as_millis() as u64, "applied");
                    report.applied.push(AppliedMigration {
                        version: file.version.to_string(),
                        name: file.name.clone(),
                        duration,
                    });
                }
                Ok(Err(failure)) => {
                    failed = Some(failure_error(file, &failure, pending.len() - i - 1));
                    break;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(last) = report.applied.last() {
            let version = last.version.parse().unwrap_or_default();
            backend::make_durable(conn, &self.table, version).await?;
        }
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(report)
    }
}

/// This machine's name, for `applied_by`.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(version: i64, checksum: &str) -> MigrationFile {
        MigrationFile {
            version,
            version_text: version.to_string(),
            name: format!("m{version}"),
            path: PathBuf::from(format!("{version}_m{version}.sql")),
            sql: String::new(),
            checksum: checksum.to_owned(),
            no_transaction: false,
            down: None,
        }
    }

    fn row(version: i64, checksum: &str) -> AppliedRow {
        AppliedRow {
            version,
            name: format!("m{version}"),
            checksum: checksum.to_owned(),
        }
    }

    #[test]
    fn status_marks_applied_pending_modified_and_missing_in_version_order() {
        let files = [file(1, "a"), file(2, "b"), file(4, "d")];
        let applied = [row(1, "a"), row(2, "changed"), row(3, "c")];
        let s = compute_status(&files, &applied);
        let states: Vec<(&str, MigrationState)> = s
            .entries
            .iter()
            .map(|e| (e.version.as_str(), e.state))
            .collect();
        assert_eq!(
            states,
            vec![
                ("1", MigrationState::Applied),
                ("2", MigrationState::Modified),
                ("3", MigrationState::Missing),
                ("4", MigrationState::Pending)
            ]
        );
    }
}
