//! The postgres probe: connect, run a query and compare its rows, and a write/read round trip
//! inside a transaction that is rolled back, so the probe leaves nothing behind.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use staging_core::pipeline::RunContext;
use staging_core::spec::PostgresCheck;
use staging_core::{Error, Probe, ProbeOutcome, Result};

use super::{error_chain, fmt_duration};

/// A Postgres check. The URL is a secret until the connection is opened.
#[derive(Debug)]
pub struct PostgresProbe {
    name: String,
    url: SecretString,
    query: Option<String>,
    expect_rows: Option<Vec<Vec<String>>>,
    round_trip: bool,
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

    /// Whether to do the rolled-back write/read round trip (default true).
    pub fn with_round_trip(mut self, on: bool) -> Self {
        self.round_trip = on;
        self
    }

    /// A probe from its spec table; the URL is read from `ctx.vars[url_var]`.
    pub fn from_spec(name: &str, check: &PostgresCheck, ctx: &RunContext) -> Result<Self> {
        let url = ctx.vars.get(&check.url_var).cloned().ok_or_else(|| {
            Error::config(format!(
                "probe `{name}`: `{}` has no value in environment {} (is the secrets step run before the smoke step?)",
                check.url_var, ctx.environment
            ))
        })?;
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
        conn: &mut PgConnection,
        query: &str,
    ) -> std::result::Result<Vec<Vec<String>>, String> {
        // The simple protocol returns every value as text, whatever its type.
        let rows = sqlx::raw_sql(AssertSqlSafe(query.to_owned()))
            .fetch_all(conn)
            .await
            .map_err(|e| error_chain(&e))?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        row.try_get_unchecked::<Option<String>, _>(i)
                            .map(|v| v.unwrap_or_else(|| "NULL".to_owned()))
                            .map_err(|e| error_chain(&e))
                    })
                    .collect()
            })
            .collect()
    }

    async fn round_trip(&self, conn: &mut PgConnection) -> std::result::Result<(), String> {
        let token = unique_token();
        let mut tx = conn.begin().await.map_err(|e| error_chain(&e))?;
        sqlx::raw_sql(
            "CREATE TEMPORARY TABLE staging_smoke_round_trip (token text NOT NULL) ON COMMIT DROP",
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| format!("create a temporary table: {}", error_chain(&e)))?;
        sqlx::query("INSERT INTO staging_smoke_round_trip (token) VALUES ($1)")
            .bind(&token)
            .execute(&mut *tx)
            .await
            .map_err(|e| format!("insert: {}", error_chain(&e)))?;
        let read: String = sqlx::query_scalar("SELECT token FROM staging_smoke_round_trip")
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| format!("read back: {}", error_chain(&e)))?;
        tx.rollback()
            .await
            .map_err(|e| format!("rollback: {}", error_chain(&e)))?;
        if read != token {
            return Err(format!("read back {read:?}, wrote {token:?}"));
        }
        Ok(())
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
        let mut conn = match PgConnection::connect(self.url.expose_secret()).await {
            Ok(c) => c,
            Err(e) => {
                return Ok(ProbeOutcome::fail(
                    "a connection",
                    format!("connect failed: {}", error_chain(&e)),
                    started.elapsed(),
                ));
            }
        };
        let mut evidence = vec![];
        if let Some(query) = &self.query {
            match self.rows(&mut conn, query).await {
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
            if let Err(e) = self.round_trip(&mut conn).await {
                return Ok(ProbeOutcome::fail(expected, e, started.elapsed()));
            }
            held.push(expected.to_owned());
        }
        let _ = conn.close().await;
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
