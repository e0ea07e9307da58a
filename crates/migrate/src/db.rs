//! Connecting to the target database from a secret URL, and mapping sqlx errors to kinds.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};
use staging_core::Error;
use staging_core::redact::mask_url_credentials;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// `sqlite:` (`sqlite://path/to.db`, `sqlite::memory:`).
    Sqlite,
}

impl DbKind {
    /// The kind of `url`, or a config error that names the scheme only (never the URL).
    pub fn of(url: &SecretString) -> staging_core::Result<Self> {
        let url = url.expose_secret();
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(DbKind::Postgres),
            "sqlite" => Ok(DbKind::Sqlite),
            "" => Err(Error::config(
                "the database URL has no scheme; expected postgres://… or sqlite:…",
            )),
            other => Err(Error::config(format!(
                "database URL scheme `{other}` is not supported by the native runner; expected postgres://… or sqlite:…"
            ))),
        }
    }

    /// `postgres` or `sqlite`.
    pub fn name(self) -> &'static str {
        match self {
            DbKind::Postgres => "postgres",
            DbKind::Sqlite => "sqlite",
        }
    }
}

/// An open connection to either kind of database.
#[derive(Debug)]
pub(crate) enum Conn {
    /// Postgres through `staging-postgres` (tokio-postgres: libpq's sslmode, TCP_NODELAY).
    Postgres(staging_postgres::Client),
    Sqlite {
        conn: SqliteConnection,
        /// The database file, for the lock file next to it; `None` in memory.
        file: Option<PathBuf>,
    },
}

/// Whether to create a SQLite file that does not exist (apply) or report it as empty (status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfMissing {
    Create,
    ReportAbsent,
}

/// Connect to `url`; `Ok(None)` when a SQLite file does not exist and `if_missing` says so.
pub(crate) async fn connect(
    url: &SecretString,
    if_missing: IfMissing,
    busy_timeout: Duration,
) -> staging_core::Result<Option<Conn>> {
    match DbKind::of(url)? {
        DbKind::Postgres => Ok(Some(Conn::Postgres(staging_postgres::connect(url).await?))),
        DbKind::Sqlite => {
            let options = SqliteConnectOptions::from_str(url.expose_secret())
                .map_err(|e| db_error(DbKind::Sqlite, "invalid database URL", e))?
                .busy_timeout(busy_timeout)
                .disable_statement_logging();
            let file_name = options.get_filename().to_path_buf();
            let in_memory = file_name.as_os_str().is_empty()
                || file_name.to_string_lossy().contains(":memory:");
            let file = (!in_memory).then_some(file_name);
            if let Some(f) = &file
                && if_missing == IfMissing::ReportAbsent
                && !f.exists()
            {
                return Ok(None);
            }
            if let Some(parent) = file.as_ref().and_then(|f| f.parent())
                && if_missing == IfMissing::Create
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
            }
            let options = options.create_if_missing(if_missing == IfMissing::Create);
            let conn = options
                .connect()
                .await
                .map_err(|e| db_error(DbKind::Sqlite, "cannot open", e))?;
            Ok(Some(Conn::Sqlite { conn, file }))
        }
    }
}

/// `url` with a relative SQLite path made relative to `base` (the spec's directory), so a
/// spec's `sqlite://.staging/app.db` means the same file wherever the CLI runs from.
pub fn resolve_sqlite_path(url: &SecretString, base: &Path) -> SecretString {
    let raw = url.expose_secret();
    let Some(rest) = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
    else {
        return url.clone();
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() || path.starts_with('/') || path.starts_with(':') {
        return url.clone();
    }
    let joined = base.join(path);
    let mut out = format!("sqlite://{}", joined.display());
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    SecretString::from(out)
}

/// The rows `sql` returns; `None` when the table it reads does not exist (yet).
pub(crate) async fn pg_select(
    c: &staging_postgres::Client,
    sql: &str,
    context: &str,
) -> staging_core::Result<Option<Vec<staging_postgres::SimpleQueryRow>>> {
    match c.simple_query(sql).await {
        Ok(messages) => Ok(Some(pg_rows(messages))),
        Err(e) if staging_postgres::code(&e) == Some("42P01") => Ok(None),
        Err(e) => Err(staging_postgres::error(context, &e)),
    }
}

/// The rows of a simple query's answer.
pub(crate) fn pg_rows(
    messages: Vec<staging_postgres::SimpleQueryMessage>,
) -> Vec<staging_postgres::SimpleQueryRow> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            staging_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// A sqlx error as a kind, its text stripped of URL credentials.
pub(crate) fn db_error(kind: DbKind, context: &str, e: sqlx::Error) -> Error {
    let retryable = matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut
    );
    let text = mask_url_credentials(&format!("{context}: {e}")).into_owned();
    Error::Provider {
        provider: kind.name().to_owned(),
        source: text.into(),
        retryable,
    }
}

