//! The postgres probe: connect, run a query and compare its rows, and a write/read round trip
//! inside a transaction that is rolled back, so the probe leaves nothing behind.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use secrecy::SecretString;
use staging_core::pipeline::RunContext;
use staging_core::spec::PostgresCheck;
use staging_core::{Error, Probe, ProbeOutcome, Result};
use staging_postgres::SimpleQueryMessage;

use super::fmt_duration;

/// A Postgres check. The URL is a secret until the connection is opened.
#[derive(Debug)]
pub struct PostgresProbe {
    name: String,
    url: SecretString,
    query: Option<String>,
    expect_rows: Option<Vec<Vec<String>>>,
    round_trip: bool,
    /// Bound on connecting and on each statement (the URL's `connect_timeout` wins).
    bound: std::time::Duration,
}

impl PostgresProbe {
    /// A probe connecting to `url`.
    pub fn new(name: impl Into<String>, url: SecretString) -> Self {
        PostgresProbe {
            name: name.into(),
            url,
            query: None,
            expect_rows: None,
            round_trip: true,
            bound: staging_core::limits::DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Run `query`; when `expect_rows` is given, its rows (as text, `NULL` for null) must
    /// equal them.
    pub fn with_query(
        mut self,
        query: impl Into<String>,
        expect_rows: Option<Vec<Vec<String>>>,
    ) -> Self {
        self.query = Some(query.into());
        self.expect_rows = expect_rows;
        self
    }

    /// Bound connecting (socket, TLS, startup, authentication) and each statement by
    /// `bound` (default 10 s; a `connect_timeout` in the URL wins for connecting): a silent
    /// server fails naming its host and the phase.
    pub fn with_bound(mut self, bound: std::time::Duration) -> Self {
        self.bound = bound;
        self
    }

    /// Whether to do the rolled-back write/read round trip (default true).
    pub fn with_round_trip(mut self, on: bool) -> Self {
        self.round_trip = on;
        self
    }

    /// A probe from its spec table; the URL is read from `ctx.vars[url_var]`.
    pub fn from_spec(name: &str, check: &PostgresCheck, ctx: &RunContext) -> Result<Self> {
        let url = super::url_from_var(name, &check.url_var, ctx)?;
        let mut probe = Self::new(name, url).with_round_trip(check.round_trip);
        if let Some(q) = &check.query {
            probe = probe.with_query(ctx.render(q)?, check.expect_rows.clone());
        } else if check.expect_rows.is_some() {
            return Err(Error::config(format!(
                "probe `{name}`: `expect_rows` needs a `query`"
            )));
        }
        Ok(probe)
    }

    async fn rows(
        &self,
        client: &staging_postgres::Client,
        query: &str,
    ) -> std::result::Result<Vec<Vec<String>>, String> {
        // The simple protocol returns every value as text, whatever its type.
        let messages = client
            .simple_query(query)
            .await
            .map_err(|e| staging_postgres::describe(&e))?;
        Ok(messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).unwrap_or("NULL").to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    async fn round_trip(
        &self,
        client: &staging_postgres::Client,
    ) -> std::result::Result<(), String> {
        use staging_postgres::describe;
        let token = unique_token();
        // On an error the connection is dropped (and the server rolls the transaction back).
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| describe(&e))?;
        client
            .batch_execute(
                "CREATE TEMPORARY TABLE staging_smoke_round_trip (token text NOT NULL) ON COMMIT DROP",
            )
            .await
            .map_err(|e| format!("create a temporary table: {}", describe(&e)))?;
        client
            .execute(
                "INSERT INTO staging_smoke_round_trip (token) VALUES ($1)",
                &[&token],
            )
            .await
            .map_err(|e| format!("insert: {}", describe(&e)))?;
        let read: String = client
            .query_one("SELECT token FROM staging_smoke_round_trip", &[])
            .await
            .and_then(|row| row.try_get(0).map_err(staging_postgres::QueryError::from))
            .map_err(|e| format!("read back: {}", describe(&e)))?;
        client
            .batch_execute("ROLLBACK")
            .await
            .map_err(|e| format!("rollback: {}", describe(&e)))?;
        if read != token {
            return Err(format!("read back {read:?}, wrote {token:?}"));
        }
        Ok(())
    }
}

/// Why connecting failed, without the `postgres: cannot connect:` prefix the caller's
/// `connect failed:` already says; never the URL or its password.
fn connect_failure(e: &Error) -> String {
    match e {
        Error::Provider { source, .. } => {
            let text = source.to_string();
            match text.strip_prefix("cannot connect: ") {
                Some(rest) => rest.to_owned(),
                None => text,
            }
        }
        other => other.to_string(),
    }
}

pub(crate) fn unique_token() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("staging-smoke-{}-{nanos:x}", std::process::id())
}

fn show_rows(rows: &[Vec<String>]) -> String {
    let shown: Vec<String> = rows.iter().map(|r| format!("({})", r.join(", "))).collect();
    format!("[{}]", shown.join(", "))
}

#[async_trait]
impl Probe for PostgresProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "postgres"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let mut held = vec!["a connection".to_owned()];
        let limits = staging_postgres::Limits::all(self.bound);
        let client = match staging_postgres::connect_with(&self.url, limits).await {
            Ok(c) => c,
            Err(e) => {
                return Ok(ProbeOutcome::fail(
                    "a connection",
                    format!("connect failed: {}", connect_failure(&e)),
                    started.elapsed(),
                ));
            }
        };
        let mut evidence = vec![];
        if let Some(query) = &self.query {
            match self.rows(&client, query).await {
                Err(e) => {
                    let expected = format!("query `{query}` to succeed");
                    return Ok(ProbeOutcome::fail(
                        expected,
                        format!("query failed: {e}"),
                        started.elapsed(),
                    ));
                }
                Ok(rows) => {
                    evidence.push(("rows".to_owned(), show_rows(&rows)));
                    if let Some(want) = &self.expect_rows {
                        let expected = format!("query `{query}` returns {}", show_rows(want));
                        if &rows != want {
                            return Ok(ProbeOutcome::fail(
                                expected,
                                format!("it returned {}", show_rows(&rows)),
                                started.elapsed(),
                            ));
                        }
                        held.push(expected);
                    } else {
                        held.push(format!("query `{query}` succeeds"));
                    }
                }
            }
        }
        if self.round_trip {
            let expected = "a write/read round trip in a rolled-back transaction";
            if let Err(e) = self.round_trip(&client).await {
                return Ok(ProbeOutcome::fail(expected, e, started.elapsed()));
            }
            held.push(expected.to_owned());
        }
        // Dropping the client ends the session (the driver sends Terminate).
        drop(client);
        let took = started.elapsed();
        let mut out = ProbeOutcome::pass(
            held.join(", "),
            format!("all held in {}", fmt_duration(took)),
            took,
        );
        out.evidence = evidence;
        Ok(out)
    }
}
