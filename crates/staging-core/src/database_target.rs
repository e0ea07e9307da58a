//! Databases identified by what the server says they are, and the token every database
//! write needs.
//!
//! Two URLs name one database in many spellings — `localhost` and `127.0.0.1`, `postgres://`
//! and `postgresql://`, the default port written or not, another user, `?host=` in the query,
//! a Unix socket, a pooler in front — so the text of a URL cannot tell two environments'
//! databases apart. What can is what the server says: a Postgres database is identified by
//! [`PostgresIdentity`] (read by `staging-postgres`, the one crate that opens Postgres
//! connections, through [`IdentifyDatabase`]), a SQLite file by its device and inode
//! ([`sqlite_identity`]).
//!
//! A write to a database — migrations, the seed, `migrate reset`, refresh's restore, the
//! scrub — takes a [`DatabaseTarget`]. Nothing outside this module can make one: the only
//! way to get it is [`issue_database_targets`], which reads the identity of the run's
//! database and of every other environment's database that can be read, and refuses (exit 2,
//! naming both environments and the shared identity) when they are one database, unless the
//! spec declares the sharing (`shared_with`). It fails closed: a run database whose identity
//! cannot be read is refused (exit 3), and so is another environment's database whose URL
//! was read but whose server could not say what it is.
//!
//! Why these parts, for Postgres. `system_identifier` (`pg_control_system()`) names a cluster
//! but is copied by a physical backup, so a staging server restored from production's
//! snapshot has production's; the postmaster's start time tells two running servers apart
//! (the same server answers it the same through every address, socket and pooler), and the
//! database's oid and name tell databases of one server apart. The address the server
//! reports (`inet_server_addr()`) is how it was reached, not what it is — one server answers
//! on 127.0.0.1, ::1 and a socket — so it is shown, never compared.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::isolation::EnvValues;
use crate::spec::LoadedSpec;

/// What a Postgres server says one of its databases is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostgresIdentity {
    /// `system_identifier` from `pg_control_system()`, when the role may read it.
    pub system_identifier: Option<String>,
    /// `pg_postmaster_start_time()`, in UTC with microseconds.
    pub started: String,
    /// The port the server is configured with (`current_setting('port')`).
    pub port: String,
    /// The database's oid (`pg_database.oid`).
    pub database_oid: u32,
    /// `current_database()`.
    pub database: String,
    /// `inet_server_addr()`: the address this connection reached (none over a socket).
    /// Shown, never compared.
    pub reached_at: Option<String>,
}

/// What the file system says a SQLite database is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SqliteIdentity {
    /// An existing file: its device and inode (hard links and symlinks are one file).
    File {
        /// `st_dev`.
        device: u64,
        /// `st_ino`.
        inode: u64,
        /// The canonical path, for messages.
        path: PathBuf,
    },
    /// A file not created yet: the directory it will be in (device, inode) and its name.
    Absent {
        /// `st_dev` of the directory.
        device: u64,
        /// `st_ino` of the directory.
        inode: u64,
        /// The file's name in it.
        name: String,
        /// The path as resolved, for messages.
        path: PathBuf,
    },
    /// `sqlite::memory:`: private to one connection, never another environment's.
    Memory,
}

/// What a database is, as its server (or the file system) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseIdentity {
    /// A Postgres database.
    Postgres(PostgresIdentity),
    /// A SQLite database.
    Sqlite(SqliteIdentity),
}

