//! The [`EvidenceStore`] trait: where evidence of runs is recorded, listed and read back.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use staging_core::pipeline::{Evidence, EvidenceRef, commits_match, is_full_commit_id};
use staging_core::{Redactor, Result};

/// Where evidence is kept: a directory ([`crate::DirStore`]) or a Postgres table
/// ([`crate::PgStore`]).
///
/// A store hands back what it holds as it holds it: an edited record is listed with
/// `intact: false`, and one that cannot be parsed any more is listed in
/// [`Listing::unreadable`], never dropped — the gate must see both to refuse them.
#[async_trait]
pub trait EvidenceStore: Debug + Send + Sync + 'static {
    /// Where it keeps evidence, for messages (`directory .staging/evidence`, `postgres table
    /// staging_evidence`). Never a credential.
    fn describe(&self) -> String;

    /// Record one run's evidence; returns its id. Two writers at once both succeed and get
    /// different ids.
    async fn record(&self, evidence: &Evidence) -> Result<String>;

    /// The evidence matching `filter`, newest first.
    async fn list(&self, filter: &EvidenceFilter) -> Result<Listing>;

    /// One record by id (as [`EvidenceStore::list`] gives it), or `NotFound`.
    async fn get(&self, id: &str) -> Result<StoredEvidence>;

    /// Where this store keeps the environments' leases ([`crate::lease`]): every runner
    /// that shares the evidence shares the leases.
    fn leases(&self) -> &dyn crate::lease::LeaseStore;
}

/// An evidence store behind a pointer.
pub type DynEvidenceStore = Arc<dyn EvidenceStore>;

macro_rules! forward_evidence_store {
    ($ty:ty) => {
        #[async_trait]
        impl<T: EvidenceStore + ?Sized> EvidenceStore for $ty {
            fn describe(&self) -> String {
                (**self).describe()
            }
            async fn record(&self, evidence: &Evidence) -> Result<String> {
                (**self).record(evidence).await
            }
            async fn list(&self, filter: &EvidenceFilter) -> Result<Listing> {
                (**self).list(filter).await
            }
            async fn get(&self, id: &str) -> Result<StoredEvidence> {
                (**self).get(id).await
            }
            fn leases(&self) -> &dyn crate::lease::LeaseStore {
                (**self).leases()
            }
        }
    };
}

forward_evidence_store!(Arc<T>);
forward_evidence_store!(Box<T>);

/// Which evidence to list. Every field left `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EvidenceFilter {
    /// Only this project (a Postgres table may be shared by several).
    pub project: Option<String>,
    /// Only this environment.
    pub environment: Option<String>,
    /// Only this commit. A full id (40 or 64 hex digits) matches only itself; a shorter hex
    /// id of at least 7 digits (`evidence list --commit abc1234`) matches the full ids it
    /// begins, never the other way round. The gate passes full ids only.
    pub commit: Option<String>,
}

impl EvidenceFilter {
    /// Everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only `project`.
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// Only `environment`.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Only `commit` (see [`EvidenceFilter::commit`]'s field).
    pub fn commit(mut self, commit: impl Into<String>) -> Self {
        self.commit = Some(commit.into());
        self
    }

    /// Whether `evidence` matches, judged by its own content.
    pub fn matches(&self, evidence: &Evidence) -> bool {
        self.project.as_ref().is_none_or(|p| *p == evidence.project)
            && self
                .environment
                .as_ref()
                .is_none_or(|e| *e == evidence.environment)
            && self
                .commit
                .as_ref()
                .is_none_or(|c| commit_filter_matches(c, &evidence.commit))
    }
}

/// Whether the commit filter `filter` selects the record of `commit` (see
/// [`EvidenceFilter::commit`]).
pub(crate) fn commit_filter_matches(filter: &str, commit: &str) -> bool {
    let (filter, commit) = (filter.trim(), commit.trim());
    if is_full_commit_id(filter) || filter.len() < 7 {
        return commits_match(filter, commit);
    }
    filter.bytes().all(|b| b.is_ascii_hexdigit())
        && is_full_commit_id(commit)
        && commit
            .get(..filter.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(filter))
}

