//! The evidence of a run: what ran, against what, and what each step found, as a JSON file
//! keyed by commit, with a content hash so an edited file is detected.

use std::path::PathBuf;
use std::time::SystemTime;

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
    /// The version of the tool that ran.
    pub tool_version: String,
    /// When the evidence was recorded (RFC 3339).
    pub recorded_at: String,
    /// Whether every step before the evidence step passed.
    pub ok: bool,
    /// Each step's result, as JSON.
    pub steps: Vec<serde_json::Value>,
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
        let now = SystemTime::now();
        let steps = ctx
            .reports
            .iter()
            .map(|r| {
                let json = serde_json::to_string(r).unwrap_or_default();
                serde_json::from_str(&ctx.redactor.redact(&json)).unwrap_or(serde_json::Value::Null)
            })
            .collect();
        let mut evidence = Evidence {
            project: ctx.spec.spec.project.name.clone(),
            environment: ctx.environment.clone(),
            commit: ctx.commit.clone(),
            spec_hash: ctx.spec.hash.clone(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            recorded_at: humantime::format_rfc3339_millis(now).to_string(),
            ok: ctx.reports.iter().all(|r| matches!(r.status, StepStatus::Passed | StepStatus::Skipped)),
            steps,
            content_hash: String::new(),
        };
        evidence.content_hash = evidence.compute_hash();
        let dir = evidence_dir(ctx).join(sanitize(&ctx.commit));
        tokio::fs::create_dir_all(&dir).await.map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let stamp = evidence.recorded_at.replace([':', '.'], "-");
        let file = dir.join(format!("{}-{stamp}.json", sanitize(&ctx.environment)));
        let body = serde_json::to_string_pretty(&evidence).map_err(|e| Error::failed(e.to_string()))?;
        let body = ctx.redactor.redact(&body).into_owned();
        tokio::fs::write(&file, body).await.map_err(|e| Error::io(format!("cannot write {}", file.display()), e))?;
        Ok(StepReport::passed(Self::NAME, format!("recorded {}", file.display())))
    }
}

fn sanitize(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}
