//! The Postgres store: one row per run in a table the tool creates, for CI runners that
//! share no disk.
//!
//! The evidence is kept as the exact JSON text that was hashed (`TEXT`, not `JSONB`: JSONB
//! reorders keys and normalizes numbers, which would make every record look edited). The
//! other columns only serve filtering; the gate judges each record by its body.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, PgPool, Row};
use staging_core::pipeline::Evidence;
use staging_core::{Error, Redactor, Result};

use crate::store::{
    EvidenceFilter, EvidenceStore, Listing, StoredEvidence, Unreadable, stored_text,
};

/// The table used when the spec names none.
pub const DEFAULT_TABLE: &str = "staging_evidence";

/// Evidence in a Postgres table.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    table: Table,
    redactor: Redactor,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("table", &self.table.display())
            .finish_non_exhaustive()
    }
}

/// A validated `name` or `schema.name`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    schema: Option<String>,
    name: String,
}

impl Table {
    fn parse(s: &str) -> Result<Self> {
        let ident = |s: &str| {
            let mut chars = s.chars();
            s.len() <= 50
                && chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let (schema, name) = match s.split_once('.') {
            Some((a, b)) => (Some(a), b),
            None => (None, s),
        };
        if !ident(name) || schema.is_some_and(|a| !ident(a)) {
            return Err(Error::config(format!(
                "`{s}` is not an evidence table name: expected `name` or `schema.name` of letters, digits and `_`"
            )));
        }
        Ok(Table {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        })
    }

    fn quoted(&self) -> String {
        match &self.schema {
            Some(s) => format!("\"{s}\".\"{}\"", self.name),
            None => format!("\"{}\"", self.name),
        }
    }

    fn display(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A database error as a kind, never with the URL.
fn pg_error(context: &str, e: sqlx::Error) -> Error {
    let retryable = matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut
    );
    let text = Redactor::global()
        .redact(&format!("{context}: {e}"))
        .into_owned();
    Error::Provider {
        provider: "postgres evidence store".to_owned(),
        source: strip_url_credentials(&text).into(),
        retryable,
    }
}

/// `scheme://user:password@host` → `scheme://user:***@host`, wherever it appears.
fn strip_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

impl PgStore {
    /// Connect to `url` and create the table (default [`DEFAULT_TABLE`]) and its schema
    /// when they do not exist. Safe when several runners start at once: the creation is
    /// serialized by an advisory lock.
    pub async fn connect(url: &SecretString, table: Option<&str>) -> Result<Self> {
        let table = Table::parse(table.unwrap_or(DEFAULT_TABLE))?;
        let options = PgConnectOptions::from_str(url.expose_secret())
            .map_err(|e| pg_error("invalid evidence database URL", e))?
            .disable_statement_logging();
        // One direct connection first: a wrong URL or password fails at once, where the
        // pool would keep retrying until its acquire timeout.
        let probe = options
            .connect()
            .await
            .map_err(|e| pg_error("cannot connect to the evidence database", e))?;
        let _ = sqlx::Connection::close(probe).await;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(options);
        let store = PgStore {
            pool,
            table,
            redactor: Redactor::global().clone(),
        };
        store.create_table().await?;
        Ok(store)
    }

    /// The redactor every record passes through before it is written (default: the global
    /// one).
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// The table, as `name` or `schema.name`.
    pub fn table(&self) -> String {
        self.table.display()
    }

    async fn create_table(&self) -> Result<()> {
        let t = self.table.quoted();
        let index = format!("\"{}_env_commit\"", self.table.name);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| pg_error("cannot begin", e))?;
        // `CREATE TABLE IF NOT EXISTS` run by two sessions at once can still fail on the
        // catalog's unique index; one lock per table name makes them take turns.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("staging-evidence:{}", self.table.display()))
            .execute(&mut *tx)
            .await
            .map_err(|e| pg_error("cannot lock the evidence table for creation", e))?;
        if let Some(schema) = &self.table.schema {
            sqlx::query(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&mut *tx)
            .await
            .map_err(|e| pg_error("cannot create the evidence schema", e))?;
        }
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {t} (
                id BIGSERIAL PRIMARY KEY,
                project TEXT NOT NULL,
                environment TEXT NOT NULL,
                commit_sha TEXT NOT NULL,
                spec_hash TEXT NOT NULL,
                ok BOOLEAN NOT NULL,
                recorded_at TEXT NOT NULL,
                content_hash TEXT NOT NULL,
                body TEXT NOT NULL,
                inserted_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )"
        )))
        .execute(&mut *tx)
        .await
        .map_err(|e| pg_error("cannot create the evidence table", e))?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE INDEX IF NOT EXISTS {index} ON {t} (project, environment, commit_sha)"
        )))
        .execute(&mut *tx)
        .await
        .map_err(|e| pg_error("cannot index the evidence table", e))?;
        tx.commit()
            .await
            .map_err(|e| pg_error("cannot create the evidence table", e))
    }

    fn row(
        &self,
        row: &sqlx::postgres::PgRow,
    ) -> Result<std::result::Result<StoredEvidence, Unreadable>> {
        let id: i64 = row.try_get("id").map_err(|e| pg_error("bad row", e))?;
        let body: String = row.try_get("body").map_err(|e| pg_error("bad row", e))?;
        Ok(match serde_json::from_str::<Evidence>(&body) {
            Ok(e) => Ok(StoredEvidence::new(id.to_string(), e)),
            Err(e) => Err(Unreadable {
                id: id.to_string(),
                reason: format!("not evidence JSON: {e}"),
            }),
        })
    }
}

