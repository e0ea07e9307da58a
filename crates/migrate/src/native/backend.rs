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
use sqlx::{AssertSqlSafe, Row, raw_sql};
use staging_core::{Error, Result};
use staging_postgres::{ErrorPosition, QueryError, SimpleQueryMessage};

use super::{Failure, HistoryEntry};
use crate::db::{
    Conn, DbKind, TableName, db_error, is_undefined_table, pg_rows, pg_select, sql_literal,
};
use crate::files::MigrationFile;
use crate::split::{byte_of_char_position, split_statements};
use staging_postgres::error as pg_error;

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
            let pg = |e: QueryError| pg_error("cannot take the migration lock", &e);
            let schema = match &table.schema {
                Some(s) => s.clone(),
                None => pg_rows(
                    c.simple_query("SELECT current_schema()::text")
                        .await
                        .map_err(pg)?,
                )
                .first()
                .and_then(|r| r.get(0).map(str::to_owned))
                .unwrap_or_else(|| "public".to_owned()),
            };
            let key = advisory_key(&schema, &table.table);
            // Postgres 14+: notice a runner killed mid-migration within a second, abort its
            // transaction and free the lock, instead of finishing its query for nobody.
            let _ = c
                .batch_execute("SET client_connection_check_interval = 1000")
                .await;
            // Commit each migration without waiting for its WAL flush; `make_durable` flushes
            // once at the end of the run, before anything is reported as applied. A crash in
            // between loses whole migrations (file and metadata row together), never half.
            let ms = timeout.as_millis().clamp(1, i32::MAX as u128 - 1000);
            // The wait for the lock may outlast the session's statement bound: raise it
            // (just past `lock_timeout`, which says more) for this one statement, and let
            // the client wait as long.
            c.batch_execute(&format!(
                "SET synchronous_commit = off; SET lock_timeout = {ms}; SET statement_timeout = {}",
                ms + 1000
            ))
            .await
            .map_err(pg)?;
            let locked = c
                .batch_execute_within(
                    &format!("SELECT pg_advisory_lock({key})"),
                    timeout + Duration::from_secs(1),
                )
                .await;
            let _ = c
                .batch_execute("RESET lock_timeout; RESET statement_timeout")
                .await;
            match locked {
                Ok(()) => Ok(Lock::Postgres(key)),
                Err(e) if staging_postgres::code(&e) == Some("55P03") => Err(Error::Timeout {
                    what: what.to_owned(),
                    after: timeout,
                }),
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
            let _ = c
                .batch_execute(&format!("SELECT pg_advisory_unlock({key})"))
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
        c.batch_execute(&sql)
            .await
            .map_err(|e| pg_error("cannot flush the applied migrations to disk", &e))?;
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
            c.batch_execute(&sql)
                .await
                .map_err(|e| pg_error("cannot create the metadata table", &e))?;
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
    match conn {
        Conn::Postgres(c) => {
            let Some(rows) = pg_select(c, &sql, "cannot read the metadata table").await? else {
                return Ok(vec![]);
            };
            rows.iter()
                .map(|r| {
                    let text = |i: usize| r.get(i).map(str::to_owned);
                    let row = || {
                        Some(AppliedRow {
                            version: text(0)?.parse().ok()?,
                            name: text(1)?,
                            checksum: text(2)?,
                        })
                    };
                    row().ok_or_else(unexpected_layout)
                })
                .collect()
        }
        Conn::Sqlite { conn: c, .. } => {
            match sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *c).await {
                Err(e) if is_undefined_table(&e) => Ok(vec![]),
                Err(e) => Err(db_error(
                    DbKind::Sqlite,
                    "cannot read the metadata table",
                    e,
                )),
                Ok(rows) => rows
                    .iter()
                    .map(|r| {
                        Ok(AppliedRow {
                            version: r.try_get(0)?,
                            name: r.try_get(1)?,
                            checksum: r.try_get(2)?,
                        })
                    })
                    .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
                    .map_err(|e| db_error(DbKind::Sqlite, "unexpected metadata table layout", e)),
            }
        }
    }
}

fn unexpected_layout() -> Error {
    Error::failed("unexpected metadata table layout: a row with an empty or non-numeric column")
}

