//! The Postgres store's lease: a row per leased environment in `<table>_leases`, changed
//! only inside a transaction that holds a transaction-scoped advisory lock on that
//! environment (`pg_advisory_xact_lock`, released by the commit, or by the server when the
//! connection dies), and every change of holder written to `<table>_lease_log` in the same
//! transaction. The log is what shows, after the fact, that exactly one run held an
//! environment at any time: its events alternate `acquired` and one of `released`,
//! `expired` (taken over after its time to live) or `forced` (`staging lock release
//! --force`), each naming the run.
//!
//! Expiry is judged by the server's clock (`clock_timestamp()`), never the runner's.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use staging_core::Result;
use staging_postgres::Client;

use crate::lease::{Attempt, LeaseHolder, LeaseRecord, LeaseStore, rfc3339};
use crate::postgres::{PgStore, pg_error};

/// The suffix of the lease table's name.
pub(crate) const LEASES: &str = "_leases";
/// The suffix of the lease log's name.
pub(crate) const LEASE_LOG: &str = "_lease_log";

const COLUMNS: &str = "project, environment, run_id, command, commit_sha, host, pid, since, \
                       expires_at, expires_at < clock_timestamp() AS stale";

fn record(row: &tokio_postgres::Row) -> Result<LeaseRecord> {
    let get = |e: tokio_postgres::Error| pg_error("bad lease row", &e.into());
    let since: SystemTime = row.try_get("since").map_err(get)?;
    let expires: SystemTime = row.try_get("expires_at").map_err(get)?;
    let pid: i32 = row.try_get("pid").map_err(get)?;
    Ok(LeaseRecord {
        holder: LeaseHolder {
            project: row.try_get("project").map_err(get)?,
            environment: row.try_get("environment").map_err(get)?,
            run_id: row.try_get("run_id").map_err(get)?,
            command: row.try_get("command").map_err(get)?,
            commit: row.try_get("commit_sha").map_err(get)?,
            host: row.try_get("host").map_err(get)?,
            pid: u32::try_from(pid).unwrap_or_default(),
        },
        since: rfc3339(since),
        expires_at: rfc3339(expires),
        stale: row.try_get("stale").map_err(get)?,
    })
}

impl PgStore {
    /// The advisory lock key of one environment's lease in this store.
    fn lease_key(&self, project: &str, environment: &str) -> String {
        format!(
            "staging-lease:{}:{project}/{environment}",
            self.table.display()
        )
    }

    /// Run `op` on the lease connection. The connection is out of its slot while `op` runs
    /// and goes back only when `op` succeeded: after an error, or when `op` is dropped half
    /// way (the run was stopped between `BEGIN` and `COMMIT`), it is closed, so the server
    /// rolls back whatever transaction it had open and the next call connects afresh.
    async fn on_lease_connection<T>(
        &self,
        op: impl AsyncFnOnce(&Client) -> Result<T>,
    ) -> Result<T> {
        let mut slot = self.lease_client().await?;
        let Some(client) = slot.take() else {
            unreachable!("lease_client opens a connection");
        };
        let out = op(&client).await;
        if out.is_ok() {
            *slot = Some(client);
        }
        out
    }

