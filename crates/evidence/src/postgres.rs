//! The Postgres store: one row per run in a table the tool creates, for CI runners that
//! share no disk.
//!
//! The evidence is kept as the exact JSON text that was hashed (`TEXT`, not `JSONB`: JSONB
//! reorders keys and normalizes numbers, which would make every record look edited). The
//! other columns only serve filtering; the gate judges each record by its body.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use staging_core::pipeline::Evidence;
use staging_core::redact::mask_url_credentials;
use staging_core::{Error, Redactor, Result};
use staging_postgres::Client;
use tokio::sync::Mutex;

use crate::store::{
    EvidenceFilter, EvidenceStore, Listing, StoredEvidence, Unreadable, stored_text,
};

/// The table used when the spec names none.
pub const DEFAULT_TABLE: &str = "staging_evidence";

/// Evidence in a Postgres table.
///
/// One connection (through `staging-postgres`: libpq's `sslmode`, `TCP_NODELAY`), shared by
/// every clone; concurrent calls are pipelined on it. A connection that has closed (the
/// server restarted, say) is opened again on the next call.
#[derive(Clone)]
pub struct PgStore {
    conn: Arc<Connection>,
    /// A connection of the lease's own: taking a lease is a transaction, which must not
    /// share a connection with the evidence queries pipelined on `conn`.
    pub(crate) lease_conn: Arc<Mutex<Option<Client>>>,
    pub(crate) table: Table,
    redactor: Redactor,
}

/// The URL and the current connection.
struct Connection {
    url: SecretString,
    client: Mutex<Arc<Client>>,
    /// A call on the current client met a broken connection: replace it before the next
    /// call (the client may not report itself closed yet when the next call comes).
    stale: std::sync::atomic::AtomicBool,
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
pub(crate) struct Table {
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

    pub(crate) fn quoted(&self) -> String {
        self.sibling("")
    }

    /// The table `<name><suffix>` beside this one, in the same schema, quoted (a name of
    /// at most 50 characters leaves room for the longest suffix within Postgres' 63).
    pub(crate) fn sibling(&self, suffix: &str) -> String {
        match &self.schema {
            Some(s) => format!("\"{s}\".\"{}{suffix}\"", self.name),
            None => format!("\"{}{suffix}\"", self.name),
        }
    }

