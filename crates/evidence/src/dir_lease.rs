//! The directory store's lease: a lock file per environment under `<evidence dir>/.leases/`,
//! created only when absent (a temporary file linked into place, which fails when the name
//! is taken: `O_EXCL` semantics, whole or not at all), holding the holder as JSON.
//!
//! Every change (take, renew, release, take over a stale one) happens under an advisory
//! `flock` of a guard file beside it, so that two runs that both find a lock stale cannot
//! both replace it. A lock is stale when it expired (its holder stopped renewing) or when
//! its holder ran on this host and its process is gone (SIGKILL, a crash): then the next
//! run takes it at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use staging_core::{Error, Result};

use crate::dir::DirStore;
use crate::lease::{Attempt, LeaseHolder, LeaseRecord, LeaseStore, rfc3339, this_host};

/// Where the lock files of a directory store live, under its root.
const LEASE_DIR: &str = ".leases";

/// The lock file and the guard file of one environment.
struct Paths {
    lock: PathBuf,
    guard: PathBuf,
}

fn paths(root: &Path, project: &str, environment: &str) -> Paths {
    let name = format!("{}.{}", sanitize(project), sanitize(environment));
    let dir = root.join(LEASE_DIR);
    Paths {
        lock: dir.join(format!("{name}.lock")),
        guard: dir.join(format!("{name}.guard")),
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Run `f` holding the guard of `paths` (an exclusive `flock`, released when the file
/// closes, also when the process dies).
fn guarded<T>(paths: &Paths, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let dir = paths.guard.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let guard = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&paths.guard)
        .map_err(|e| Error::io(format!("cannot open {}", paths.guard.display()), e))?;
    guard
        .lock()
        .map_err(|e| Error::io(format!("cannot lock {}", paths.guard.display()), e))?;
    let out = f();
    drop(guard);
    out
}

/// The lock file's record, `None` when there is none; marked stale when it is.
fn read(lock: &Path) -> Result<Option<LeaseRecord>> {
    let text = match std::fs::read_to_string(lock) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("cannot read {}", lock.display()), e)),
    };
    let mut record: LeaseRecord = serde_json::from_str(&text).map_err(|e| Error::Locked {
        message: format!(
            "the lock file {} cannot be read ({e}); if no run holds the environment, remove it with `staging lock release --force`",
            lock.display()
        ),
    })?;
    record.stale = stale(&record, SystemTime::now());
    Ok(Some(record))
}

/// Expired, or held by a process of this host that is gone.
fn stale(record: &LeaseRecord, now: SystemTime) -> bool {
    let expired = humantime::parse_rfc3339(&record.expires_at).map_or(true, |t| t < now);
    expired || (record.holder.host == this_host() && !process_runs(record.holder.pid))
}

/// Whether process `pid` of this host runs (a zombie has ended). Where `/proc` is absent
/// it is assumed to run, and only expiry makes its lease stale.
fn process_runs(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| !matches!(state, "Z" | "X")),
        Err(_) => false,
    }
}

fn record_for(holder: &LeaseHolder, since: SystemTime, ttl: Duration) -> LeaseRecord {
    LeaseRecord {
        holder: holder.clone(),
        since: rfc3339(since),
        expires_at: rfc3339(SystemTime::now() + ttl),
        stale: false,
    }
}

fn json(record: &LeaseRecord) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(record).map_err(|e| Error::failed(e.to_string()))
}

fn remove(lock: &Path) -> Result<()> {
    match std::fs::remove_file(lock) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}", lock.display()), e)),
    }
}