    /// `BEGIN` and the advisory lock of `holder`'s environment.
    async fn begin_locked(&self, c: &Client, project: &str, environment: &str) -> Result<()> {
        c.batch_execute("BEGIN")
            .await
            .map_err(|e| pg_error("cannot begin", &e))?;
        c.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&self.lease_key(project, environment)],
        )
        .await
        .map_err(|e| pg_error("cannot lock the lease", &e))?;
        Ok(())
    }

    async fn select_lease(
        &self,
        c: &Client,
        project: &str,
        environment: &str,
    ) -> Result<Option<LeaseRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} WHERE project = $1 AND environment = $2",
            self.table.sibling(LEASES)
        );
        c.query_opt(&sql, &[&project, &environment])
            .await
            .map_err(|e| pg_error("cannot read the lease", &e))?
            .as_ref()
            .map(record)
            .transpose()
    }

    /// Append `event` about `holder` to the lease log.
    async fn log(
        &self,
        c: &Client,
        holder: &LeaseHolder,
        event: &str,
        note: Option<&str>,
    ) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} (project, environment, run_id, event, command, commit_sha, host, pid, note)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            self.table.sibling(LEASE_LOG)
        );
        let pid = i32::try_from(holder.pid).unwrap_or(i32::MAX);
        c.execute(
            &sql,
            &[
                &holder.project,
                &holder.environment,
                &holder.run_id,
                &event,
                &holder.command,
                &holder.commit,
                &holder.host,
                &pid,
                &note,
            ],
        )
        .await
        .map_err(|e| pg_error("cannot write the lease log", &e))?;
        Ok(())
    }

    async fn commit(c: &Client) -> Result<()> {
        c.batch_execute("COMMIT")
            .await
            .map_err(|e| pg_error("cannot commit the lease", &e))
    }

    /// Write `holder`'s lease for `ttl` from now, keeping `since` when it holds it already.
    async fn upsert(&self, c: &Client, holder: &LeaseHolder, ttl: Duration) -> Result<LeaseRecord> {
        let sql = format!(
            "INSERT INTO {} AS l (project, environment, run_id, command, commit_sha, host, pid, since, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp(), clock_timestamp() + make_interval(secs => $8))
             ON CONFLICT (project, environment) DO UPDATE SET
                run_id = EXCLUDED.run_id, command = EXCLUDED.command, commit_sha = EXCLUDED.commit_sha,
                host = EXCLUDED.host, pid = EXCLUDED.pid, expires_at = EXCLUDED.expires_at,
                since = CASE WHEN l.run_id = EXCLUDED.run_id THEN l.since ELSE EXCLUDED.since END
             RETURNING {COLUMNS}",
            self.table.sibling(LEASES)
        );
        let pid = i32::try_from(holder.pid).unwrap_or(i32::MAX);
        let row = c
            .query_one(
                &sql,
                &[
                    &holder.project,
                    &holder.environment,
                    &holder.run_id,
                    &holder.command,
                    &holder.commit,
                    &holder.host,
                    &pid,
                    &ttl.as_secs_f64(),
                ],
            )
            .await
            .map_err(|e| pg_error("cannot write the lease", &e))?;
        record(&row)
    }
}

#[async_trait]
impl LeaseStore for PgStore {
    async fn try_acquire(&self, holder: &LeaseHolder, ttl: Duration) -> Result<Attempt> {
        self.on_lease_connection(async |c| {
            self.begin_locked(c, &holder.project, &holder.environment)
                .await?;
            match self
                .select_lease(c, &holder.project, &holder.environment)
                .await?
            {
                Some(r) if r.holder.run_id == holder.run_id => {}
                Some(r) if !r.stale => {
                    Self::commit(c).await?;
                    return Ok(Attempt::Held(r));
                }
                Some(r) => {
                    let note = format!("taken over by run {}", holder.run_id);
                    self.log(c, &r.holder, "expired", Some(&note)).await?;
                }
                None => {}
            }
            let record = self.upsert(c, holder, ttl).await?;
            self.log(c, holder, "acquired", None).await?;
            Self::commit(c).await?;
            Ok(Attempt::Taken(record))
        })
        .await
    }

    async fn renew(&self, holder: &LeaseHolder, ttl: Duration) -> Result<Option<LeaseRecord>> {
        // One statement: the row lock orders it after a takeover, whose new run id it then
        // no longer matches.
        let sql = format!(
            "UPDATE {} SET expires_at = clock_timestamp() + make_interval(secs => $4)
             WHERE project = $1 AND environment = $2 AND run_id = $3
             RETURNING {COLUMNS}",
            self.table.sibling(LEASES)
        );
        self.on_lease_connection(async |c| {
            c.query_opt(
                &sql,
                &[
                    &holder.project,
                    &holder.environment,
                    &holder.run_id,
                    &ttl.as_secs_f64(),
                ],
            )
            .await
            .map_err(|e| pg_error("cannot renew the lease", &e))?
            .as_ref()
            .map(record)
            .transpose()
        })
        .await
    }