    pub(crate) fn display(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A database error as a kind, never with the URL.
pub(crate) fn pg_error(context: &str, e: &staging_postgres::QueryError) -> Error {
    Error::Provider {
        provider: "postgres evidence store".to_owned(),
        source: scrub(&format!("{context}: {}", staging_postgres::describe(e))).into(),
        retryable: staging_postgres::is_transient(e),
    }
}

/// A failed connect as this store's error, never with the URL.
pub(crate) fn connect_error(e: Error) -> Error {
    match e {
        Error::Provider {
            source, retryable, ..
        } => {
            let text = source.to_string();
            let text = text.strip_prefix("cannot connect: ").unwrap_or(&text);
            Error::Provider {
                provider: "postgres evidence store".to_owned(),
                source: scrub(&format!("cannot connect to the evidence database: {text}")).into(),
                retryable,
            }
        }
        Error::ConfigInvalid { message, .. } => {
            Error::config(scrub(&format!("the evidence database URL: {message}")))
        }
        other => other,
    }
}

/// `text` with every registered secret and every URL password masked.
fn scrub(text: &str) -> String {
    mask_url_credentials(&Redactor::global().redact(text)).into_owned()
}

impl PgStore {
    /// Connect to `url` and bring the store's tables (default [`DEFAULT_TABLE`], its
    /// leases and their log, in the schema the table names) to the schema this version
    /// knows, applying each missing migration of [`SCHEMA_MIGRATIONS`] once. Safe when
    /// several runners start at once: the migration is serialized by an advisory lock. A
    /// wrong URL or password fails here, at once; so does a store a newer version of
    /// staging migrated further.
    pub async fn connect(url: &SecretString, table: Option<&str>) -> Result<Self> {
        let table = Table::parse(table.unwrap_or(DEFAULT_TABLE))?;
        let client = staging_postgres::connect(url)
            .await
            .map_err(connect_error)?;
        // Before the connection is shared: the migration is one transaction on it.
        migrate_schema(&client, &table).await?;
        Ok(PgStore {
            conn: Arc::new(Connection {
                url: url.clone(),
                client: Mutex::new(Arc::new(client)),
                stale: std::sync::atomic::AtomicBool::new(false),
            }),
            lease_conn: Arc::new(Mutex::new(None)),
            table,
            redactor: Redactor::global().clone(),
        })
    }

    /// The lease's own connection, opened (again) when there is none or it closed.
    pub(crate) async fn lease_client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>> {
        let mut slot = self.lease_conn.lock().await;
        if slot.as_ref().is_none_or(|c| c.is_closed()) {
            let fresh = staging_postgres::connect(&self.conn.url)
                .await
                .map_err(connect_error)?;
            *slot = Some(fresh);
        }
        Ok(slot)
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

    /// The open connection, or a new one when it has closed.
    async fn client(&self) -> Result<Arc<Client>> {
        let mut held = self.conn.client.lock().await;
        let stale = self
            .conn
            .stale
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        if stale || held.is_closed() {
            let fresh = staging_postgres::connect(&self.conn.url)
                .await
                .map_err(connect_error)?;
            *held = Arc::new(fresh);
        }
        Ok(Arc::clone(&held))
    }

    /// `e` as this store's error; when it is about the connection, the next call connects
    /// again.
    fn failed(&self, context: &str, e: &staging_postgres::QueryError) -> Error {
        if e.is_closed() || staging_postgres::is_transient(e) {
            self.conn
                .stale
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        pg_error(context, e)
    }

    fn row(
        &self,
        row: &tokio_postgres::Row,
    ) -> Result<std::result::Result<StoredEvidence, Unreadable>> {
        let id: i64 = row
            .try_get("id")
            .map_err(|e| pg_error("bad row", &e.into()))?;
        let body: String = row
            .try_get("body")
            .map_err(|e| pg_error("bad row", &e.into()))?;
        Ok(match serde_json::from_str::<Evidence>(&body) {
            Ok(e) => Ok(StoredEvidence::new(id.to_string(), e)),
            Err(e) => Err(Unreadable {
                id: id.to_string(),
                reason: format!("not evidence JSON: {e}"),
            }),
        })
    }
}

/// The schema of the store, one migration per version, applied in order and recorded in
/// the table `<table>_schema` (version, description, when). Version 1 is the evidence
/// table as every earlier release created it (`IF NOT EXISTS`: a store created before
/// versions were recorded is taken as it is); version 2 adds the environment leases
/// (`<table>_leases`, one row per leased environment) and their log (`<table>_lease_log`:
/// who took, released, let expire or forced which lease, when, by the server's clock).
pub const SCHEMA_MIGRATIONS: &[(i32, &str)] = &[
    (1, "evidence table"),
    (2, "environment leases and their log"),
];

/// The SQL of migration `version` for `table`.
fn migration_sql(version: i32, table: &Table) -> String {
    let t = table.quoted();
    match version {
        1 => format!(
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
            );
            CREATE INDEX IF NOT EXISTS \"{name}_env_commit\" ON {t} (project, environment, commit_sha);",
            name = table.name
        ),
        2 => format!(
            "CREATE TABLE IF NOT EXISTS {leases} (
                project TEXT NOT NULL,
                environment TEXT NOT NULL,
                run_id TEXT NOT NULL,
                command TEXT NOT NULL,
                commit_sha TEXT,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                since TIMESTAMPTZ NOT NULL,
                expires_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (project, environment)
            );
            CREATE TABLE IF NOT EXISTS {log} (
                id BIGSERIAL PRIMARY KEY,
                project TEXT NOT NULL,
                environment TEXT NOT NULL,
                run_id TEXT NOT NULL,
                event TEXT NOT NULL,
                command TEXT NOT NULL,
                commit_sha TEXT,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                note TEXT,
                at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
            );
            CREATE INDEX IF NOT EXISTS \"{name}_lease_log_env\" ON {log} (project, environment, id);",
            leases = table.sibling(crate::pg_lease::LEASES),
            log = table.sibling(crate::pg_lease::LEASE_LOG),
            name = table.name
        ),
        _ => unreachable!("migration {version} is not in SCHEMA_MIGRATIONS"),
    }
}

/// Apply the migrations `table`'s store lacks (and create its schema), in one transaction on
/// `client`, which nothing else uses yet. On an error the caller drops the connection, and
/// the server rolls the transaction back.
async fn migrate_schema(client: &Client, table: &Table) -> Result<()> {
    let versions = table.sibling("_schema");
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| pg_error("cannot begin", &e))?;
    // `CREATE TABLE IF NOT EXISTS` run by two sessions at once can still fail on the
    // catalog's unique index; one lock per table name makes them take turns.
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("staging-evidence:{}", table.display())],
        )
        .await
        .map_err(|e| pg_error("cannot lock the evidence table for creation", &e))?;
    if let Some(schema) = &table.schema {
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .await
            .map_err(|e| pg_error("cannot create the evidence schema", &e))?;
    }
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {versions} (
                version INTEGER PRIMARY KEY,
                description TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )"
        ))
        .await
        .map_err(|e| pg_error("cannot create the evidence schema's version table", &e))?;
    let applied: i32 = client
        .query_one(
            &format!("SELECT COALESCE(max(version), 0) FROM {versions}"),
            &[],
        )
        .await
        .and_then(|row| row.try_get(0).map_err(staging_postgres::QueryError::from))
        .map_err(|e| pg_error("cannot read the evidence schema's version", &e))?;
    let known = SCHEMA_MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if applied > known {
        return Err(Error::config(format!(
            "the evidence store {} is at schema version {applied}, migrated by a newer staging (this one knows up to {known}): upgrade staging",
            table.display()
        )));
    }
    for (version, description) in SCHEMA_MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
        client
            .batch_execute(&migration_sql(*version, table))
            .await
            .map_err(|e| {
                pg_error(
                    &format!(
                        "cannot migrate the evidence store to version {version} ({description})"
                    ),
                    &e,
                )
            })?;
        client
            .execute(
                &format!("INSERT INTO {versions} (version, description) VALUES ($1, $2)"),
                &[version, description],
            )
            .await
            .map_err(|e| pg_error("cannot record the evidence schema's version", &e))?;
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| pg_error("cannot create the evidence table", &e))
}