/// Every row of the metadata table.
pub(crate) async fn read_history(conn: &mut Conn, table: &TableName) -> Result<Vec<HistoryEntry>> {
    let t = table.quoted();
    match conn {
        Conn::Postgres(c) => {
            let sql = format!(
                "SELECT version, name, checksum, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), duration_ms, applied_by FROM {t} ORDER BY version"
            );
            let Some(rows) = pg_select(c, &sql, "cannot read the metadata table").await? else {
                return Ok(vec![]);
            };
            rows.iter()
                .map(|r| {
                    let text = |i: usize| r.get(i).map(str::to_owned);
                    let entry = || {
                        Some(HistoryEntry {
                            version: text(0)?,
                            name: text(1)?,
                            checksum: text(2)?,
                            applied_at: text(3)?,
                            duration_ms: text(4)?.parse().ok()?,
                            applied_by: text(5)?,
                        })
                    };
                    entry().ok_or_else(unexpected_layout)
                })
                .collect()
        }
        Conn::Sqlite { conn: c, .. } => {
            let sql = format!(
                "SELECT version, name, checksum, applied_at, duration_ms, applied_by FROM {t} ORDER BY version"
            );
            match sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *c).await {
                Err(e) if is_undefined_table(&e) => Ok(vec![]),
                Err(e) => Err(db_error(
                    DbKind::Sqlite,
                    "cannot read the metadata table",
                    e,
                )),
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
                    .map_err(|e| db_error(DbKind::Sqlite, "unexpected metadata table layout", e)),
            }
        }
    }
}

/// Insert the metadata row of `file` through `$executor` (a `&mut SqliteConnection`).
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

const SQLITE_PLACEHOLDERS: &str = "?, ?, ?, ?, ?, ?";

/// SQLite's words for an error.
fn describe(e: &sqlx::Error) -> String {
    let Some(db) = e.as_database_error() else {
        return staging_core::redact::mask_url_credentials(&e.to_string()).into_owned();
    };
    let mut message = db.message().to_owned();
    if let Some(code) = db.code() {
        message.push_str(&format!(" [SQLSTATE {code}]"));
    }
    message
}

/// Postgres's words for an error, and the byte in `sent` it points at, if it does.
fn describe_pg(e: &QueryError, sent: &str) -> (String, Option<usize>) {
    let at = match e.as_db_error().and_then(|db| db.position()) {
        Some(ErrorPosition::Original(p)) => Some(byte_of_char_position(sent, *p as usize)),
        _ => None,
    };
    (staging_postgres::describe(e), at)
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
            let (answered, error) = c.simple_query_partial(&sent).await;
            let completed = answered
                .iter()
                .filter(|m| matches!(m, SimpleQueryMessage::CommandComplete(_)))
                .count();
            let Some(e) = error else { return Ok(Ok(())) };
            if staging_postgres::is_transient(&e) {
                return Err(pg_error(
                    "the connection failed while applying a migration",
                    &e,
                ));
            }
            let _ = c.batch_execute("ROLLBACK").await;
            let (message, at) = describe_pg(&e, &sent);
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
                    let message = describe(&e);
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
        let text = s.text(&file.sql);
        let (message, at) = match conn {
            Conn::Postgres(c) => match c.batch_execute(text).await {
                Ok(()) => continue,
                Err(e) if staging_postgres::is_transient(&e) => {
                    return Err(pg_error(
                        "the connection failed while applying a migration",
                        &e,
                    ));
                }
                Err(e) => describe_pg(&e, text),
            },
            Conn::Sqlite { conn: c, .. } => {
                match raw_sql(AssertSqlSafe(text.to_owned()))
                    .execute(&mut *c)
                    .await
                {
                    Ok(_) => continue,
                    Err(e) => (describe(&e), None),
                }
            }
        };
        return Ok(Err(Failure {
            statement: Some(i),
            at_byte: at.map(|b| s.start + b),
            message,
        }));
    }
    let took = started.elapsed();
    let recorded = match conn {
        Conn::Postgres(c) => {
            let sql = format!(
                "INSERT INTO {t} (version, name, checksum, duration_ms, applied_by, no_transaction) VALUES ({v}, {name}, {sum}, {ms}, {by}, {nt})",
                v = file.version,
                name = sql_literal(&file.name),
                sum = sql_literal(&file.checksum),
                ms = took.as_millis() as i64,
                by = sql_literal(applied_by),
                nt = file.no_transaction,
            );
            c.batch_execute(&sql)
                .await
                .map_err(|e| staging_postgres::describe(&e))
        }
        Conn::Sqlite { conn: c, .. } => {
            record!(&mut *c, SQLITE_PLACEHOLDERS, t, file, applied_by, took)
                .map_err(|e| describe(&e))
        }
    };
    Ok(recorded.map_err(|message| Failure {
        statement: None,
        at_byte: None,
        message,
    }))
}
