//! What differs between Postgres and SQLite: the lock, the metadata table, applying one file.
//!
//! On Postgres a transactional migration is sent as ONE simple query,
//! `BEGIN; <file>; INSERT INTO <table> …; COMMIT;`: one round trip per migration, and the
//! metadata row commits atomically with the file. The server answers each statement with its
//! own completion, so counting completions before the error says which statement failed,
//! and the error's character position (relative to the whole query) gives the line.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgDatabaseError, PgErrorPosition};
use sqlx::{AssertSqlSafe, Row, raw_sql};
use staging_core::{Error, Result};

use super::{Failure, HistoryEntry};
use crate::db::{Conn, DbKind, TableName, db_error, is_undefined_table, sql_literal};
use crate::files::MigrationFile;
use crate::split::{byte_of_char_position, split_statements};

/// A row of the metadata table, as status needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppliedRow {
    pub(crate) version: i64,
    pub(crate) name: String,
    pub(crate) checksum: String,
}

/// The migration lock, held for a whole run.
#[derive(Debug)]
pub(crate) enum Lock {
    /// A session-level advisory lock with this key.
    Postgres(i64),
    /// An exclusive `flock` on the lock file next to the database.
    SqliteFile(std::fs::File),
    /// An in-memory SQLite database has one connection; nothing to lock.
    None,
}

