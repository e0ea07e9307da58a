//! Writing a secret file safely: under an advisory lock, through a private temporary file
//! in the same directory, through symlinks to their target.
//!
//! A store that is rewritten by read-modify-write (a dotenv file holds many keys) loses an
//! update when two writers interleave: both read the old file, each writes back its own
//! change. So every write of a store file takes an exclusive `flock` on a lock file beside
//! it (`.<name>.staging-lock`, kept on disk: deleting a lock file races with its next
//! taker), re-reads the file under the lock, and replaces it with a rename. The temporary
//! file (`.<name>.staging-tmp-<pid>`) is created 0600, removed on any failure, and a
//! temporary file left by a killed run is removed by the next writer (who holds the lock,
//! so no live writer owns it) or the next reader that finds the lock free.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use staging_core::{Error, Result};

/// How long a writer waits for another writer's lock before it gives up.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The file a write goes to: `path` itself, or the file a symlink at `path` points to
/// (replacing the link by a regular file would silently detach it from its target).
pub(crate) fn write_target(path: &Path, shown: &str) -> Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(|e| {
            Error::config(format!(
                "{shown} is a symlink whose target cannot be resolved ({e}): fix or remove the link, then write again"
            ))
        }),
        _ => Ok(path.to_path_buf()),
    }
}

fn sibling(target: &Path, suffix: &str) -> PathBuf {
    let dir = parent_dir(target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{name}.{suffix}"))
}

fn parent_dir(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The lock file beside `target`.
pub fn lock_path(target: &Path) -> PathBuf {
    sibling(target, "staging-lock")
}

/// The prefix of the temporary files beside `target` (`.<name>.staging-tmp-`).
pub fn temp_prefix(target: &Path) -> String {
    sibling(target, "staging-tmp-")
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// An exclusive advisory lock on the lock file of `target`, held until dropped.
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

impl StoreLock {
    /// The lock beside `target` if no one holds it now; never waits.
    fn try_acquire(target: &Path) -> std::io::Result<StoreLock> {
        let file = open_lock_file(&lock_path(target))?;
        file.try_lock().map_err(std::io::Error::from)?;
        Ok(StoreLock { _file: file })
    }

    /// Wait (at most [`LOCK_TIMEOUT`]) for the lock beside `target`.
    pub(crate) fn acquire(target: &Path, shown: &str) -> Result<StoreLock> {
        let path = lock_path(target);
        let file = open_lock_file(&path)
            .map_err(|e| Error::io(format!("cannot open the lock file of {shown}"), e))?;
        let started = Instant::now();
        let mut announced = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StoreLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_TIMEOUT => {
                    if !announced {
                        announced = true;
                        tracing::info!(
                            "waiting for the lock on {shown}: another `staging` process is writing it"
                        );
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Timeout {
                        what: format!(
                            "the lock on {shown} ({}), held by another `staging` process writing it",
                            path.display()
                        ),
                        after: LOCK_TIMEOUT,
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::io(format!("cannot lock {}", path.display()), e));
                }
            }
        }
    }
}

/// Remove the temporary files a killed writer left beside `target`; returns how many.
/// Call it holding the lock: then no live writer owns any of them.
pub(crate) fn remove_stale_temps(target: &Path) -> usize {
    let prefix = temp_prefix(target);
    let Ok(entries) = std::fs::read_dir(parent_dir(target)) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::warn!(
            "removed {removed} temporary file(s) beside {} left by an interrupted write",
            target.display()
        );
    }
    removed
}

/// Remove the temporary files a killed writer left beside the file at `path`, when no writer
/// holds its lock right now (a read never waits for one); once per file and process. Every
/// read of a store file calls it, so the next run of any command (not only the next write)
/// leaves no copy of the secrets behind.
pub(crate) fn clean_up_after_killed_writers(path: &Path) {
    // Canonical, so that a symlink and its target share one entry (and one lock).
    static DONE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let Ok(target) = std::fs::canonicalize(path) else {
        return;
    };
    {
        let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
        if done.contains(&target) {
            return;
        }
        done.push(target.clone());
    }
    let prefix = temp_prefix(&target);
    let any = std::fs::read_dir(parent_dir(&target)).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
    });
    if !any {
        return;
    }
    // Only while no writer holds the lock: then none of them is a live writer's.
    if let Ok(lock) = StoreLock::try_acquire(&target) {
        remove_stale_temps(&target);
        drop(lock);
    }
}

