//! The promotion gate: production is deployed only when the environment that promotes to it
//! passed for the same commit, with the same effective spec (the spec after environment
//! variables were filled in, so a probe loosened through one does not count), recently, with probes that actually ran,
//! and the record says so untouched.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use staging_core::pipeline::{Evidence, is_full_commit_id};
use staging_core::spec::LoadedSpec;
use staging_core::{Error, Result};

use crate::store::{EvidenceFilter, EvidenceStore, StoredEvidence};

/// What the gate is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateRequest {
    /// The project (a shared Postgres table may hold others).
    pub project: String,
    /// The environment whose evidence is required (`staging`).
    pub source: String,
    /// The environment to deploy (`production`), for messages.
    pub target: String,
    /// The commit to promote.
    pub commit: String,
    /// The hash of the spec file as it is now (for messages).
    pub spec_hash: String,
    /// The hash of the effective spec as loaded now: what the evidence must have been
    /// recorded under ([`LoadedSpec::effective_hash`]).
    pub effective_spec_hash: String,
    /// How old the evidence may be.
    pub max_age: Duration,
    /// The time to judge age against (now, except in tests).
    pub now: SystemTime,
}

impl GateRequest {
    /// Promote `commit` from `source` to `target` under `spec` as loaded now, with the
    /// spec's `evidence_max_age`.
    pub fn new(spec: &LoadedSpec, source: &str, target: &str, commit: &str) -> Self {
        GateRequest {
            project: spec.spec.project.name.clone(),
            source: source.to_owned(),
            target: target.to_owned(),
            commit: commit.to_owned(),
            spec_hash: spec.hash.clone(),
            effective_spec_hash: spec.effective_hash.clone(),
            max_age: spec.spec.project.evidence_max_age,
            now: SystemTime::now(),
        }
    }

    /// Another maximum age (`--max-age`).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Judge age as of `now`.
    pub fn at(mut self, now: SystemTime) -> Self {
        self.now = now;
        self
    }
}

/// Why the gate refused. Each says what was found and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// The source environment has no evidence at all.
    #[error(
        "`{environment}` has no recorded run for commit {commit} (nor any other): run `staging up --env {environment} --commit {commit}` first"
    )]
    NoRun {
        /// The source environment (`staging`).
        environment: String,
        /// The commit.
        commit: String,
    },
    /// The source environment has evidence, but only for other commits.
    #[error(
        "`{environment}` has evidence only for other commits (latest: {}); commit {commit} never ran there: run `staging up --env {environment} --commit {commit}` first",
        latest.join(", ")
    )]
    OtherCommitOnly {
        /// The source environment (`staging`).
        environment: String,
        /// The commit.
        commit: String,
        /// The commits it has evidence for, newest first (a few).
        latest: Vec<String>,
    },
    /// The latest run of this commit failed.
    #[error(
        "the latest run of commit {commit} on `{environment}` ({id}) failed at step `{step}`: {summary}; fix it and run `{environment}` again (`staging doctor` says why)"
    )]
    RunFailed {
        /// The source environment (`staging`).
        environment: String,
        /// The commit.
        commit: String,
        /// The failed run's evidence id.
        id: String,
        /// The step that failed.
        step: String,
        /// What that step said.
        summary: String,
    },
    /// The latest run of this commit passed without validating anything: every step was
    /// skipped, or the smoke step was skipped, ran no probe, or is missing.
    #[error(
        "{environment} run {id} for commit {commit} {reason}; a run that validated nothing is not evidence: make sure `{environment}` runs probes (`[[probes]]` whose `environments` include it) and run `staging up --env {environment} --commit {commit}` again"
    )]
    NothingValidated {
        /// The source environment (`staging`).
        environment: String,
        /// The commit.
        commit: String,
        /// The run's evidence id.
        id: String,
        /// What it did not do (`skipped every step`, `ran no probe in its smoke step`).
        reason: String,
    },
    /// The commit passed, but under another effective spec: the file changed, or a value
    /// filled in from an environment variable did.
    #[error(
        "the spec changed since commit {commit} ran on `{environment}` ({id}: effective spec {}, now {}{}): what passed there is not what would run on the target; run `{environment}` again with this spec",
        short(evidence_spec_hash),
        short(current_spec_hash),
        if *same_file { "; the file is the same, so a value filled in from an environment variable differs" } else { "" }
    )]
    SpecChanged {
        /// The source environment (`staging`).
        environment: String,
        /// The commit.
        commit: String,
        /// The newest evidence's id.
        id: String,
        /// The effective spec hash in the evidence.
        evidence_spec_hash: String,
        /// The effective spec hash now.
        current_spec_hash: String,
        /// Whether the file's hash is the same (only the environment differs).
        same_file: bool,
    },
    /// The evidence predates effective-spec hashes: it cannot show which spec ran.
    #[error(
        "the run of commit {commit} on `{environment}` ({id}) was recorded without an effective spec hash (an older version of staging wrote it), so it cannot show that the spec that ran there is the one that would run on the target; run `{environment}` again"
    )]
    EffectiveSpecUnknown {
        /// The source environment (`staging`).
        environment: String,
        /// The commit.
        commit: String,
        /// The newest evidence's id.
        id: String,
    },
    /// A record of this commit no longer matches its content hash.
    #[error(
        "evidence of commit {commit} on `{environment}` was edited after it was recorded (its content hash no longer matches): {}; a record the tool did not write cannot vouch for a deploy — remove it and run `{environment}` again",
        ids.join(", ")
    )]
    EvidenceEdited {
        /// The source environment (`staging`).
        environment: String,
        /// The commit.
        commit: String,
        /// The edited records.
        ids: Vec<String>,
    },
    /// A record of this commit can no longer be parsed.
    #[error(
        "evidence of commit {commit} on `{environment}` cannot be read ({}): {reason}; remove it and run `{environment}` again",
        ids.join(", ")
    )]
    EvidenceUnreadable {
        /// The source environment (`staging`).
        environment: String,
        /// The commit.
        commit: String,
        /// The unreadable records.
        ids: Vec<String>,
        /// Why the first cannot be read.
        reason: String,
    },
    /// The passing run is older than allowed.
    #[error(
        "the passing run of commit {commit} on `{environment}` ({id}, recorded {recorded_at}) is {age} old, older than the {max_age} allowed (`evidence_max_age`); run `{environment}` again"
    )]
    TooOld {
        /// The source environment (`staging`).
        environment: String,
        /// The commit.
        commit: String,
        /// The evidence's id.
        id: String,
        /// When it was recorded.
        recorded_at: String,
        /// How old it is (`3days 2h`), or `an unknown time` when its time cannot be read.
        age: String,
        /// How old it may be.
        max_age: String,
    },
}