fn try_acquire(paths: &Paths, holder: &LeaseHolder, ttl: Duration) -> Result<Attempt> {
    guarded(paths, || {
        let since = match read(&paths.lock)? {
            // The same run asking again: a renewal.
            Some(r) if r.holder.run_id == holder.run_id => {
                let since =
                    humantime::parse_rfc3339(&r.since).unwrap_or_else(|_| SystemTime::now());
                let record = record_for(holder, since, ttl);
                staging_core::files::write_atomic(&paths.lock, &json(&record)?)
                    .map_err(|e| Error::io(format!("cannot write {}", paths.lock.display()), e))?;
                return Ok(Attempt::Taken(record));
            }
            Some(r) if !r.stale => return Ok(Attempt::Held(r)),
            Some(r) => {
                tracing::warn!(
                    "taking over the stale lease of `{}`: {}",
                    holder.environment,
                    r.describe()
                );
                remove(&paths.lock)?;
                SystemTime::now()
            }
            None => SystemTime::now(),
        };
        let record = record_for(holder, since, ttl);
        match staging_core::files::write_new(&paths.lock, &json(&record)?) {
            Ok(()) => Ok(Attempt::Taken(record)),
            // Created by something that does not take the guard: it holds the lease.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read(&paths.lock)? {
                Some(r) => Ok(Attempt::Held(r)),
                None => Err(Error::io(
                    format!("cannot create {}", paths.lock.display()),
                    e,
                )),
            },
            Err(e) => Err(Error::io(
                format!("cannot create {}", paths.lock.display()),
                e,
            )),
        }
    })
}

fn renew(paths: &Paths, holder: &LeaseHolder, ttl: Duration) -> Result<Option<LeaseRecord>> {
    guarded(paths, || match read(&paths.lock)? {
        Some(r) if r.holder.run_id == holder.run_id => {
            let since = humantime::parse_rfc3339(&r.since).unwrap_or_else(|_| SystemTime::now());
            let record = record_for(holder, since, ttl);
            staging_core::files::write_atomic(&paths.lock, &json(&record)?)
                .map_err(|e| Error::io(format!("cannot write {}", paths.lock.display()), e))?;
            Ok(Some(record))
        }
        _ => Ok(None),
    })
}

fn release(paths: &Paths, holder: &LeaseHolder) -> Result<bool> {
    guarded(paths, || match read(&paths.lock) {
        Ok(Some(r)) if r.holder.run_id == holder.run_id => remove(&paths.lock).map(|()| true),
        Ok(_) => Ok(false),
        Err(e) => Err(e),
    })
}

fn force_release(paths: &Paths, by: &str) -> Result<Option<LeaseRecord>> {
    guarded(paths, || {
        let found = match read(&paths.lock) {
            Ok(r) => r,
            // An unreadable lock file is what `--force` is for.
            Err(Error::Locked { .. }) => None,
            Err(e) => return Err(e),
        };
        let existed = paths.lock.exists();
        remove(&paths.lock)?;
        if existed {
            tracing::warn!("{} released by force by {by}", paths.lock.display());
        }
        Ok(found)
    })
}

/// Run `f` on a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::failed(format!("the lease file task stopped: {e}")))?
}

#[async_trait]
impl LeaseStore for DirStore {
    async fn try_acquire(&self, holder: &LeaseHolder, ttl: Duration) -> Result<Attempt> {
        let p = paths(self.root(), &holder.project, &holder.environment);
        let holder = holder.clone();
        blocking(move || try_acquire(&p, &holder, ttl)).await
    }

    async fn renew(&self, holder: &LeaseHolder, ttl: Duration) -> Result<Option<LeaseRecord>> {
        let p = paths(self.root(), &holder.project, &holder.environment);
        let holder = holder.clone();
        blocking(move || renew(&p, &holder, ttl)).await
    }

    async fn release(&self, holder: &LeaseHolder) -> Result<bool> {
        let p = paths(self.root(), &holder.project, &holder.environment);
        let holder = holder.clone();
        blocking(move || release(&p, &holder)).await
    }

    async fn current(&self, project: &str, environment: &str) -> Result<Option<LeaseRecord>> {
        let p = paths(self.root(), project, environment);
        blocking(move || read(&p.lock)).await
    }

    async fn force_release(
        &self,
        project: &str,
        environment: &str,
        by: &str,
    ) -> Result<Option<LeaseRecord>> {
        let p = paths(self.root(), project, environment);
        let by = by.to_owned();
        blocking(move || force_release(&p, &by)).await
    }
}