#[async_trait]
impl EvidenceStore for PgStore {
    fn describe(&self) -> String {
        format!("postgres table {}", self.table.display())
    }

    fn leases(&self) -> &dyn crate::lease::LeaseStore {
        self
    }

    async fn record(&self, evidence: &Evidence) -> Result<String> {
        let body = stored_text(evidence, &self.redactor)?;
        let sql = format!(
            "INSERT INTO {} (project, environment, commit_sha, spec_hash, ok, recorded_at, content_hash, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            self.table.quoted()
        );
        let id: i64 = self
            .client()
            .await?
            .query_one(
                &sql,
                &[
                    &evidence.project,
                    &evidence.environment,
                    &evidence.commit,
                    &evidence.spec_hash,
                    &evidence.ok,
                    &evidence.recorded_at,
                    &evidence.content_hash,
                    &body,
                ],
            )
            .await
            .and_then(|row| row.try_get(0).map_err(staging_postgres::QueryError::from))
            .map_err(|e| self.failed("cannot record evidence", &e))?;
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
        let rows = self
            .client()
            .await?
            .query(
                &sql,
                &[&filter.project.as_deref(), &filter.environment.as_deref()],
            )
            .await
            .map_err(|e| self.failed("cannot list evidence", &e))?;
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
        let row = self
            .client()
            .await?
            .query_opt(&sql, &[&n])
            .await
            .map_err(|e| self.failed("cannot read evidence", &e))?
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
        let out = scrub("cannot connect to postgres://ci:hunter2@db:5432/ev: refused");
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("postgres://ci:"), "{out}");
        assert!(out.contains("@db:5432/ev"), "{out}");
    }

    #[test]
    fn connect_errors_name_the_evidence_database_and_keep_their_kind() {
        let e = connect_error(Error::Provider {
            provider: "postgres".to_owned(),
            source: "cannot connect: refused by postgres://ci:hunter2@db/ev".into(),
            retryable: true,
        });
        assert!(e.is_retryable());
        let text = e.to_string();
        assert!(
            text.starts_with(
                "postgres evidence store: cannot connect to the evidence database: refused by postgres://ci:"
            ),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        let e = connect_error(Error::config("sslmode `x` is not one of ..."));
        assert!(matches!(e, Error::ConfigInvalid { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("the evidence database URL: "),
            "{e}"
        );
    }
}