/// Under the lock of `path`'s target: read it (`None` when it does not exist), let `update`
/// compute the new content, and replace the file with it atomically. Blocking.
pub(crate) fn locked_update(
    path: &Path,
    shown: &str,
    update: impl FnOnce(Option<String>) -> Result<Vec<u8>>,
) -> Result<()> {
    let target = write_target(path, shown)?;
    let _lock = StoreLock::acquire(&target, shown)?;
    remove_stale_temps(&target);
    let current = match std::fs::read_to_string(&target) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(format!("cannot read {shown}"), e)),
    };
    let new = update(current)?;
    write_private(&target, &new).map_err(|e| Error::io(format!("cannot write {shown}"), e))
}

/// Replace `target` with `bytes` through a 0600 temporary file in the same directory and a
/// rename, so a reader never sees half a file; the temporary file is removed on any
/// failure. An existing file keeps its permissions.
fn write_private(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = sibling(target, &format!("staging-tmp-{}", std::process::id()));
    let existing = std::fs::metadata(target).ok().map(|m| m.permissions());
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Some(perms) = existing {
            std::fs::set_permissions(&tmp, perms)?;
        }
        std::fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a directory: the rename fails after the temp file was written.
        let target = dir.path().join("occupied");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), "x").unwrap();
        assert!(write_private(&target, b"SECRET=canary").is_err());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().contains("staging-tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_written_owner_only_and_an_existing_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("fresh.env");
        locked_update(&fresh, "fresh.env", |_| Ok(b"A=1\n".to_vec())).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        let shared = dir.path().join("shared.env");
        std::fs::write(&shared, "A=1\n").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
        locked_update(&shared, "shared.env", |_| Ok(b"A=2\n".to_vec())).unwrap();
        let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{mode:o}");
    }

    #[test]
    fn stale_temporary_files_are_removed_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join(".env.staging");
        // What the previous writer, killed between writing and renaming, left.
        let stale = dir.path().join("..env.staging.staging-tmp-999999");
        assert!(
            stale
                .to_string_lossy()
                .ends_with(&format!("{}999999", temp_prefix(&target)))
        );
        std::fs::write(&stale, "A=1").unwrap();
        locked_update(&target, ".env.staging", |_| Ok(b"A=2\n".to_vec())).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "A=2\n");
        assert!(!stale.exists());
    }

    #[test]
    fn a_reader_removes_what_a_killed_writer_left_unless_a_writer_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("held.env");
        std::fs::write(&target, "A=1\n").unwrap();
        let stale = dir.path().join(".held.env.staging-tmp-777777");
        std::fs::write(&stale, "A=0\n").unwrap();
        // A live writer holds the lock: its temporary file may be the one being written.
        let held = StoreLock::acquire(&target, "held.env").unwrap();
        clean_up_after_killed_writers(&target);
        assert!(stale.exists(), "a live writer's file was removed");
        drop(held);

        let other = dir.path().join("free.env");
        std::fs::write(&other, "A=1\n").unwrap();
        let stale = dir.path().join(".free.env.staging-tmp-777777");
        std::fs::write(&stale, "A=0\n").unwrap();
        clean_up_after_killed_writers(&other);
        assert!(!stale.exists(), "the killed writer's file is still there");
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "A=1\n");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_file_is_written_through_to_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.env");
        std::fs::write(&real, "A=1\n").unwrap();
        let link = dir.path().join(".env");
        std::os::unix::fs::symlink("real.env", &link).unwrap();
        locked_update(&link, ".env", |cur| {
            Ok(format!("{}B=2\n", cur.unwrap_or_default()).into_bytes())
        })
        .unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "A=1\nB=2\n");
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("missing/nowhere.env", &dangling).unwrap();
        let err = locked_update(&dangling, "dangling", |_| Ok(vec![])).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
    }
}
