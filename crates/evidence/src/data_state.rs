//! The "holds unscrubbed production data" state of an environment's databases
//! ([`staging_core::data_state`]), kept in the evidence store: each mark is a record of its
//! own, so every runner that shares the evidence sees it, and `evidence list` shows it.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use staging_core::data_state::{DataStateLog, STEP};
use staging_core::pipeline::{Evidence, Finding, StepReport};
use staging_core::spec::LoadedSpec;
use staging_core::{Error, Result};

use crate::store::{DynEvidenceStore, EvidenceFilter, EvidenceStore};

/// The commit a state record is filed under: the state is the database's, not a commit's.
pub const STATE_COMMIT: &str = "database-state";

/// A [`DataStateLog`] that records into an evidence store.
#[derive(Debug, Clone)]
pub struct EvidenceStateLog {
    store: DynEvidenceStore,
    spec: Arc<LoadedSpec>,
}

impl EvidenceStateLog {
    /// Records for `spec`'s project into `store`.
    pub fn new(store: DynEvidenceStore, spec: Arc<LoadedSpec>) -> Self {
        EvidenceStateLog { store, spec }
    }
}

/// One record holding `report` for `environment` of `spec`'s project.
fn state_evidence(spec: &LoadedSpec, environment: &str, report: StepReport) -> Evidence {
    let ok = report.ok();
    let mut evidence = Evidence {
        project: spec.spec.project.name.clone(),
        // An instance of an ephemeral environment has a data state of its own.
        environment: spec.state_key(environment),
        commit: STATE_COMMIT.to_owned(),
        spec_hash: spec.hash.clone(),
        effective_spec_hash: Some(spec.effective_hash.clone()),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        recorded_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        ok,
        steps: vec![serde_json::to_value(&report).unwrap_or_default()],
        promoted_from: None,
        deploys: Default::default(),
        content_hash: String::new(),
    };
    evidence.content_hash = evidence.compute_hash();
    evidence
}

#[async_trait]
impl DataStateLog for EvidenceStateLog {
    async fn record_state(&self, environment: &str, report: StepReport) -> Result<()> {
        self.store
            .record(&state_evidence(&self.spec, environment, report))
            .await
            .map(|_| ())
    }
}

/// A database that holds unscrubbed production data, by the newest record of its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unscrubbed {
    /// The database (`main`).
    pub database: String,
    /// What the record says (what put the data there).
    pub message: String,
    /// When it was recorded.
    pub recorded_at: String,
}

/// The databases of `environment` whose newest state record says they hold unscrubbed data.
/// A record whose content hash no longer matches can mark a database but never clear it.
pub async fn unscrubbed_databases(
    store: &dyn EvidenceStore,
    project: &str,
    environment: &str,
) -> Result<Vec<Unscrubbed>> {
    let listing = store
        .list(
            &EvidenceFilter::new()
                .project(project)
                .environment(environment),
        )
        .await?;
    let mut decided: Vec<String> = vec![];
    let mut out = vec![];
    // Filed under a commit that is no commit id (the commit filter takes ids only).
    for entry in listing
        .entries
        .iter()
        .filter(|e| e.evidence.commit == STATE_COMMIT)
    {
        for step in &entry.evidence.steps {
            if step.get("step").and_then(|s| s.as_str()) != Some(STEP) {
                continue;
            }
            let findings = step
                .get("findings")
                .and_then(|f| f.as_array())
                .cloned()
                .unwrap_or_default();
            for f in findings {
                let field = |k: &str| f.get(k).and_then(|v| v.as_str()).unwrap_or_default();
                let Some(db) = field("name").strip_prefix("database ") else {
                    continue;
                };
                let ok = f.get("ok").and_then(|v| v.as_bool()).unwrap_or(false);
                if decided.iter().any(|d| d == db) || (ok && !entry.intact) {
                    continue;
                }
                decided.push(db.to_owned());
                if !ok {
                    out.push(Unscrubbed {
                        database: db.to_owned(),
                        message: field("message").to_owned(),
                        recorded_at: entry.evidence.recorded_at.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Refuses a run on `environment` while one of its databases holds unscrubbed production
/// data, naming that state; with `allow` (`--allow-unscrubbed`) the run goes on and the
/// override is recorded in the evidence store first (refused when it cannot be recorded).
/// Returns the overridden databases.
pub async fn refuse_unscrubbed(
    store: &DynEvidenceStore,
    spec: &LoadedSpec,
    environment: &str,
    command: &str,
    allow: bool,
) -> Result<Vec<Unscrubbed>> {
    let found = unscrubbed_databases(
        &**store,
        &spec.spec.project.name,
        &spec.state_key(environment),
    )
    .await?;
    if found.is_empty() {
        return Ok(found);
    }
    let names: Vec<String> = found
        .iter()
        .map(|u| format!("`{}` (since {})", u.database, u.recorded_at))
        .collect();
    if !allow {
        return Err(Error::PermissionDenied {
            provider: "staging".into(),
            message: format!(
                "`{environment}` holds UNSCRUBBED production data in database {}: `{command}` refuses until `staging refresh --env {environment}` passes with its scrub (a fork from production, a failed or interrupted scrub, or a copy without a scrub leaves this state); --allow-unscrubbed runs anyway and is recorded",
                names.join(", ")
            ),
        });
    }
    let findings = found
        .iter()
        .map(|u| {
            Finding::failed(
                // Named so that it decides nothing: the data stays unscrubbed.
                format!("override of database {}", u.database),
                format!(
                    "`{command}` ran with --allow-unscrubbed on unscrubbed data ({})",
                    u.message
                ),
            )
        })
        .collect();
    let report = StepReport::from_findings(
        STEP,
        format!("--allow-unscrubbed: `{command}` ran on unscrubbed data"),
        findings,
    );
    store
        .record(&state_evidence(spec, environment, report))
        .await?;
    Ok(found)
}