impl Refusal {
    /// The exit code of a refused promotion: 1.
    pub fn exit_code(&self) -> u8 {
        1
    }

    /// The kind of refusal, as JSON names it (`run_failed`).
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::NoRun { .. } => "no_run",
            Refusal::OtherCommitOnly { .. } => "other_commit_only",
            Refusal::RunFailed { .. } => "run_failed",
            Refusal::NothingValidated { .. } => "nothing_validated",
            Refusal::SpecChanged { .. } => "spec_changed",
            Refusal::EffectiveSpecUnknown { .. } => "effective_spec_unknown",
            Refusal::EvidenceEdited { .. } => "evidence_edited",
            Refusal::EvidenceUnreadable { .. } => "evidence_unreadable",
            Refusal::TooOld { .. } => "too_old",
        }
    }
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum GateDecision {
    /// Promotion may go ahead, on this evidence.
    Allowed {
        /// The evidence that allows it.
        evidence: Box<StoredEvidence>,
    },
    /// Promotion is refused.
    Refused {
        /// Why.
        refusal: Refusal,
    },
}

impl GateDecision {
    /// Whether promotion may go ahead.
    pub fn is_allowed(&self) -> bool {
        matches!(self, GateDecision::Allowed { .. })
    }

    /// The refusal, when refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            GateDecision::Refused { refusal } => Some(refusal),
            GateDecision::Allowed { .. } => None,
        }
    }

    /// 0 when allowed, 1 when refused.
    pub fn exit_code(&self) -> u8 {
        self.refusal().map_or(0, Refusal::exit_code)
    }

    /// The decision as JSON for `--json`, with the refusal's sentence under `message`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let (Some(r), Some(obj)) = (self.refusal(), v.as_object_mut()) {
            obj.insert(
                "message".to_owned(),
                serde_json::Value::String(r.to_string()),
            );
        }
        v
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// The name of the step whose probes are what a run validates.
const SMOKE: &str = "smoke";

/// Why a passing run is no evidence, or `None` when its smoke step ran and passed: at least
/// one probe passed and none failed. A run validates nothing when every step was skipped,
/// when it has no smoke step, when its smoke step was skipped (no probe for this
/// environment), or when the step ran but no probe passed (each probe skipped).
fn unvalidated(evidence: &Evidence) -> Option<String> {
    let text =
        |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_str()).map(str::to_owned);
    let status = |step: &serde_json::Value| text(step, "status").unwrap_or_default();
    if evidence.steps.is_empty() {
        return Some("recorded no step".to_owned());
    }
    if evidence.steps.iter().all(|s| status(s) == "skipped") {
        return Some("skipped every step".to_owned());
    }
    let Some(smoke) = evidence
        .steps
        .iter()
        .find(|s| text(s, "step").as_deref() == Some(SMOKE))
    else {
        return Some("never ran a smoke step".to_owned());
    };
    let summary = text(smoke, "summary").unwrap_or_default();
    match status(smoke).as_str() {
        "passed" => {}
        "skipped" => return Some(format!("skipped the smoke step: {summary}")),
        other => return Some(format!("did not pass the smoke step ({other}: {summary})")),
    }
    // One finding per probe (`staging_smoke::step_report`): passed ones hold, failed ones
    // do not, skipped ones hold with a message beginning `skipped:`. Should a passed probe's
    // message ever begin so, the run is refused, never allowed, by mistake.
    let findings = smoke
        .get("findings")
        .and_then(|f| f.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let holds = |f: &serde_json::Value| f.get("ok").and_then(|o| o.as_bool()) == Some(true);
    if let Some(failed) = findings.iter().find(|f| !holds(f)) {
        let name = text(failed, "name").unwrap_or_default();
        return Some(format!("has a failed probe in its smoke step ({name})"));
    }
    let passed = findings
        .iter()
        .filter(|f| {
            // `skipped` since it exists; the message's prefix in records written before.
            let skipped = f.get("skipped").and_then(|s| s.as_bool()) == Some(true)
                || text(f, "message")
                    .unwrap_or_default()
                    .starts_with("skipped:");
            !skipped
        })
        .count();
    if passed == 0 {
        return Some(format!("ran no probe in its smoke step ({summary})"));
    }
    None
}