/// The advisory lock key of a metadata table: the same for every runner of one database
/// schema, different for two schemas of one database (so tests and tenants do not serialize).
fn advisory_key(schema: &str, table: &str) -> i64 {
    let digest = Sha256::digest(format!("staging-migrate:{schema}.{table}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Take the migration lock, waiting at most `timeout` for another runner to release it.
pub(crate) async fn lock(conn: &mut Conn, table: &TableName, timeout: Duration) -> Result<Lock> {
    let what = "the migration lock (another runner is applying migrations)";
    match conn {
        Conn::Postgres(c) => {
            let pg = |e| db_error(DbKind::Postgres, "cannot take the migration lock", e);
            let schema = match &table.schema {
                Some(s) => s.clone(),
                None => sqlx::query_scalar::<_, Option<String>>("SELECT current_schema()::text")
                    .fetch_one(&mut *c)
                    .await
                    .map_err(pg)?
                    .unwrap_or_else(|| "public".to_owned()),
            };
            let key = advisory_key(&schema, &table.table);
            // Postgres 14+: notice a runner killed mid-migration within a second, abort its
            // transaction and free the lock, instead of finishing its query for nobody.
            let _ = raw_sql("SET client_connection_check_interval = 1000")
                .execute(&mut *c)
                .await;
            // Commit each migration without waiting for its WAL flush; `make_durable` flushes
            // once at the end of the run, before anything is reported as applied. A crash in
            // between loses whole migrations (file and metadata row together), never half.
            let _ = raw_sql("SET synchronous_commit = off")
                .execute(&mut *c)
                .await;
            let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
            raw_sql(AssertSqlSafe(format!("SET lock_timeout = {ms}")))
                .execute(&mut *c)
                .await
                .map_err(pg)?;
            let locked = sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(key)
                .execute(&mut *c)
                .await;
            let _ = raw_sql("RESET lock_timeout").execute(&mut *c).await;
            match locked {
                Ok(_) => Ok(Lock::Postgres(key)),
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => {
                    Err(Error::Timeout {
                        what: what.to_owned(),
                        after: timeout,
                    })
                }
                Err(e) => Err(pg(e)),
            }
        }
        Conn::Sqlite { file: None, .. } => Ok(Lock::None),
        Conn::Sqlite {
            file: Some(path), ..
        } => {
            let mut lock_path = path.clone().into_os_string();
            lock_path.push(".migrate-lock");
            let lock_path = std::path::PathBuf::from(lock_path);
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| {
                    Error::io(
                        format!("cannot open the lock file {}", lock_path.display()),
                        e,
                    )
                })?;
            let deadline = Instant::now() + timeout;
            loop {
                match f.try_lock() {
                    Ok(()) => return Ok(Lock::SqliteFile(f)),
                    Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(std::fs::TryLockError::WouldBlock) => {
                        return Err(Error::Timeout {
                            what: what.to_owned(),
                            after: timeout,
                        });
                    }
                    Err(std::fs::TryLockError::Error(e)) => {
                        return Err(Error::io(format!("cannot lock {}", lock_path.display()), e));
                    }
                }
            }
        }
    }
}

/// Release the lock (closing the connection or dying releases it too).
pub(crate) async fn unlock(conn: &mut Conn, lock: Lock) {
    match (conn, lock) {
        (Conn::Postgres(c), Lock::Postgres(key)) => {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .execute(&mut *c)
                .await;
        }
        (_, Lock::SqliteFile(f)) => {
            let _ = f.unlock();
        }
        _ => {}
    }
}

/// Make every migration committed so far durable: one synchronous commit flushes the WAL
/// up to it, and with it every earlier asynchronous commit.
pub(crate) async fn make_durable(
    conn: &mut Conn,
    table: &TableName,
    last_version: i64,
) -> Result<()> {
    if let Conn::Postgres(c) = conn {
        let sql = format!(
            "SET synchronous_commit = on; UPDATE {} SET duration_ms = duration_ms WHERE version = {last_version}",
            table.quoted()
        );
        raw_sql(AssertSqlSafe(sql))
            .execute(&mut *c)
            .await
            .map_err(|e| {
                db_error(
                    DbKind::Postgres,
                    "cannot flush the applied migrations to disk",
                    e,
                )
            })?;
    }
    Ok(())
}

/// Create the metadata table if it does not exist (under the lock, so runners do not race).
pub(crate) async fn ensure_table(conn: &mut Conn, table: &TableName) -> Result<()> {
    let t = table.quoted();
    match conn {
        Conn::Postgres(c) => {
            let mut sql = String::new();
            if let Some(s) = &table.schema {
                sql.push_str(&format!("CREATE SCHEMA IF NOT EXISTS \"{s}\";\n"));
            }
            sql.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    version BIGINT PRIMARY KEY,
                    name TEXT NOT NULL,
                    checksum TEXT NOT NULL,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                    duration_ms BIGINT NOT NULL,
                    applied_by TEXT NOT NULL,
                    no_transaction BOOLEAN NOT NULL DEFAULT false
                )"
            ));
            raw_sql(AssertSqlSafe(sql))
                .execute(&mut *c)
                .await
                .map_err(|e| db_error(DbKind::Postgres, "cannot create the metadata table", e))?;
        }
        Conn::Sqlite { conn: c, .. } => {
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    version INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    checksum TEXT NOT NULL,
                    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
                    duration_ms INTEGER NOT NULL,
                    applied_by TEXT NOT NULL,
                    no_transaction INTEGER NOT NULL DEFAULT 0
                )"
            );
            raw_sql(AssertSqlSafe(sql))
                .execute(&mut *c)
                .await
                .map_err(|e| db_error(DbKind::Sqlite, "cannot create the metadata table", e))?;
        }
    }
    Ok(())
}

/// The applied migrations, in order; none when the metadata table does not exist yet.
pub(crate) async fn read_applied(conn: &mut Conn, table: &TableName) -> Result<Vec<AppliedRow>> {
    let sql = format!(
        "SELECT version, name, checksum FROM {} ORDER BY version",
        table.quoted()
    );
    let (kind, rows) = match conn {
        Conn::Postgres(c) => (
            DbKind::Postgres,
            sqlx::query(AssertSqlSafe(sql))
                .fetch_all(&mut *c)
                .await
                .map(|rows| {
                    rows.iter()
                        .map(|r| (r.try_get(0), r.try_get(1), r.try_get(2)))
                        .collect::<Vec<_>>()
                }),
        ),
        Conn::Sqlite { conn: c, .. } => (
            DbKind::Sqlite,
            sqlx::query(AssertSqlSafe(sql))
                .fetch_all(&mut *c)
                .await
                .map(|rows| {
                    rows.iter()
                        .map(|r| (r.try_get(0), r.try_get(1), r.try_get(2)))
                        .collect::<Vec<_>>()
                }),
        ),
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) if is_undefined_table(&e) => return Ok(vec![]),
        Err(e) => return Err(db_error(kind, "cannot read the metadata table", e)),
    };
    rows.into_iter()
        .map(|(v, n, c)| match (v, n, c) {
            (Ok(version), Ok(name), Ok(checksum)) => Ok(AppliedRow {
                version,
                name,
                checksum,
            }),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                Err(db_error(kind, "unexpected metadata table layout", e))
            }
        })
        .collect()
}