#[async_trait]
impl EvidenceStore for PgStore {
    fn describe(&self) -> String {
        format!("postgres table {}", self.table.display())
    }

    async fn record(&self, evidence: &Evidence) -> Result<String> {
        let body = stored_text(evidence, &self.redactor)?;
        let sql = format!(
            "INSERT INTO {} (project, environment, commit_sha, spec_hash, ok, recorded_at, content_hash, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            self.table.quoted()
        );
        let id: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(&evidence.project)
            .bind(&evidence.environment)
            .bind(&evidence.commit)
            .bind(&evidence.spec_hash)
            .bind(evidence.ok)
            .bind(&evidence.recorded_at)
            .bind(&evidence.content_hash)
            .bind(&body)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| pg_error("cannot record evidence", e))?;
        Ok(id.to_string())
    }

    async fn list(&self, filter: &EvidenceFilter) -> Result<Listing> {
        // Narrow by the columns, then judge every row by its body: a row whose columns were
        // edited to match is still only what its body says. Commits are matched in memory,
        // where a short id matches its full form either way round.
        let sql = format!(
            "SELECT id, body FROM {}
             WHERE ($1::text IS NULL OR project = $1)
               AND ($2::text IS NULL OR environment = $2)
             ORDER BY id DESC",
            self.table.quoted()
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(filter.project.as_deref())
            .bind(filter.environment.as_deref())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| pg_error("cannot list evidence", e))?;
        let mut listing = Listing::default();
        for row in &rows {
            match self.row(row)? {
                Ok(stored) if filter.matches(&stored.evidence) => listing.entries.push(stored),
                Ok(_) => {}
                Err(unreadable) => listing.unreadable.push(unreadable),
            }
        }
        listing.sort();
        Ok(listing)
    }

    async fn get(&self, id: &str) -> Result<StoredEvidence> {
        let n: i64 = id.trim().parse().map_err(|_| {
            Error::not_found(format!(
                "evidence `{id}` in {} (ids are numbers)",
                self.describe()
            ))
        })?;
        let sql = format!("SELECT id, body FROM {} WHERE id = $1", self.table.quoted());
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(n)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| pg_error("cannot read evidence", e))?
            .ok_or_else(|| Error::not_found(format!("evidence `{id}` in {}", self.describe())))?;
        self.row(&row)?.map_err(|u| {
            Error::failed(format!(
                "evidence {} in {} cannot be read: {}",
                u.id,
                self.describe(),
                u.reason
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_identifiers_only() {
        assert!(Table::parse("staging_evidence").is_ok());
        assert!(Table::parse("ops.evidence").is_ok());
        assert!(Table::parse("x; DROP TABLE y").is_err());
        assert!(Table::parse("\"quoted\"").is_err());
        assert!(Table::parse("a.b.c").is_err());
    }

    #[test]
    fn credentials_in_urls_are_masked() {
        let out =
            strip_url_credentials("cannot connect to postgres://ci:hunter2@db:5432/ev: refused");
        assert!(!out.contains("hunter2"));
        assert!(out.contains("postgres://ci:***@db:5432/ev"));
    }
}
