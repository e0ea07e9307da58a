//! The evidence of a run: what ran, against what, and what each step found, as a JSON file
//! keyed by commit, with a content hash so an edited file is detected.
//!
//! [`EvidenceStep`] writes to the spec's evidence directory. Other stores (a Postgres table
//! for CI runners that share no disk) live in `staging-evidence`, which records through
//! [`Evidence::from_context`] and lays files out with [`Evidence::relative_path`], so a run
//! recorded by either is the same record. Core keeps no store trait: listing, filtering and
//! the promotion gate are that crate's vocabulary, not the pipeline's.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{RunContext, Step, StepReport, StepStatus};
use crate::error::{Error, Result};

/// The evidence of one run, as written to disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The project.
    pub project: String,
    /// The environment.
    pub environment: String,
    /// The commit.
    pub commit: String,
    /// SHA-256 of the spec file.
    pub spec_hash: String,
    /// SHA-256 of the effective spec (after process variables were filled in, canonical
    /// form; see [`crate::spec::LoadedSpec::effective_hash`]): what the promotion gate
    /// compares. Absent in records written before the field existed (not serialized when
    /// absent, so their content hash still matches); the gate refuses those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_spec_hash: Option<String>,
    /// The version of the tool that ran.
    pub tool_version: String,
    /// When the evidence was recorded (RFC 3339).
    pub recorded_at: String,
    /// Whether every step before the evidence step passed.
    pub ok: bool,
    /// Each step's result, as JSON.
    pub steps: Vec<serde_json::Value>,
    /// When the run was a promotion: the record of the source environment that the gate
    /// accepted. Absent in every other record, and in records written before the field
    /// existed (it is not serialized when absent, so their content hash still matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<EvidenceRef>,
    /// The deploy each service served when the run verified it (service → the platform's
    /// deploy id), the same before and after smoke or the run failed ([`super::ReverifyStep`]):
    /// which deploys the probes ran against. Empty, and not serialized, for runs that verified
    /// no deploy and records written before the field existed (their content hash still
    /// matches).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub deploys: std::collections::BTreeMap<String, String>,
    /// SHA-256 over all of the above, hex.
    #[serde(default)]
    pub content_hash: String,
}

impl Evidence {
    /// The hash over every field but `content_hash`.
    pub fn compute_hash(&self) -> String {
        let mut copy = self.clone();
        copy.content_hash.clear();
        let bytes = serde_json::to_vec(&copy).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }

    /// Whether the content hash matches the content (the file was not edited).
    pub fn is_intact(&self) -> bool {
        self.content_hash == self.compute_hash()
    }

    /// The evidence of the run in `ctx` so far: every step report (redacted), whether they
    /// all passed, and the content hash. What [`EvidenceStep`] and every other store record.
    pub fn from_context(ctx: &RunContext) -> Evidence {
        let steps = ctx
            .reports
            .iter()
            .map(|r| ctx.redactor.redacted_json(r))
            .collect();
        let mut evidence = Evidence {
            project: ctx.spec.spec.project.name.clone(),
            environment: ctx.spec.state_key(&ctx.environment),
            commit: ctx.commit.clone(),
            spec_hash: ctx.spec.hash.clone(),
            effective_spec_hash: Some(ctx.spec.effective_hash.clone()),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            recorded_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            ok: ctx
                .reports
                .iter()
                .all(|r| matches!(r.status, StepStatus::Passed | StepStatus::Skipped)),
            steps,
            promoted_from: None,
            deploys: ctx
                .verified
                .iter()
                .map(|(service, deploy)| (service.clone(), deploy.id.clone()))
                .collect(),
            content_hash: String::new(),
        };
        evidence.content_hash = evidence.compute_hash();
        evidence
    }

    /// This evidence, naming `source` as the record that allowed the promotion it is of,
    /// hashed again so that it stays intact (an edit of the reference later is detected like
    /// any other edit).
    pub fn with_promoted_from(mut self, source: EvidenceRef) -> Evidence {
        self.promoted_from = Some(source);
        self.content_hash = self.compute_hash();
        self
    }

    /// Where this evidence lives under an evidence directory: `<commit>/<env>-<time>.json`,
    /// each part reduced to `[A-Za-z0-9_-]`.
    pub fn relative_path(&self) -> PathBuf {
        let stamp = self.recorded_at.replace([':', '.'], "-");
        PathBuf::from(sanitize(&self.commit))
            .join(format!("{}-{stamp}.json", sanitize(&self.environment)))
    }