/// A validated table name (`staging_migrations`, `ops.schema_migrations`), and its quoted form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableName {
    pub(crate) schema: Option<String>,
    pub(crate) table: String,
}

impl TableName {
    /// Accepts `name` or `schema.name`, each an SQL identifier without quotes.
    pub(crate) fn parse(name: &str) -> staging_core::Result<Self> {
        let ident = |s: &str| {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let (schema, table) = match name.split_once('.') {
            Some((s, t)) => (Some(s), t),
            None => (None, name),
        };
        if !ident(table) || schema.is_some_and(|s| !ident(s)) {
            return Err(Error::config(format!(
                "`{name}` is not a table name: expected `name` or `schema.name` of letters, digits and `_`"
            )));
        }
        Ok(TableName {
            schema: schema.map(str::to_owned),
            table: table.to_owned(),
        })
    }

    /// The quoted form for SQL (`"ops"."schema_migrations"`).
    pub(crate) fn quoted(&self) -> String {
        match &self.schema {
            Some(s) => format!("\"{s}\".\"{}\"", self.table),
            None => format!("\"{}\"", self.table),
        }
    }
}

/// `s` as an SQL string literal. Only used for values this crate produces (names that passed
/// [`crate::files::parse_file_name`], hex checksums, the host name), never for user input.
pub(crate) fn sql_literal(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    format!("'{}'", clean.replace('\'', "''"))
}

/// Whether a SQLite error says the table does not exist.
pub(crate) fn is_undefined_table(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.message().contains("no such table"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_kind_never_echoes_the_url() {
        let url = SecretString::from("mysql://u:canary-pass@h/db".to_owned());
        let e = DbKind::of(&url).unwrap_err().to_string();
        assert!(e.contains("mysql") && !e.contains("canary"), "{e}");
        assert_eq!(
            DbKind::of(&SecretString::from("postgresql://h/db".to_owned())).unwrap(),
            DbKind::Postgres
        );
        assert_eq!(
            DbKind::of(&SecretString::from("sqlite://a.db".to_owned())).unwrap(),
            DbKind::Sqlite
        );
    }

    #[test]
    fn relative_sqlite_paths_are_relative_to_the_spec() {
        let r = |u: &str| {
            resolve_sqlite_path(&SecretString::from(u.to_owned()), Path::new("/srv/app"))
                .expose_secret()
                .to_owned()
        };
        assert_eq!(
            r("sqlite://.staging/s.db"),
            "sqlite:///srv/app/.staging/s.db"
        );
        assert_eq!(
            r("sqlite:data.db?mode=rwc"),
            "sqlite:///srv/app/data.db?mode=rwc"
        );
        assert_eq!(r("sqlite:///abs.db"), "sqlite:///abs.db");
        assert_eq!(r("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(r("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn table_names_are_identifiers_only() {
        assert_eq!(
            TableName::parse("ops.Versions").unwrap().quoted(),
            "\"ops\".\"Versions\""
        );
        for bad in ["", "a b", "a;drop", "a.b.c", "\"x\"", "1abc"] {
            assert!(TableName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literals_double_quotes_and_drop_controls() {
        assert_eq!(sql_literal("o'hare\n"), "'o''hare'");
    }
}