impl DatabaseIdentity {
    /// Whether `self` and `other` are one database: for Postgres, the same running server
    /// (start time and port; the `system_identifier` too when both could be read) and the
    /// same database in it (oid and name); for SQLite, the same file.
    pub fn same_database(&self, other: &DatabaseIdentity) -> bool {
        match (self, other) {
            (DatabaseIdentity::Postgres(a), DatabaseIdentity::Postgres(b)) => {
                let cluster = match (&a.system_identifier, &b.system_identifier) {
                    (Some(x), Some(y)) => x == y,
                    _ => true,
                };
                cluster
                    && a.started == b.started
                    && a.port == b.port
                    && a.database_oid == b.database_oid
                    && a.database == b.database
            }
            (DatabaseIdentity::Sqlite(a), DatabaseIdentity::Sqlite(b)) => match (a, b) {
                (
                    SqliteIdentity::File {
                        device: d1,
                        inode: i1,
                        ..
                    },
                    SqliteIdentity::File {
                        device: d2,
                        inode: i2,
                        ..
                    },
                ) => d1 == d2 && i1 == i2,
                (
                    SqliteIdentity::Absent {
                        device: d1,
                        inode: i1,
                        name: n1,
                        ..
                    },
                    SqliteIdentity::Absent {
                        device: d2,
                        inode: i2,
                        name: n2,
                        ..
                    },
                ) => d1 == d2 && i1 == i2 && n1 == n2,
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether `now`, read again right before a write, is still the database this identity
    /// was read from. A server restarted in between (a Neon compute waking up, a branch
    /// reset) has a new start time, so when both sides read the `system_identifier` the start
    /// time is not asked; without it, a restart is refused rather than guessed.
    pub fn still(&self, now: &DatabaseIdentity) -> bool {
        match (self, now) {
            (DatabaseIdentity::Postgres(a), DatabaseIdentity::Postgres(b)) => {
                match (&a.system_identifier, &b.system_identifier) {
                    (Some(x), Some(y)) => {
                        x == y
                            && a.port == b.port
                            && a.database_oid == b.database_oid
                            && a.database == b.database
                    }
                    _ => self.same_database(now),
                }
            }
            (DatabaseIdentity::Sqlite(SqliteIdentity::Memory), _) => {
                matches!(now, DatabaseIdentity::Sqlite(SqliteIdentity::Memory))
            }
            // A file created since (the migrations' first run) is still the one named.
            (
                DatabaseIdentity::Sqlite(SqliteIdentity::Absent { path, .. }),
                DatabaseIdentity::Sqlite(SqliteIdentity::File { path: p2, .. }),
            ) => path == p2 || self.same_database(now),
            _ => self.same_database(now),
        }
    }
}

impl fmt::Display for DatabaseIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseIdentity::Postgres(p) => {
                write!(
                    f,
                    "postgres database `{}` (oid {}) on the server",
                    p.database, p.database_oid
                )?;
                if let Some(id) = &p.system_identifier {
                    write!(f, " with system identifier {id},")?;
                }
                write!(f, " started {}, port {}", p.started, p.port)?;
                if let Some(at) = &p.reached_at {
                    write!(f, " (reached at {at})")?;
                }
                Ok(())
            }
            DatabaseIdentity::Sqlite(SqliteIdentity::File {
                device,
                inode,
                path,
            }) => write!(
                f,
                "sqlite file {} (device {device}, inode {inode})",
                path.display()
            ),
            DatabaseIdentity::Sqlite(SqliteIdentity::Absent { path, .. }) => {
                write!(f, "sqlite file {} (not created yet)", path.display())
            }
            DatabaseIdentity::Sqlite(SqliteIdentity::Memory) => f.write_str("sqlite in memory"),
        }
    }
}

/// Reads what a database server says a database is. Implemented for Postgres by
/// `staging_postgres::ServerIdentity` (core opens no connections); SQLite is read here.
#[async_trait]
pub trait IdentifyDatabase: fmt::Debug + Send + Sync {
    /// The identity of the database `url` names. `Ok(None)` when the server answered that
    /// this database does not exist; an error when it could not be read (unreachable,
    /// refused, not permitted), or [`Error::NotSupported`] for a kind of database it cannot
    /// identify.
    async fn identify(&self, url: &SecretString) -> Result<Option<DatabaseIdentity>>;
}

/// The path of a SQLite URL (`sqlite://x.db`, `sqlite:x.db?mode=rwc`), `None` for another
/// scheme; an empty path is the in-memory database.
fn sqlite_path(url: &str) -> Option<&str> {
    let trimmed = url.trim();
    let lower = trimmed.get(..7).map(str::to_ascii_lowercase);
    if lower.as_deref() != Some("sqlite:") {
        return None;
    }
    let rest = &trimmed[7..];
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    Some(rest.split('?').next().unwrap_or(rest))
}