/// Every row of the metadata table.
pub(crate) async fn read_history(conn: &mut Conn, table: &TableName) -> Result<Vec<HistoryEntry>> {
    let t = table.quoted();
    macro_rules! rows {
        ($c:expr, $kind:expr, $sql:expr) => {{
            match sqlx::query(AssertSqlSafe($sql)).fetch_all(&mut *$c).await {
                Err(e) if is_undefined_table(&e) => Ok(vec![]),
                Err(e) => Err(db_error($kind, "cannot read the metadata table", e)),
                Ok(rows) => rows
                    .iter()
                    .map(|r| {
                        Ok(HistoryEntry {
                            version: r.try_get::<i64, _>(0)?.to_string(),
                            name: r.try_get(1)?,
                            checksum: r.try_get(2)?,
                            applied_at: r.try_get(3)?,
                            duration_ms: r.try_get(4)?,
                            applied_by: r.try_get(5)?,
                        })
                    })
                    .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                    .map_err(|e| db_error($kind, "unexpected metadata table layout", e)),
            }
        }};
    }
    match conn {
        Conn::Postgres(c) => rows!(
            c,
            DbKind::Postgres,
            format!(
                "SELECT version, name, checksum, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), duration_ms, applied_by FROM {t} ORDER BY version"
            )
        ),
        Conn::Sqlite { conn: c, .. } => rows!(
            c,
            DbKind::Sqlite,
            format!(
                "SELECT version, name, checksum, applied_at, duration_ms, applied_by FROM {t} ORDER BY version"
            )
        ),
    }
}

/// Insert the metadata row of `file` through `$executor` (a `&mut PgConnection` or
/// `&mut SqliteConnection`), with the placeholders of that database.
macro_rules! record {
    ($executor:expr, $placeholders:expr, $t:expr, $file:expr, $applied_by:expr, $took:expr) => {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (version, name, checksum, duration_ms, applied_by, no_transaction) VALUES ({})",
            $t, $placeholders
        )))
        .bind($file.version)
        .bind($file.name.clone())
        .bind($file.checksum.clone())
        .bind($took.as_millis() as i64)
        .bind($applied_by.to_owned())
        .bind($file.no_transaction)
        .execute($executor)
        .await
        .map(|_| ())
    };
}

const PG_PLACEHOLDERS: &str = "$1, $2, $3, $4, $5, $6";
const SQLITE_PLACEHOLDERS: &str = "?, ?, ?, ?, ?, ?";

/// The database's words for an error, and where in `sent` it points, if anywhere.
fn describe(e: &sqlx::Error, sent: &str) -> (String, Option<usize>) {
    let Some(db) = e.as_database_error() else {
        return (
            staging_core::redact::mask_url_credentials(&e.to_string()).into_owned(),
            None,
        );
    };
    let mut message = db.message().to_owned();
    let mut at = None;
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        if let Some(detail) = pg.detail() {
            message.push_str(&format!(" ({detail})"));
        }
        if let Some(PgErrorPosition::Original(p)) = pg.position() {
            at = Some(byte_of_char_position(sent, p));
        }
    }
    if let Some(code) = db.code() {
        message.push_str(&format!(" [SQLSTATE {code}]"));
    }
    (message, at)
}

