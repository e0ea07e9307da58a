//! The local directory store: one JSON file per run under `<dir>/<commit>/`, the layout
//! `staging-core`'s `EvidenceStep` writes, so either can write and this store reads both.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use staging_core::files::{is_temporary, read_regular};
use staging_core::limits::MAX_EVIDENCE_RECORD;
use staging_core::pipeline::{Evidence, write_record};
use staging_core::{Error, Redactor, Result};

use crate::store::{
    EvidenceFilter, EvidenceStore, Listing, StoredEvidence, Unreadable, commit_filter_matches,
    stored_text,
};

/// Evidence as files in a directory (by default the spec's `evidence_dir`,
/// `.staging/evidence/`).
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
    redactor: Redactor,
}

impl DirStore {
    /// A store rooted at `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirStore {
            root: root.into(),
            redactor: Redactor::global().clone(),
        }
    }

    /// The redactor every file passes through before it is written (default: the global
    /// one, where the secrets step registers every secret it reads).
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// An id under the root, or else a path of its own (`evidence show path/to/file.json`).
    fn path_of(&self, id: &str) -> PathBuf {
        let under_root = self.root.join(id);
        // Whatever is there under the root (a FIFO or a link too: reading it refuses those).
        if std::fs::symlink_metadata(&under_root).is_ok() {
            under_root
        } else {
            PathBuf::from(id)
        }
    }

    fn id_of(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/")
    }
}

#[async_trait]
impl EvidenceStore for DirStore {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    fn leases(&self) -> &dyn crate::lease::LeaseStore {
        self
    }

    async fn record(&self, evidence: &Evidence) -> Result<String> {
        let relative = evidence.relative_path();
        let body = stored_text(evidence, &self.redactor)?;
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let path = write_record(&store.root, &relative, &body)?;
            Ok(store.id_of(&path))
        })
        .await
        .map_err(|e| Error::failed(format!("evidence writer stopped: {e}")))?
    }

    async fn list(&self, filter: &EvidenceFilter) -> Result<Listing> {
        let root = self.root.clone();
        let filter = filter.clone();
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut listing = Listing::default();
            let commits = match std::fs::read_dir(&root) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
                Err(e) => return Err(Error::io(format!("cannot read {}", root.display()), e)),
            };
            for commit_dir in commits.flatten() {
                let commit_path = commit_dir.path();
                if !commit_path.is_dir() {
                    continue;
                }
                let dir_name = commit_dir.file_name().to_string_lossy().into_owned();
                let files = std::fs::read_dir(&commit_path)
                    .map_err(|e| Error::io(format!("cannot read {}", commit_path.display()), e))?;
                for file in files.flatten() {
                    let path = file.path();
                    let name = file.file_name().to_string_lossy().into_owned();
                    if path.extension().is_none_or(|x| x != "json") || is_temporary(&name) {
                        continue;
                    }
                    // An empty record is a write that never finished (an older version, or
                    // a filesystem that lost it in a crash): absent, not unreadable, so it
                    // never blocks a later run of the same commit.
                    if file.metadata().is_ok_and(|m| m.is_file() && m.len() == 0) {
                        tracing::warn!("skipping the empty evidence file {}", path.display());
                        continue;
                    }
                    let id = store.id_of(&path);
                    match read_evidence(&path, Some(&root)) {
                        Ok(evidence) => {
                            if filter.matches(&evidence) {
                                listing.entries.push(StoredEvidence::new(id, evidence));
                            }
                        }
                        Err(reason) => {
                            // Judge an unparsable file by where it is kept.
                            let file_name = file.file_name().to_string_lossy().into_owned();
                            let env_ok = filter
                                .environment
                                .as_ref()
                                .is_none_or(|e| file_name.starts_with(&format!("{e}-")));
                            let commit_ok = filter
                                .commit
                                .as_ref()
                                .is_none_or(|c| commit_filter_matches(c, &dir_name));
                            if env_ok && commit_ok {
                                listing.unreadable.push(Unreadable { id, reason });
                            }
                        }
                    }
                }
            }
            listing.sort();
            Ok(listing)
        })
        .await
        .map_err(|e| Error::failed(format!("evidence reader stopped: {e}")))?
    }

    async fn get(&self, id: &str) -> Result<StoredEvidence> {
        let path = self.path_of(id);
        if std::fs::symlink_metadata(&path).is_err() {
            return Err(Error::not_found(format!(
                "evidence `{id}` in {}",
                self.describe()
            )));
        }
        let inside = path.starts_with(&self.root).then_some(self.root.as_path());
        let evidence = read_evidence(&path, inside).map_err(|reason| {
            Error::failed(format!(
                "evidence {} cannot be read: {reason}",
                path.display()
            ))
        })?;
        Ok(StoredEvidence::new(self.id_of(&path), evidence))
    }
}

/// A record, read only when it is a regular file (inside `inside`, when given) of at most
/// [`MAX_EVIDENCE_RECORD`] bytes: a FIFO, a device or a link out of the store is refused at
/// once, never waited on or read without end.
fn read_evidence(path: &Path, inside: Option<&Path>) -> std::result::Result<Evidence, String> {
    let bytes = read_regular(path, inside, MAX_EVIDENCE_RECORD).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not evidence JSON: {e}"))
}
