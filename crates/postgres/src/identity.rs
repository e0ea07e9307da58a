//! What a Postgres server says a database is ([`staging_core::database_target`]): read on a
//! connection, never from the URL's text.

use secrecy::SecretString;
use staging_core::async_trait;
use staging_core::database_target::{DatabaseIdentity, IdentifyDatabase, PostgresIdentity};
use staging_core::{Error, Result};

use crate::{Client, SimpleQueryMessage, code, connect, error};

/// The parts every role may read: when the server started, its port, the database's oid and
/// name, and the address this connection reached (`NULL` over a socket).
const IDENTITY_SQL: &str = "SELECT to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || ' UTC', \
     current_setting('port'), \
     (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())::text, \
     current_database(), \
     host(inet_server_addr())";

/// The cluster's id: readable unless the role is not permitted (`42501`) or the server has no
/// such function (`42883`, a Postgres-compatible server).
const SYSTEM_IDENTIFIER_SQL: &str = "SELECT system_identifier::text FROM pg_control_system()";

/// The identity of the database `client` is connected to. Fails when a part every role may
/// read cannot be read; the `system_identifier` is `None` when the role may not read it.
pub async fn identity_of(client: &Client) -> Result<PostgresIdentity> {
    let rows = client
        .simple_query(IDENTITY_SQL)
        .await
        .map_err(|e| error("reading what the database is", &e))?;
    let row = rows
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .ok_or_else(|| Error::failed("the server answered no row for what the database is"))?;
    let part = |i: usize, what: &str| -> Result<String> {
        row.get(i).map(str::to_owned).ok_or_else(|| {
            Error::failed(format!(
                "the server did not say {what}, so the database cannot be identified"
            ))
        })
    };
    let started = part(0, "when it started (pg_postmaster_start_time())")?;
    let port = part(1, "its port")?;
    let database_oid = part(2, "the database's oid")?
        .parse()
        .map_err(|_| Error::failed("the server's database oid is not a number"))?;
    let database = part(3, "the database's name")?;
    let reached_at = row.get(4).map(str::to_owned);
    let system_identifier = match client.simple_query(SYSTEM_IDENTIFIER_SQL).await {
        Ok(rows) => rows.into_iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        }),
        Err(e) if matches!(code(&e), Some("42501" | "42883")) => None,
        Err(e) => return Err(error("reading the cluster's system identifier", &e)),
    };
    Ok(PostgresIdentity {
        system_identifier,
        started,
        port,
        database_oid,
        database,
        reached_at,
    })
}

/// Whether a connect error is the server saying the database does not exist (`3D000`).
/// The text is this crate's own ([`crate::describe`] ends server errors with the SQLSTATE).
fn is_missing_database(e: &Error) -> bool {
    e.to_string().contains("[SQLSTATE 3D000]")
}

/// Connect to `url` and read what the database is: `Ok(None)` when the server says the
/// database does not exist. Bounded like every connection ([`connect`]).
pub async fn identify(url: &SecretString) -> Result<Option<PostgresIdentity>> {
    let client = match connect(url).await {
        Ok(c) => c,
        Err(e) if is_missing_database(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    identity_of(&client).await.map(Some)
}

/// [`IdentifyDatabase`] for Postgres URLs; any other scheme is [`Error::NotSupported`]
/// (SQLite is identified by core itself).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerIdentity;

#[async_trait]
impl IdentifyDatabase for ServerIdentity {
    async fn identify(&self, url: &SecretString) -> Result<Option<DatabaseIdentity>> {
        use secrecy::ExposeSecret;
        let raw = url.expose_secret();
        let scheme = raw
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default();
        if !matches!(scheme.as_str(), "postgres" | "postgresql") {
            return Err(Error::not_supported(
                if scheme.is_empty() {
                    "this database URL".to_owned()
                } else {
                    format!("a `{scheme}` database")
                },
                "identification by what its server says (only Postgres and SQLite can be identified)",
            ));
        }
        Ok(identify(url).await?.map(DatabaseIdentity::Postgres))
    }
}