    /// When it was recorded, or `None` when `recorded_at` is not RFC 3339.
    pub fn recorded_time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339(&self.recorded_at).ok()
    }

    /// How long before `now` it was recorded (zero when recorded after `now`), or `None`
    /// when `recorded_at` is not RFC 3339.
    pub fn age_at(&self, now: SystemTime) -> Option<Duration> {
        self.recorded_time()
            .map(|t| now.duration_since(t).unwrap_or_default())
    }

    /// The evidence as the pretty JSON it is stored as, redacted by `redactor` field by
    /// field before it is serialized ([`crate::Redactor::redact_json`]). When redaction
    /// changed a field (a secret the run's redactor learnt after the step reports were
    /// taken), the record is hashed again so that it stays intact — but only a record that
    /// was intact to begin with, so an edited record is never laundered by being written.
    /// A record is never dropped because of redaction: the secret is replaced, the record
    /// written.
    pub fn to_json_redacted(&self, redactor: &crate::redact::Redactor) -> Result<String> {
        let plain = serde_json::to_value(self).map_err(|e| Error::failed(e.to_string()))?;
        let mut redacted = plain.clone();
        redactor.redact_json(&mut redacted);
        if redacted != plain
            && self.is_intact()
            && let Ok(mut rehashed) = serde_json::from_value::<Evidence>(redacted.clone())
        {
            rehashed.content_hash = rehashed.compute_hash();
            redacted = serde_json::to_value(&rehashed).map_err(|e| Error::failed(e.to_string()))?;
        }
        serde_json::to_string_pretty(&redacted).map_err(|e| Error::failed(e.to_string()))
    }
}

/// A reference to one stored record of evidence: which environment's, its id in the store
/// that holds it, and its content hash at the time it was relied on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRef {
    /// The environment the record is of (`staging`).
    pub environment: String,
    /// Its id in the store (a path under the evidence directory; a row id in Postgres).
    pub id: String,
    /// Its content hash (SHA-256, hex): what tells the record named from one edited since.
    pub content_hash: String,
}

/// Where evidence for a spec is kept.
pub fn evidence_dir(ctx: &RunContext) -> PathBuf {
    ctx.spec.resolve_path(&ctx.spec.spec.project.evidence_dir)
}

/// Writes the evidence of the run so far to `<evidence_dir>/<commit>/<env>-<time>.json`.
/// Runs even after a failed step, so failed runs are on record too.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvidenceStep;

impl EvidenceStep {
    /// The step's name.
    pub const NAME: &'static str = "evidence";
}

#[async_trait]
impl Step for EvidenceStep {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let evidence = Evidence::from_context(ctx);
        let root = evidence_dir(ctx);
        let body = evidence.to_json_redacted(&ctx.redactor)?;
        let relative = evidence.relative_path();
        let written = tokio::task::spawn_blocking(move || write_record(&root, &relative, &body))
            .await
            .map_err(|e| Error::failed(format!("evidence writer stopped: {e}")))??;
        Ok(StepReport::passed(
            Self::NAME,
            format!("recorded {}", written.display()),
        ))
    }
}

/// Write one record's `body` under `root` at `relative` (from [`Evidence::relative_path`]),
/// whole or not at all (see [`crate::files::write_new`]); two runs of one commit in the same
/// millisecond get `-2`, `-3`..., and no writer ever replaces another's record. Returns the
/// path written. Blocks: call it from `spawn_blocking`.
pub fn write_record(root: &Path, relative: &Path, body: &str) -> Result<PathBuf> {
    let first = root.join(relative);
    let dir = first.parent().map(Path::to_path_buf).unwrap_or_default();
    let stem = first
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    for n in 1..1000 {
        let path = if n == 1 {
            first.clone()
        } else {
            dir.join(format!("{stem}-{n}.json"))
        };
        match crate::files::write_new(&path, body.as_bytes()) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(format!("cannot write {}", path.display()), e)),
        }
    }
    Err(Error::Conflict {
        message: format!("too many evidence files named {stem} in {}", dir.display()),
    })
}

/// `s` reduced to `[A-Za-z0-9_-]`, every other character replaced by `_`: safe as one
/// path component.
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