/// The identity of the SQLite file at `path`: its device and inode when it exists, else its
/// directory's and its name (the directory must exist, or be creatable under an existing
/// one: the nearest existing ancestor is used then).
pub fn sqlite_identity(path: &Path) -> Result<DatabaseIdentity> {
    if path.as_os_str().is_empty() || path.to_string_lossy().contains(":memory:") {
        return Ok(DatabaseIdentity::Sqlite(SqliteIdentity::Memory));
    }
    match std::fs::metadata(path) {
        Ok(meta) => {
            let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            let (device, inode) = dev_ino(&meta);
            Ok(DatabaseIdentity::Sqlite(SqliteIdentity::File {
                device,
                inode,
                path: canonical,
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Not created yet: identified by where it will be, through the nearest directory
            // that exists (the migrations create the rest).
            let mut dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let mut name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            loop {
                let probe = if dir.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    dir.clone()
                };
                match std::fs::metadata(&probe) {
                    Ok(meta) => {
                        let (device, inode) = dev_ino(&meta);
                        return Ok(DatabaseIdentity::Sqlite(SqliteIdentity::Absent {
                            device,
                            inode,
                            name,
                            path: path.to_path_buf(),
                        }));
                    }
                    Err(_) => {
                        let Some(last) = dir.file_name() else {
                            return Err(Error::io(
                                format!("reading the directory of {}", path.display()),
                                e,
                            ));
                        };
                        name = format!("{}/{name}", last.to_string_lossy());
                        dir = dir.parent().map(Path::to_path_buf).unwrap_or_default();
                    }
                }
            }
        }
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

#[cfg(unix)]
fn dev_ino(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn dev_ino(meta: &std::fs::Metadata) -> (u64, u64) {
    // No inode here: the modification time and length stand in (weaker, still not text).
    let t = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    (t, meta.len())
}

/// The identity of the database `url` names: SQLite here (a relative path against `base`,
/// the spec's directory), anything else through `identify`.
pub async fn identify_url(
    base: &Path,
    url: &SecretString,
    identify: &dyn IdentifyDatabase,
) -> Result<Option<DatabaseIdentity>> {
    match sqlite_path(url.expose_secret()) {
        Some(path) if path.is_empty() || path.contains(":memory:") => {
            Ok(Some(DatabaseIdentity::Sqlite(SqliteIdentity::Memory)))
        }
        Some(path) => {
            let p = Path::new(path);
            let resolved = if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            };
            sqlite_identity(&resolved).map(Some)
        }
        None => identify.identify(url).await,
    }
}

/// Permission to write one database of one run: its URL and the identity that was compared
/// with every other environment's databases. Only [`issue_database_targets`] makes one, so a
/// function that takes a `&DatabaseTarget` cannot be called for a database that was not
/// checked. Cloning it copies the permission, never widens it.
///
/// Outside this crate one cannot be made, nor one's URL swapped:
///
/// ```compile_fail
/// # use staging_core::secrecy::SecretString;
/// let forged = staging_core::DatabaseTarget {
///     environment: "staging".into(),
///     database: "main".into(),
///     url: SecretString::from("postgres://prod/db"),
/// };
/// ```
#[derive(Clone)]
pub struct DatabaseTarget {
    environment: String,
    database: String,
    url: SecretString,
    base_dir: PathBuf,
    identity: DatabaseIdentity,
    /// The other environments' databases it was compared with: (environment, database,
    /// identity), so a write can check again that it is none of them.
    others: Vec<(String, String, DatabaseIdentity)>,
    compared_with: Vec<String>,
    not_compared: Vec<String>,
}

impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseTarget")
            .field("environment", &self.environment)
            .field("database", &self.database)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl DatabaseTarget {
    /// The environment whose run may write it.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The spec's name of the database (`main`).
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The URL the write connects to (a secret until it is used).
    pub fn url(&self) -> &SecretString {
        &self.url
    }

    /// What the server said it is when it was checked.
    pub fn identity(&self) -> &DatabaseIdentity {
        &self.identity
    }

    /// The other environments whose databases were read and compared.
    pub fn compared_with(&self) -> &[String] {
        &self.compared_with
    }

    /// The other environments (and why) whose databases could not be compared, because
    /// their URLs cannot be read from here.
    pub fn not_compared(&self) -> &[String] {
        &self.not_compared
    }

    /// Refuse unless `now` — the identity read on the connection about to write, or right
    /// before a tool is started with the URL — is still the database that was checked, and
    /// none of the other environments' databases it was compared with.
    pub fn confirm(&self, now: &DatabaseIdentity) -> Result<()> {
        self.confirm_distinct(now)?;
        if self.identity.still(now) {
            return Ok(());
        }
        Err(Error::Failed {
            message: format!(
                "database `{}` of `{}` is no longer the database the isolation check compared: it was {}, the server now says {}. Nothing was written; run again",
                self.database, self.environment, self.identity, now
            ),
        })
    }

    /// Refuse when `now` is one of the other environments' databases this target was
    /// compared with. What is checked after an operation that replaces the database (a
    /// branch reset from its parent), where the identity may legitimately change.
    pub fn confirm_distinct(&self, now: &DatabaseIdentity) -> Result<()> {
        match self.others.iter().find(|(_, _, id)| id.same_database(now)) {
            None => Ok(()),
            Some((env, db, _)) => Err(Error::config(format!(
                "database `{}` of environment `{}` is now database `{db}` of environment `{env}`: the server says both are {now}. Refused before any write",
                self.database, self.environment
            ))),
        }
    }

    async fn read_again(&self, identify: &dyn IdentifyDatabase) -> Result<DatabaseIdentity> {
        match identify_url(&self.base_dir, &self.url, identify).await {
            Ok(Some(now)) => Ok(now),
            Ok(None) => Err(unreadable(
                &self.environment,
                &self.database,
                "the server says the database does not exist",
            )),
            Err(e) => Err(unreadable(
                &self.environment,
                &self.database,
                &e.to_string(),
            )),
        }
    }

    /// Read the identity again through `identify` and [`DatabaseTarget::confirm`] it.
    pub async fn recheck(&self, identify: &dyn IdentifyDatabase) -> Result<()> {
        self.confirm(&self.read_again(identify).await?)
    }

    /// After an operation that replaced the database (a branch reset from its parent): read
    /// the identity again, refuse when it is now one of the other environments' databases,
    /// and return the target with its new identity, which the writes after it confirm.
    pub async fn reidentify(&self, identify: &dyn IdentifyDatabase) -> Result<DatabaseTarget> {
        let now = self.read_again(identify).await?;
        self.confirm_distinct(&now)?;
        let mut next = self.clone();
        next.identity = now;
        Ok(next)
    }

    /// One line for reports: the identity and what it was compared with.
    pub fn describe(&self) -> String {
        let mut s = format!("{}", self.identity);
        if !self.compared_with.is_empty() {
            s.push_str(&format!(
                "; compared with {}",
                self.compared_with.join(", ")
            ));
        }
        if !self.not_compared.is_empty() {
            s.push_str(&format!("; not compared: {}", self.not_compared.join("; ")));
        }
        s
    }
}

/// The [`DatabaseTarget`]s of one run, by the spec's database name.
#[derive(Debug, Clone, Default)]
pub struct DatabaseTargets {
    targets: BTreeMap<String, DatabaseTarget>,
}

impl DatabaseTargets {
    /// The target of database `name`; an error when it was not issued (the write was not
    /// checked, so it is refused).
    pub fn get(&self, name: &str) -> Result<&DatabaseTarget> {
        self.targets.get(name).ok_or_else(|| {
            Error::config(format!(
                "database `{name}` was not checked against the other environments' databases, so nothing may be written to it"
            ))
        })
    }

    /// Every target, by database name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &DatabaseTarget)> {
        self.targets.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether none was issued.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

fn unreadable(environment: &str, database: &str, why: &str) -> Error {
    Error::Provider {
        provider: "isolation".into(),
        source: format!(
            "cannot read what database `{database}` of environment `{environment}` is, so it cannot be shown to be no other environment's: {why}; refused before any write"
        )
        .into(),
        retryable: false,
    }
}

/// Issue the write targets of `environment`'s databases `own` (spec name and URL): read what
/// each is, read what every other environment's databases are (their URLs from `others`;
/// an environment whose values cannot be read is not compared and is named in the
/// target's report), and refuse when one of them is the same database.
///
/// - a database of the run whose identity cannot be read: refused, exit 3;
/// - another environment's database whose URL was read but whose identity could not be
///   (its server unreachable, the login refused): refused, exit 3 — it may be this one;
///   one its server says does not exist, or of a kind that cannot be identified (not Postgres
///   or SQLite, so not the run's), is not this one;
/// - the same database in two environments: refused, exit 2, naming both and the identity,
///   unless the spec's `[databases.NAME] shared_with` names the other environment — and even
///   then from an unprotected environment to a protected one's.
pub async fn issue_database_targets(
    spec: &LoadedSpec,
    environment: &str,
    own: Vec<(String, SecretString)>,
    others: &dyn EnvValues,
    identify: &dyn IdentifyDatabase,
) -> Result<DatabaseTargets> {
    let me = spec.spec.environment(environment)?;
    let base = spec.base_dir();
    let mut mine = vec![];
    for (name, url) in own {
        let identity = match identify_url(&base, &url, identify).await {
            Ok(Some(id)) => id,
            Ok(None) => {
                return Err(unreadable(
                    environment,
                    &name,
                    "the server says the database does not exist",
                ));
            }
            Err(e) => return Err(unreadable(environment, &name, &e.to_string())),
        };
        mine.push((name, url, identity));
    }
    let mut compared_with = vec![];
    let mut not_compared = vec![];
    let mut theirs: Vec<(String, String, DatabaseIdentity)> = vec![];
    for other in spec.spec.environments.keys().filter(|e| *e != environment) {
        let values = match others.values(other).await {
            Ok(v) => v,
            Err(e) => {
                not_compared.push(format!("`{other}` (its values cannot be read here: {e})"));
                continue;
            }
        };
        let mut read_any = false;
        for (name, db) in &spec.spec.databases {
            let Some(url) = values.get(&db.url_var) else {
                not_compared.push(format!(
                    "database `{name}` of `{other}` (`{}` cannot be read here)",
                    db.url_var
                ));
                continue;
            };
            match identify_url(&base, url, identify).await {
                Ok(Some(id)) => {
                    read_any = true;
                    theirs.push((other.clone(), name.clone(), id));
                }
                Ok(None) => read_any = true,
                Err(Error::NotSupported { .. }) => {}
                Err(e) => {
                    return Err(Error::Provider {
                        provider: "isolation".into(),
                        source: format!(
                            "cannot read what database `{name}` of environment `{other}` is, so `{environment}`'s databases cannot be shown to be different ones: {e}; refused before any write"
                        )
                        .into(),
                        retryable: false,
                    });
                }
            }
        }
        if read_any {
            compared_with.push(other.clone());
        }
    }
    let mut targets = BTreeMap::new();
    for (name, url, identity) in mine {
        let shared_with = spec
            .spec
            .databases
            .get(&name)
            .map(|d| d.shared_with.clone())
            .unwrap_or_default();
        // What this database must never be: every other environment's database, except one
        // it is declared shared with (and may be written as such).
        let mut must_differ = vec![];
        for (other, their_name, their) in &theirs {
            let other_protected = spec
                .spec
                .environments
                .get(other)
                .is_some_and(|e| e.protected);
            let declared = shared_with.iter().any(|s| s == other)
                || spec
                    .spec
                    .databases
                    .get(their_name)
                    .is_some_and(|d| d.shared_with.iter().any(|s| s == environment));
            if declared && (!other_protected || me.protected) {
                continue;
            }
            must_differ.push((other.clone(), their_name.clone(), their.clone()));
            if !identity.same_database(their) {
                continue;
            }
            let protected = if other_protected { "protected " } else { "" };
            let hint = if declared {
                format!(
                    "it is declared shared (`shared_with`), but a write to it from `{environment}` is a write to protected `{other}`. Give `{environment}` its own database (a branch or a copy of `{other}`'s) and remove `shared_with`"
                )
            } else if other_protected && !me.protected {
                format!(
                    "Give `{environment}` its own database (a branch or a copy of `{other}`'s); check the value of its URL variable in `{environment}`"
                )
            } else {
                format!(
                    "Give `{environment}` its own database, or, if sharing is deliberate, say so with `shared_with = [\"{other}\"]` on `[databases.{name}]`"
                )
            };
            return Err(Error::config(format!(
                "database `{name}` of environment `{environment}` is database `{their_name}` of {protected}environment `{other}`: the server says both are {identity}. Refused before any write. {hint}"
            )));
        }
        targets.insert(
            name.clone(),
            DatabaseTarget {
                environment: environment.to_owned(),
                database: name,
                url,
                base_dir: base.clone(),
                identity,
                others: must_differ,
                compared_with: compared_with.clone(),
                not_compared: not_compared.clone(),
            },
        );
    }
    Ok(DatabaseTargets { targets })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(sysid: Option<&str>, started: &str, oid: u32) -> DatabaseIdentity {
        DatabaseIdentity::Postgres(PostgresIdentity {
            system_identifier: sysid.map(str::to_owned),
            started: started.into(),
            port: "5432".into(),
            database_oid: oid,
            database: "shop".into(),
            reached_at: Some("127.0.0.1".into()),
        })
    }

    #[test]
    fn one_server_reached_two_ways_is_one_database_and_a_restored_copy_is_not() {
        let a = pg(Some("7716"), "2026-01-01 00:00:00.1+00", 16384);
        let mut via_socket = a.clone();
        if let DatabaseIdentity::Postgres(p) = &mut via_socket {
            p.reached_at = None;
        }
        assert!(a.same_database(&via_socket));
        // A role that may not read pg_control_system(): the rest still decides.
        assert!(a.same_database(&pg(None, "2026-01-01 00:00:00.1+00", 16384)));
        // A copy restored from production's snapshot: same cluster id and oid, another server.
        assert!(!a.same_database(&pg(Some("7716"), "2026-02-02 00:00:00.1+00", 16384)));
        // Another database of the same server.
        assert!(!a.same_database(&pg(Some("7716"), "2026-01-01 00:00:00.1+00", 16385)));
        // A cluster with another id cannot be this one, whatever the clock says.
        assert!(!a.same_database(&pg(Some("9999"), "2026-01-01 00:00:00.1+00", 16384)));
    }

    #[test]
    fn a_restart_between_the_check_and_the_write_is_tolerated_only_with_the_cluster_id() {
        let a = pg(Some("7716"), "t1", 16384);
        assert!(a.still(&pg(Some("7716"), "t2", 16384)));
        assert!(!a.still(&pg(Some("7716"), "t2", 16385)));
        let b = pg(None, "t1", 16384);
        assert!(!b.still(&pg(None, "t2", 16384)));
    }

    #[test]
    fn a_sqlite_file_is_identified_through_links_and_other_spellings_of_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.db");
        std::fs::write(&file, b"").unwrap();
        let hard = dir.path().join("hard.db");
        std::fs::hard_link(&file, &hard).unwrap();
        let dotted = dir.path().join(".").join("app.db");
        let a = sqlite_identity(&file).unwrap();
        assert!(a.same_database(&sqlite_identity(&hard).unwrap()));
        assert!(a.same_database(&sqlite_identity(&dotted).unwrap()));
        #[cfg(unix)]
        {
            let link = dir.path().join("link.db");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            assert!(a.same_database(&sqlite_identity(&link).unwrap()));
        }
        let other = dir.path().join("other.db");
        std::fs::write(&other, b"").unwrap();
        assert!(!a.same_database(&sqlite_identity(&other).unwrap()));
        // Not created yet: the same place is the same database, another name is not.
        let new = sqlite_identity(&dir.path().join("sub/new.db")).unwrap();
        assert!(new.same_database(&sqlite_identity(&dir.path().join("./sub/new.db")).unwrap()));
        assert!(!new.same_database(&sqlite_identity(&dir.path().join("sub/new2.db")).unwrap()));
        let memory = sqlite_identity(Path::new(":memory:")).unwrap();
        assert!(!memory.same_database(&memory.clone()));
    }

    /// Every URL names the database after its last `/`; `down` is a server that cannot be
    /// read, `gone` one that says the database does not exist.
    #[derive(Debug)]
    struct ByName;

    #[async_trait]
    impl IdentifyDatabase for ByName {
        async fn identify(&self, url: &SecretString) -> Result<Option<DatabaseIdentity>> {
            let name = url.expose_secret().rsplit('/').next().unwrap_or_default();
            match name {
                "down" => Err(Error::failed("connection refused")),
                "gone" => Ok(None),
                _ => Ok(Some(DatabaseIdentity::Postgres(PostgresIdentity {
                    system_identifier: None,
                    started: "t".into(),
                    port: "5432".into(),
                    database_oid: 1,
                    database: name.into(),
                    reached_at: None,
                }))),
            }
        }
    }

    #[derive(Debug)]
    struct Values(BTreeMap<String, BTreeMap<String, SecretString>>);

    #[async_trait]
    impl EnvValues for Values {
        async fn values(&self, environment: &str) -> Result<BTreeMap<String, SecretString>> {
            self.0
                .get(environment)
                .cloned()
                .ok_or_else(|| Error::not_found(environment.to_owned()))
        }
    }

    fn spec(shared: &str) -> LoadedSpec {
        LoadedSpec::parse(
            "staging.toml",
            format!("[project]\nname = \"x\"\n[environments.staging]\nprovider = \"p\"\n[environments.production]\nprovider = \"p\"\nprotected = true\n[vars.DATABASE_URL]\nsecret = true\n[databases.main]\nurl_var = \"DATABASE_URL\"\n{shared}"),
            crate::spec::LoadOptions::new(&["p"]),
        )
        .unwrap()
    }

    async fn issue(
        spec: &LoadedSpec,
        env: &str,
        mine: &str,
        theirs: Option<&str>,
    ) -> Result<DatabaseTargets> {
        let other = if env == "staging" {
            "production"
        } else {
            "staging"
        };
        let values = Values(
            theirs
                .map(|t| {
                    BTreeMap::from([(
                        other.to_owned(),
                        BTreeMap::from([(
                            "DATABASE_URL".to_owned(),
                            SecretString::from(format!("postgres://h/{t}")),
                        )]),
                    )])
                })
                .unwrap_or_default(),
        );
        issue_database_targets(
            spec,
            env,
            vec![(
                "main".into(),
                SecretString::from(format!("postgres://h/{mine}")),
            )],
            &values,
            &ByName,
        )
        .await
    }

    #[tokio::test]
    async fn a_target_is_issued_only_for_a_database_no_other_environment_has() {
        let spec = spec("");
        let t = issue(&spec, "staging", "shop_staging", Some("shop"))
            .await
            .unwrap();
        assert_eq!(t.get("main").unwrap().compared_with(), ["production"]);
        assert!(t.get("other").is_err());
        let e = issue(&spec, "staging", "shop", Some("shop"))
            .await
            .unwrap_err();
        assert_eq!(e.class(), crate::ErrorClass::Usage, "{e}");
        let text = e.to_string();
        assert!(
            text.contains("environment `staging`")
                && text.contains("protected environment `production`")
                && text.contains("`shop`"),
            "{text}"
        );
        // From production's side too.
        assert!(
            issue(&spec, "production", "shop", Some("shop"))
                .await
                .is_err()
        );
        // Production's values unreadable here: not compared, and said so.
        let t = issue(&spec, "staging", "shop", None).await.unwrap();
        assert!(t.get("main").unwrap().compared_with().is_empty());
        assert!(!t.get("main").unwrap().not_compared().is_empty());
    }

    #[tokio::test]
    async fn unreadable_identities_fail_closed_and_a_missing_database_is_not_anothers() {
        let spec = spec("");
        for (mine, theirs) in [
            ("down", Some("shop")),
            ("gone", Some("shop")),
            ("shop_staging", Some("down")),
        ] {
            let e = issue(&spec, "staging", mine, theirs).await.unwrap_err();
            assert_eq!(
                e.class(),
                crate::ErrorClass::CannotProceed,
                "{mine} {theirs:?}: {e}"
            );
            assert!(
                e.to_string().contains("cannot read what database `main`"),
                "{e}"
            );
        }
        issue(&spec, "staging", "shop_staging", Some("gone"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn declared_sharing_holds_except_from_an_unprotected_environment_into_a_protected_one() {
        let spec = spec("shared_with = [\"production\"]\n");
        let e = issue(&spec, "staging", "shop", Some("shop"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("declared shared"), "{e}");
        issue(&spec, "production", "shop", Some("shop"))
            .await
            .unwrap();
    }

    #[test]
    fn sqlite_urls_are_read_in_every_spelling_and_other_schemes_are_not_sqlite() {
        assert_eq!(sqlite_path("sqlite://a/b.db?mode=rwc"), Some("a/b.db"));
        assert_eq!(sqlite_path("SQLite:b.db"), Some("b.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), Some(":memory:"));
        assert_eq!(sqlite_path("postgres://h/db"), None);
        assert_eq!(sqlite_path("sql"), None);
    }
}
