//! The local directory store: one JSON file per run under `<dir>/<commit>/`, the layout
//! `staging-core`'s `EvidenceStep` writes, so either can write and this store reads both.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use staging_core::pipeline::Evidence;
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
        if under_root.is_file() {
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

/// Create `path` only if it does not exist, and write `body` to it.
fn write_new(path: &Path, body: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(body.as_bytes())?;
    f.sync_all()
}

#[async_trait]
impl EvidenceStore for DirStore {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    async fn record(&self, evidence: &Evidence) -> Result<String> {
        let relative = evidence.relative_path();
        let body = stored_text(evidence, &self.redactor)?;
        let first = self.root.join(&relative);
        let dir = first.parent().map(Path::to_path_buf).unwrap_or_default();
        let stem = first
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
            // Two runs of one commit in the same millisecond get `-2`, `-3`...: `create_new`
            // makes the choice of name atomic, so no writer overwrites another.
            for n in 1..1000 {
                let path = if n == 1 {
                    first.clone()
                } else {
                    dir.join(format!("{stem}-{n}.json"))
                };
                match write_new(&path, &body) {
                    Ok(()) => {
                        return Ok(path
                            .strip_prefix(&root)
                            .unwrap_or(&path)
                            .to_string_lossy()
                            .replace('\\', "/"));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(Error::io(format!("cannot write {}", path.display()), e)),
                }
            }
            Err(Error::Conflict {
                message: format!("too many evidence files named {stem} in {}", dir.display()),
            })
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
                    if path.extension().is_none_or(|x| x != "json") {
                        continue;
                    }
                    let id = store.id_of(&path);
                    match read_evidence(&path) {
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
        if !path.is_file() {
            return Err(Error::not_found(format!(
                "evidence `{id}` in {}",
                self.describe()
            )));
        }
        let evidence = read_evidence(&path).map_err(|reason| {
            Error::failed(format!(
                "evidence {} cannot be read: {reason}",
                path.display()
            ))
        })?;
        Ok(StoredEvidence::new(self.id_of(&path), evidence))
    }
}

fn read_evidence(path: &Path) -> std::result::Result<Evidence, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("not evidence JSON: {e}"))
}
