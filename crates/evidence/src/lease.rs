//! The environment lease: one run at a time changes an environment.
//!
//! Two CI pipelines started seconds apart would otherwise both write variables and start
//! deploys on one environment, and each would record evidence of probes that may have run
//! against the other's commit. Every command that changes an environment (`up`, `promote`,
//! `rollback`, `refresh`, `migrate apply`, `secrets sync --apply`, `secrets rotate`) takes
//! the environment's lease first; read-only commands never do.
//!
//! The lease is kept where the evidence is, so that every runner that shares the evidence
//! shares the lease too: a lock file in the directory store ([`crate::DirStore`], one
//! machine), a row in the Postgres store ([`crate::PgStore`], any number of runners). It is
//! a value the run holds ([`Lease`]): renewed in the background while the run lasts,
//! released by [`Lease::release`] (and, as a last resort, when dropped). A holder that
//! crashed stops renewing, and its lease expires after its time to live; on the directory
//! store a holder on the same host whose process is gone is stale at once.
//!
//! Time is the store's: the Postgres store judges expiry by the server's clock, so runners
//! with skewed clocks agree.

use std::fmt::Debug;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use staging_core::{Error, Result};
use tokio::sync::watch;

use crate::store::DynEvidenceStore;

/// Who takes a lease: which environment, for which run of which command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// The project (a shared Postgres store holds several).
    pub project: String,
    /// The environment leased.
    pub environment: String,
    /// The run's id, unique per invocation ([`new_run_id`]).
    pub run_id: String,
    /// The command (`up`, `promote`, `migrate apply`).
    pub command: String,
    /// The commit the run deploys, when it deploys one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The host it runs on ([`this_host`]).
    pub host: String,
    /// Its process id on that host.
    pub pid: u32,
}

impl LeaseHolder {
    /// A holder for this process: a fresh run id, this host, this pid.
    pub fn this_process(
        project: impl Into<String>,
        environment: impl Into<String>,
        command: impl Into<String>,
        commit: Option<String>,
    ) -> Self {
        LeaseHolder {
            project: project.into(),
            environment: environment.into(),
            run_id: new_run_id(),
            command: command.into(),
            commit,
            host: this_host(),
            pid: std::process::id(),
        }
    }
}

/// A lease as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// Who holds it.
    #[serde(flatten)]
    pub holder: LeaseHolder,
    /// Since when (RFC 3339).
    pub since: String,
    /// Until when, unless renewed (RFC 3339).
    pub expires_at: String,
    /// Whether the store found it stale when it was read: expired, or (directory store) its
    /// process on this host is gone. A stale lease is taken over by the next run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

impl LeaseRecord {
    /// The holder in one phrase, for messages: `run 1f2e… (up of commit abc123456789) on
    /// host ci-7 (pid 4242) since 2026-…`.
    pub fn describe(&self) -> String {
        let h = &self.holder;
        let commit = h
            .commit
            .as_deref()
            .map(|c| format!(" of commit {}", &c[..c.len().min(12)]))
            .unwrap_or_default();
        format!(
            "run {} (`{}`{commit}) on host {} (pid {}) since {}",
            h.run_id, h.command, h.host, h.pid, self.since
        )
    }
}

/// What an attempt to take a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The lease is ours now (or still: the same run asked again).
    Taken(LeaseRecord),
    /// Another run holds it.
    Held(LeaseRecord),
}

/// Where leases are kept: each evidence store is one ([`crate::EvidenceStore::leases`]).
///
/// Every method is one bounded exchange with the store; none waits for another run.
#[async_trait]
pub trait LeaseStore: Debug + Send + Sync {
    /// Take the lease of `holder.environment` for `ttl`, unless another run holds it and it
    /// is not stale. Taking over a stale lease is recorded.
    async fn try_acquire(&self, holder: &LeaseHolder, ttl: Duration) -> Result<Attempt>;

    /// Extend the lease `holder` holds by `ttl` from now; `None` when it is no longer
    /// `holder`'s (released by force, or expired and taken by another run).
    async fn renew(&self, holder: &LeaseHolder, ttl: Duration) -> Result<Option<LeaseRecord>>;

    /// Release the lease `holder` holds; `false` when it was not `holder`'s any more.
    async fn release(&self, holder: &LeaseHolder) -> Result<bool>;

    /// The lease of `environment` of `project`, if any (stale ones included, marked).
    async fn current(&self, project: &str, environment: &str) -> Result<Option<LeaseRecord>>;

    /// Remove the lease of `environment` of `project` whoever holds it (`staging lock release
    /// --force`, by `by`); returns what was removed.
    async fn force_release(
        &self,
        project: &str,
        environment: &str,
        by: &str,
    ) -> Result<Option<LeaseRecord>>;
}

/// How a lease is taken and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseOptions {
    /// How long the lease lasts unless renewed; renewed every third of it.
    pub ttl: Duration,
    /// How long to wait for another run's lease (`--wait-lock`); zero: fail at once.
    pub wait: Duration,
    /// How often to try again while waiting.
    pub poll: Duration,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions {
            ttl: DEFAULT_TTL,
            wait: Duration::ZERO,
            poll: Duration::from_secs(1),
        }
    }
}

/// The time to live of a lease unless configured: a crashed holder blocks the environment
/// at most this long.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// The lease a run holds; see the module docs. Release it with [`Lease::release`] once the
/// run (and every process it started) has stopped; dropping it releases it as well, as a
/// last resort, when a runtime is there to do it.
#[derive(Debug)]
pub struct Lease {
    store: DynEvidenceStore,
    holder: LeaseHolder,
    record: LeaseRecord,
    renewer: Option<tokio::task::JoinHandle<()>>,
    lost: watch::Receiver<Option<String>>,
    released: bool,
}