    async fn release(&self, holder: &LeaseHolder) -> Result<bool> {
        let sql = format!(
            "DELETE FROM {} WHERE project = $1 AND environment = $2 AND run_id = $3",
            self.table.sibling(LEASES)
        );
        self.on_lease_connection(async |c| {
            self.begin_locked(c, &holder.project, &holder.environment)
                .await?;
            let n = c
                .execute(
                    &sql,
                    &[&holder.project, &holder.environment, &holder.run_id],
                )
                .await
                .map_err(|e| pg_error("cannot release the lease", &e))?;
            if n > 0 {
                self.log(c, holder, "released", None).await?;
            }
            Self::commit(c).await?;
            Ok(n > 0)
        })
        .await
    }

    async fn current(&self, project: &str, environment: &str) -> Result<Option<LeaseRecord>> {
        self.on_lease_connection(async |c| self.select_lease(c, project, environment).await)
            .await
    }

    async fn force_release(
        &self,
        project: &str,
        environment: &str,
        by: &str,
    ) -> Result<Option<LeaseRecord>> {
        let sql = format!(
            "DELETE FROM {} WHERE project = $1 AND environment = $2",
            self.table.sibling(LEASES)
        );
        self.on_lease_connection(async |c| {
            self.begin_locked(c, project, environment).await?;
            let found = self.select_lease(c, project, environment).await?;
            if let Some(r) = &found {
                c.execute(&sql, &[&project, &environment])
                    .await
                    .map_err(|e| pg_error("cannot release the lease", &e))?;
                self.log(
                    c,
                    &r.holder,
                    "forced",
                    Some(&format!("released by force by {by}")),
                )
                .await?;
            }
            Self::commit(c).await?;
            Ok(found)
        })
        .await
    }
}

/// One event of the lease log, for tests and audits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseEvent {
    /// Its position in the log.
    pub id: i64,
    /// The run it is about.
    pub run_id: String,
    /// `acquired`, `released`, `expired` or `forced`.
    pub event: String,
    /// The commit of that run, when it had one.
    pub commit: Option<String>,
    /// When (RFC 3339, the server's clock).
    pub at: String,
    /// Who forced it, who took an expired lease over.
    pub note: Option<String>,
}

impl PgStore {
    /// The lease log of `environment` of `project`, oldest first.
    pub async fn lease_log(&self, project: &str, environment: &str) -> Result<Vec<LeaseEvent>> {
        let sql = format!(
            "SELECT id, run_id, event, commit_sha, at, note FROM {}
             WHERE project = $1 AND environment = $2 ORDER BY id",
            self.table.sibling(LEASE_LOG)
        );
        self.on_lease_connection(async |c| {
            let rows = c
                .query(&sql, &[&project, &environment])
                .await
                .map_err(|e| pg_error("cannot read the lease log", &e))?;
            rows.iter()
                .map(|r| {
                    let get = |e: tokio_postgres::Error| pg_error("bad lease log row", &e.into());
                    let at: SystemTime = r.try_get("at").map_err(get)?;
                    Ok(LeaseEvent {
                        id: r.try_get("id").map_err(get)?,
                        run_id: r.try_get("run_id").map_err(get)?,
                        event: r.try_get("event").map_err(get)?,
                        commit: r.try_get("commit_sha").map_err(get)?,
                        at: rfc3339(at),
                        note: r.try_get("note").map_err(get)?,
                    })
                })
                .collect()
        })
        .await
    }
}