/// Apply one file and record it. The outer error is for the connection; the inner one is the
/// migration's own failure, already rolled back when it ran in a transaction.
pub(crate) async fn apply_one(
    conn: &mut Conn,
    table: &TableName,
    file: &MigrationFile,
    applied_by: &str,
) -> Result<std::result::Result<(), Failure>> {
    let t = table.quoted();
    if file.no_transaction {
        return apply_statement_by_statement(conn, &t, file, applied_by).await;
    }
    match conn {
        Conn::Postgres(c) => {
            let prefix = "BEGIN;\n";
            let sent = format!(
                "{prefix}{sql}\n;\nINSERT INTO {t} (version, name, checksum, duration_ms, applied_by, no_transaction) VALUES \
                 ({v}, {name}, {sum}, (extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::bigint, {by}, false);\nCOMMIT;",
                sql = file.sql,
                v = file.version,
                name = sql_literal(&file.name),
                sum = sql_literal(&file.checksum),
                by = sql_literal(applied_by),
            );
            let mut completed = 0usize;
            let mut error = None;
            {
                let mut results = raw_sql(AssertSqlSafe(sent.clone())).execute_many(&mut *c);
                while let Some(r) = results.next().await {
                    match r {
                        Ok(_) => completed += 1,
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
            }
            let Some(e) = error else { return Ok(Ok(())) };
            let _ = raw_sql("ROLLBACK").execute(&mut *c).await;
            let (message, at) = describe(&e, &sent);
            let in_file = |b: usize| {
                (b >= prefix.len() && b < prefix.len() + file.sql.len()).then(|| b - prefix.len())
            };
            let count = split_statements(&file.sql).len();
            // `completed` counts BEGIN too; a syntax error stops the query before anything runs.
            let statement = match at.and_then(in_file) {
                Some(_) => None,
                None if completed >= 1 && completed - 1 < count => Some(completed - 1),
                None => None,
            };
            Ok(Err(Failure {
                statement,
                at_byte: at.and_then(in_file),
                message,
            }))
        }
        Conn::Sqlite { conn: c, .. } => {
            let sq = |e| {
                db_error(
                    DbKind::Sqlite,
                    "cannot start the migration's transaction",
                    e,
                )
            };
            raw_sql("BEGIN IMMEDIATE")
                .execute(&mut *c)
                .await
                .map_err(sq)?;
            let started = Instant::now();
            let mut completed = 0usize;
            let mut error = None;
            {
                let mut results = raw_sql(AssertSqlSafe(file.sql.clone())).execute_many(&mut *c);
                while let Some(r) = results.next().await {
                    match r {
                        Ok(_) => completed += 1,
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
            }
            let recorded = match error {
                Some(e) => Err((Some(completed), e)),
                None => {
                    let took = started.elapsed();
                    record!(&mut *c, SQLITE_PLACEHOLDERS, t, file, applied_by, took)
                        .map_err(|e| (None, e))
                }
            };
            match recorded {
                Ok(()) => {
                    raw_sql("COMMIT")
                        .execute(&mut *c)
                        .await
                        .map_err(|e| db_error(DbKind::Sqlite, "cannot commit", e))?;
                    Ok(Ok(()))
                }
                Err((statement, e)) => {
                    let _ = raw_sql("ROLLBACK").execute(&mut *c).await;
                    let (message, _) = describe(&e, &file.sql);
                    Ok(Err(Failure {
                        statement,
                        at_byte: None,
                        message,
                    }))
                }
            }
        }
    }
}

/// A `staging:no-transaction` file: each statement on its own, then the metadata row.
async fn apply_statement_by_statement(
    conn: &mut Conn,
    t: &str,
    file: &MigrationFile,
    applied_by: &str,
) -> Result<std::result::Result<(), Failure>> {
    let started = Instant::now();
    for (i, s) in split_statements(&file.sql).into_iter().enumerate() {
        let text = s.text(&file.sql).to_owned();
        let result = match conn {
            Conn::Postgres(c) => raw_sql(AssertSqlSafe(text.clone()))
                .execute(&mut *c)
                .await
                .map(|_| ()),
            Conn::Sqlite { conn: c, .. } => raw_sql(AssertSqlSafe(text.clone()))
                .execute(&mut *c)
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            let (message, at) = describe(&e, &text);
            return Ok(Err(Failure {
                statement: Some(i),
                at_byte: at.map(|b| s.start + b),
                message,
            }));
        }
    }
    let took = started.elapsed();
    let recorded = match conn {
        Conn::Postgres(c) => record!(&mut *c, PG_PLACEHOLDERS, t, file, applied_by, took),
        Conn::Sqlite { conn: c, .. } => {
            record!(&mut *c, SQLITE_PLACEHOLDERS, t, file, applied_by, took)
        }
    };
    Ok(recorded.map_err(|e| Failure {
        statement: None,
        at_byte: None,
        message: describe(&e, "").0,
    }))
}