fn refused(refusal: Refusal) -> Result<GateDecision> {
    Ok(GateDecision::Refused { refusal })
}

/// Decide whether `request.commit` may be promoted from `request.source`.
///
/// The newest intact run of that commit under the current spec decides, and only if no
/// record of that commit was edited or became unreadable (a tampered record is a reason to
/// stop, not something to look past). It must have passed, and validated something: its
/// smoke step ran, at least one probe passed and none failed (a run whose every step was
/// skipped, or whose smoke step ran no probe, is no evidence). `Err` only when the store
/// cannot be read.
pub async fn check_gate(store: &dyn EvidenceStore, request: &GateRequest) -> Result<GateDecision> {
    let r = request;
    if !is_full_commit_id(r.commit.trim()) {
        return Err(Error::config(format!(
            "`{}` is not a full commit id (40 or 64 hex digits): the gate compares full ids only, so that `abcdef1` cannot stand for `abcdef1fff…` nor `release-1` for `release-10`; resolve it first (`git rev-parse`; the CLI's `--commit` does)",
            r.commit
        )));
    }
    let filter = EvidenceFilter::new()
        .project(&r.project)
        .environment(&r.source);
    let listing = store.list(&filter.clone().commit(&r.commit)).await?;
    let (environment, commit) = (r.source.clone(), r.commit.clone());

    let edited: Vec<String> = listing
        .entries
        .iter()
        .filter(|e| !e.intact)
        .map(|e| e.id.clone())
        .collect();
    if !edited.is_empty() {
        return refused(Refusal::EvidenceEdited {
            environment,
            commit,
            ids: edited,
        });
    }
    if let Some(first) = listing.unreadable.first() {
        return refused(Refusal::EvidenceUnreadable {
            environment,
            commit,
            ids: listing.unreadable.iter().map(|u| u.id.clone()).collect(),
            reason: first.reason.clone(),
        });
    }
    let Some(newest_any) = listing.entries.first() else {
        let others = store.list(&filter).await?;
        let mut latest: Vec<String> = vec![];
        for e in &others.entries {
            if !latest.contains(&e.evidence.commit) && latest.len() < 3 {
                latest.push(e.evidence.commit.clone());
            }
        }
        return refused(if latest.is_empty() {
            Refusal::NoRun {
                environment,
                commit,
            }
        } else {
            Refusal::OtherCommitOnly {
                environment,
                commit,
                latest,
            }
        });
    };
    let Some(newest) = listing
        .entries
        .iter()
        .find(|e| e.evidence.effective_spec_hash.as_ref() == Some(&r.effective_spec_hash))
    else {
        let Some(theirs) = newest_any.evidence.effective_spec_hash.clone() else {
            return refused(Refusal::EffectiveSpecUnknown {
                environment,
                commit,
                id: newest_any.id.clone(),
            });
        };
        return refused(Refusal::SpecChanged {
            environment,
            commit,
            id: newest_any.id.clone(),
            evidence_spec_hash: theirs,
            current_spec_hash: r.effective_spec_hash.clone(),
            same_file: newest_any.evidence.spec_hash == r.spec_hash,
        });
    };
    if !newest.evidence.ok {
        let (step, summary) = newest
            .failed_step()
            .unwrap_or_else(|| ("(unknown)".to_owned(), "the run did not pass".to_owned()));
        return refused(Refusal::RunFailed {
            environment,
            commit,
            id: newest.id.clone(),
            step,
            summary,
        });
    }
    if let Some(reason) = unvalidated(&newest.evidence) {
        return refused(Refusal::NothingValidated {
            environment,
            commit,
            id: newest.id.clone(),
            reason,
        });
    }
    let age = newest.evidence.age_at(r.now);
    if age.is_none_or(|a| a > r.max_age) {
        return refused(Refusal::TooOld {
            environment,
            commit,
            id: newest.id.clone(),
            recorded_at: newest.evidence.recorded_at.clone(),
            age: age
                .map(|a| humantime::format_duration(Duration::from_secs(a.as_secs())).to_string())
                .unwrap_or_else(|| "an unknown time".to_owned()),
            max_age: humantime::format_duration(r.max_age).to_string(),
        });
    }
    Ok(GateDecision::Allowed {
        evidence: Box::new(newest.clone()),
    })
}