/// Take the lease for `holder` in `store`: at once when free (or stale), else waiting up to
/// `options.wait`, calling `on_wait` with the holder each time another run is found holding
/// it (the first time, and whenever the holder changes). When the wait is over, an
/// [`Error::Locked`] (exit 3) naming the holder.
pub async fn acquire(
    store: DynEvidenceStore,
    holder: LeaseHolder,
    options: LeaseOptions,
    mut on_wait: impl FnMut(&LeaseRecord) + Send,
) -> Result<Lease> {
    let started = tokio::time::Instant::now();
    let mut last_seen: Option<String> = None;
    loop {
        match store.leases().try_acquire(&holder, options.ttl).await? {
            Attempt::Taken(record) => {
                tracing::info!(
                    "took the lease of `{}` in {} ({})",
                    holder.environment,
                    store.describe(),
                    record.describe()
                );
                return Ok(Lease::start(store, holder, record, options.ttl));
            }
            Attempt::Held(other) => {
                let waited = started.elapsed();
                if waited >= options.wait {
                    return Err(busy(&holder, &other, &store.describe(), options.wait));
                }
                if last_seen.as_deref() != Some(other.holder.run_id.as_str()) {
                    last_seen = Some(other.holder.run_id.clone());
                    on_wait(&other);
                }
                let left = options.wait - waited;
                tokio::time::sleep(options.poll.min(left)).await;
            }
        }
    }
}

/// The error of a lease held by `other`.
fn busy(holder: &LeaseHolder, other: &LeaseRecord, store: &str, waited: Duration) -> Error {
    let how = if waited.is_zero() {
        "pass --wait-lock DUR to wait for it".to_owned()
    } else {
        format!(
            "waited {} (--wait-lock) for it",
            humantime::format_duration(waited)
        )
    };
    Error::Locked {
        message: format!(
            "environment `{}` is busy: {} holds its lease (in {store}, until {} unless renewed); {how}, or see `staging lock status`",
            holder.environment,
            other.describe(),
            other.expires_at
        ),
    }
}

impl Lease {
    fn start(
        store: DynEvidenceStore,
        holder: LeaseHolder,
        record: LeaseRecord,
        ttl: Duration,
    ) -> Self {
        let (tx, lost) = watch::channel(None);
        let renewer = tokio::spawn(renew_while_held(store.clone(), holder.clone(), ttl, tx));
        Lease {
            store,
            holder,
            record,
            renewer: Some(renewer),
            lost,
            released: false,
        }
    }

    /// Who holds it (this run).
    pub fn holder(&self) -> &LeaseHolder {
        &self.holder
    }

    /// The lease as it was taken.
    pub fn record(&self) -> &LeaseRecord {
        &self.record
    }

    /// Resolves, with why, once the lease is found no longer held by this run (released by
    /// force, or it could not be renewed before it expired); pending for as long as it is
    /// held. A run that lost its lease must stop: another run may be changing the
    /// environment.
    pub async fn lost(&mut self) -> String {
        loop {
            if let Some(why) = self.lost.borrow_and_update().clone() {
                return why;
            }
            if self.lost.changed().await.is_err() {
                if let Some(why) = self.lost.borrow().clone() {
                    return why;
                }
                // The renewer ended without a word: only when the lease was released.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Stop renewing and release the lease. Call it after the run and everything it
    /// started have stopped.
    pub async fn release(mut self) -> Result<()> {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        self.released = true;
        let ours = self.store.leases().release(&self.holder).await?;
        if !ours {
            tracing::warn!(
                "the lease of `{}` was no longer this run's when it ended",
                self.holder.environment
            );
        }
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if self.released {
            return;
        }
        // Not released on the way out (a panic, an early return): release it if a runtime
        // is still there; otherwise it expires.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let (store, holder) = (self.store.clone(), self.holder.clone());
            handle.spawn(async move {
                let _ = store.leases().release(&holder).await;
            });
        }
    }
}

/// Renew every third of `ttl` until the lease is gone or the task is aborted; say so on
/// `lost` when the lease is no longer ours or could not be renewed before it expired.
async fn renew_while_held(
    store: DynEvidenceStore,
    holder: LeaseHolder,
    ttl: Duration,
    lost: watch::Sender<Option<String>>,
) {
    let every = (ttl / 3).max(Duration::from_millis(100));
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(every).await;
        match store.leases().renew(&holder, ttl).await {
            Ok(Some(_)) => renewed = tokio::time::Instant::now(),
            Ok(None) => {
                let _ = lost.send(Some(format!(
                    "the lease of `{}` is no longer this run's (released by force, or it expired and another run took it)",
                    holder.environment
                )));
                return;
            }
            Err(e) if renewed.elapsed() < ttl => {
                tracing::warn!("cannot renew the lease of `{}`: {e}", holder.environment);
            }
            Err(e) => {
                let _ = lost.send(Some(format!(
                    "the lease of `{}` could not be renewed before it expired: {e}",
                    holder.environment
                )));
                return;
            }
        }
    }
}

/// A fresh run id: 16 hex digits from the time, the pid and a counter, hashed.
pub fn new_run_id() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = format!(
        "{nanos}/{}/{}/{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        this_host()
    );
    hex::encode(&Sha256::digest(seed.as_bytes())[..8])
}

/// This machine's host name (the kernel's, else `$HOSTNAME`, else `unknown`).
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `t` as RFC 3339 with milliseconds.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}
