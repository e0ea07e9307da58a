//! State files: one small JSON file per live service (`.staging/local/<environment>/<service>.json`
//! next to the spec), so that a local provider in another process (`staging smoke`,
//! `staging status`) finds what a kept-running `staging up` serves.
//!
//! A file holds the process id, port, URL, commit, deploy id and start time: never a
//! variable's value. It is written when a deploy goes live and removed when its process
//! stops; a file whose process is gone (a run that was killed) is stale, and the first reader
//! that notices removes it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a state file says about one running service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceState {
    /// The service's name in the spec.
    pub(crate) service: String,
    /// The environment it runs for.
    pub(crate) environment: String,
    /// The service's process (the leader of its process group).
    pub(crate) pid: u32,
    /// The `staging` process that started it and stops it.
    pub(crate) owner_pid: u32,
    /// The loopback port it listens on.
    pub(crate) port: u16,
    /// Its URL, for people reading the file.
    pub(crate) url: String,
    /// The deployed commit.
    pub(crate) commit: String,
    /// The deploy id in the owning process.
    pub(crate) deploy_id: String,
    /// When the deploy went live (RFC 3339, UTC).
    pub(crate) started_at: String,
}

/// Where the state file of `service` in `environment` lives under `root`
/// (`<spec dir>/.staging/local`).
pub(crate) fn path(root: &Path, environment: &str, service: &str) -> PathBuf {
    root.join(environment).join(format!("{service}.json"))
}

/// Write the file atomically (a temporary file renamed over it).
pub(crate) fn write(path: &Path, state: &ServiceState) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The file's content: `Ok(None)` when there is none, `Err` with a reason when it cannot be
/// read as a state file.
pub(crate) fn read(path: &Path) -> Result<Option<ServiceState>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("not a state file ({e})")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Remove the file if it still describes process `pid` (a newer deploy may have replaced it).
pub(crate) fn remove_if_owned(path: &Path, pid: u32) {
    if matches!(read(path), Ok(Some(s)) if s.pid == pid) {
        let _ = std::fs::remove_file(path);
    }
}

/// Whether process `pid` exists and is not a zombie.
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => {}
        Err(_) => return false,
    }
    // A zombie answers signal 0 but serves nothing.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// Now, RFC 3339 in UTC to the second.
pub(crate) fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pid: u32) -> ServiceState {
        ServiceState {
            service: "web".into(),
            environment: "staging".into(),
            pid,
            owner_pid: std::process::id(),
            port: 4321,
            url: "http://127.0.0.1:4321/".into(),
            commit: "0123456789ab".into(),
            deploy_id: "local-web-1".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn a_state_file_round_trips_and_is_removed_only_by_its_own_process() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "staging", "web");
        assert_eq!(read(&p), Ok(None));
        write(&p, &sample(42)).unwrap();
        assert_eq!(read(&p), Ok(Some(sample(42))));
        remove_if_owned(&p, 43);
        assert!(p.exists(), "another process's file was removed");
        remove_if_owned(&p, 42);
        assert!(!p.exists());
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_one_is_not() {
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
        assert!(!pid_alive(0));
    }

    #[test]
    fn now_is_rfc3339_utc() {
        let t = now();
        assert!(t.ends_with('Z') && t.contains('T'), "{t}");
    }
}