/// One record of a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredEvidence {
    /// Its id in the store (a path under the directory; a row id in Postgres).
    pub id: String,
    /// Whether its content hash still matches its content.
    pub intact: bool,
    /// The evidence, as stored.
    pub evidence: Evidence,
}

impl StoredEvidence {
    /// A record read back from a store; `intact` is computed here.
    pub fn new(id: impl Into<String>, evidence: Evidence) -> Self {
        StoredEvidence {
            id: id.into(),
            intact: evidence.is_intact(),
            evidence,
        }
    }

    /// A reference to this record (environment, id, content hash), for the evidence of a
    /// promotion it allows to name it ([`Evidence::with_promoted_from`]).
    pub fn reference(&self) -> EvidenceRef {
        EvidenceRef {
            environment: self.evidence.environment.clone(),
            id: self.id.clone(),
            content_hash: self.evidence.content_hash.clone(),
        }
    }

    /// The first step that did not pass, with its summary: `("smoke", "1 passed, 1
    /// failed")`.
    pub fn failed_step(&self) -> Option<(String, String)> {
        failed_step(&self.evidence)
    }

    /// One line for `staging evidence list`.
    pub fn summary(&self) -> EvidenceSummary {
        let e = &self.evidence;
        EvidenceSummary {
            id: self.id.clone(),
            project: e.project.clone(),
            environment: e.environment.clone(),
            commit: e.commit.clone(),
            recorded_at: e.recorded_at.clone(),
            ok: e.ok,
            intact: self.intact,
            spec_hash: e.spec_hash.clone(),
            failed_step: self.failed_step().map(|(s, _)| s),
        }
    }
}

/// The first step of `evidence` whose status is neither `passed` nor `skipped`.
pub(crate) fn failed_step(evidence: &Evidence) -> Option<(String, String)> {
    evidence.steps.iter().find_map(|s| {
        let status = s.get("status")?.as_str()?;
        if matches!(status, "passed" | "skipped") {
            return None;
        }
        let step = s.get("step")?.as_str()?.to_owned();
        let summary = s
            .get("summary")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        Some((step, summary))
    })
}

/// A row of `staging evidence list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvidenceSummary {
    /// Its id in the store.
    pub id: String,
    /// The project.
    pub project: String,
    /// The environment.
    pub environment: String,
    /// The commit.
    pub commit: String,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
    /// Whether the run passed.
    pub ok: bool,
    /// Whether the content hash still matches.
    pub intact: bool,
    /// The spec hash of the run.
    pub spec_hash: String,
    /// The first step that failed, when the run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
}

/// A record a store holds but cannot parse (edited by hand into invalid JSON, truncated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// Its id in the store.
    pub id: String,
    /// Why it cannot be read.
    pub reason: String,
}

/// What [`EvidenceStore::list`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Listing {
    /// The records that match, newest first.
    pub entries: Vec<StoredEvidence>,
    /// Records that could not be parsed and may match (judged by where they are kept).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
}

impl Listing {
    /// Sort newest first (by `recorded_at`, then id, descending).
    pub(crate) fn sort(&mut self) {
        self.entries.sort_by(|a, b| {
            (b.evidence.recorded_at.as_str(), b.id.as_str())
                .cmp(&(a.evidence.recorded_at.as_str(), a.id.as_str()))
        });
        self.unreadable.sort_by(|a, b| b.id.cmp(&a.id));
    }

    /// One summary per readable record, newest first.
    pub fn summaries(&self) -> Vec<EvidenceSummary> {
        self.entries.iter().map(StoredEvidence::summary).collect()
    }
}

/// The newest record matching `filter`: what `staging doctor` diagnoses when given no id.
pub async fn latest(
    store: &dyn EvidenceStore,
    filter: &EvidenceFilter,
) -> Result<Option<StoredEvidence>> {
    Ok(store.list(filter).await?.entries.into_iter().next())
}

/// The text a store writes for `evidence`: its JSON, redacted field by field
/// ([`Evidence::to_json_redacted`], which hashes a record that was intact again when
/// redaction changed it). Never refuses a record because of redaction.
pub(crate) fn stored_text(evidence: &Evidence, redactor: &Redactor) -> Result<String> {
    evidence.to_json_redacted(redactor)
}
