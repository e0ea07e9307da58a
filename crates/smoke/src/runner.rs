//! The runner: bounded concurrency, a timeout per attempt, retries with backoff until a
//! probe's `retry_for` deadline, and an optional stop at the first failure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use staging_core::pipeline::Progress;
use staging_core::{Backoff, DynProbe, Probe, ProbeOutcome, Redactor};
use tokio::task::JoinSet;

use crate::build::SkippedProbe;
use crate::probes::fmt_duration;

/// A probe with its timing settings.
#[derive(Debug, Clone)]
pub struct ScheduledProbe {
    /// The probe.
    pub probe: DynProbe,
    /// Bound on one attempt.
    pub timeout: Duration,
    /// Keep retrying a failing probe until it passes or this much time has passed.
    pub retry_for: Option<Duration>,
}

impl ScheduledProbe {
    /// `probe` with a 10 s timeout and one attempt.
    pub fn new(probe: impl Probe) -> Self {
        ScheduledProbe {
            probe: Arc::new(probe),
            timeout: Duration::from_secs(10),
            retry_for: None,
        }
    }

    /// Bound each attempt by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retry a failing probe, backing off, until `retry_for` has passed.
    pub fn with_retry_for(mut self, retry_for: Duration) -> Self {
        self.retry_for = Some(retry_for);
        self
    }
}

/// How the runner runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerOptions {
    /// At most this many probes run at once (default 16).
    pub concurrency: usize,
    /// Stop at the first failure: probes not finished are reported as skipped.
    pub fail_fast: bool,
    /// First delay between two attempts of a retried probe.
    pub initial_backoff: Duration,
    /// Largest delay between two attempts.
    pub max_backoff: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            concurrency: 16,
            fail_fast: false,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// What became of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// It ran and held.
    Passed,
    /// It ran and did not hold (or could not run).
    Failed,
    /// It did not run (another environment, or fail-fast stopped the run).
    Skipped,
}

/// One probe's entry in a [`SmokeReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The probe's name.
    pub name: String,
    /// Its kind (`http`, `tls`...).
    pub kind: String,
    /// Whether it did not fail (true for passed and skipped probes).
    pub ok: bool,
    /// Passed, failed or skipped.
    pub status: ProbeStatus,
    /// Wall time, all attempts included.
    pub duration_ms: u64,
    /// How many attempts were made (0 when skipped).
    pub attempts: u32,
    /// What was expected, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What was seen, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// What held and what was seen, when it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Facts kept as evidence (certificate subject, resolved addresses, response excerpt).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "evidence_map")]
    pub evidence: Vec<(String, String)>,
    /// It failed because it could not run at all (the probe returned an error: refused
    /// connection, unresolvable name, or it panicked), rather than running and finding a
    /// wrong answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub errored: bool,
}

/// Evidence as a JSON object, in the order the probe gave it.
mod evidence_map {
    use serde::de::Deserializer;
    use serde::ser::{SerializeMap, Serializer};

    pub(super) fn serialize<S: Serializer>(
        v: &[(String, String)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(v.len()))?;
        for (k, val) in v {
            m.serialize_entry(k, val)?;
        }
        m.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, String)>, D::Error> {
        let map: std::collections::BTreeMap<String, String> = serde::Deserialize::deserialize(d)?;
        Ok(map.into_iter().collect())
    }
}

/// The counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Probes that held.
    pub passed: usize,
    /// Probes that did not.
    pub failed: usize,
    /// Probes that did not run.
    pub skipped: usize,
}

/// The result of a smoke run: the one document the human, JSON and JUnit reports render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeReport {
    /// Whether no probe failed.
    pub ok: bool,
    /// The counts.
    pub summary: Summary,
    /// Wall time of the whole run.
    pub duration_ms: u64,
    /// The environment, when run as a step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The commit checked, when run as a step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// One entry per probe: the ones run in the spec's order, then the skipped ones.
    pub probes: Vec<ProbeReport>,
}

impl SmokeReport {
    /// A report of these entries.
    pub fn from_probes(probes: Vec<ProbeReport>, duration: Duration) -> Self {
        let count = |s| probes.iter().filter(|p| p.status == s).count();
        let summary = Summary {
            passed: count(ProbeStatus::Passed),
            failed: count(ProbeStatus::Failed),
            skipped: count(ProbeStatus::Skipped),
        };
        SmokeReport {
            ok: summary.failed == 0,
            summary,
            duration_ms: duration.as_millis() as u64,
            environment: None,
            commit: None,
            probes,
        }
    }

    /// The exit code of `staging smoke`: 0 when every probe held, else 1.
    pub fn exit_code(&self) -> u8 {
        if self.ok { 0 } else { 1 }
    }

    /// The failed entries.
    pub fn failures(&self) -> impl Iterator<Item = &ProbeReport> {
        self.probes
            .iter()
            .filter(|p| p.status == ProbeStatus::Failed)
    }

    /// A copy with every text passed through `redactor`.
    pub fn redacted(&self, redactor: &Redactor) -> SmokeReport {
        let r = |s: &String| redactor.redact(s).into_owned();
        let ro = |s: &Option<String>| s.as_ref().map(r);
        SmokeReport {
            environment: ro(&self.environment),
            commit: ro(&self.commit),
            probes: self
                .probes
                .iter()
                .map(|p| ProbeReport {
                    name: r(&p.name),
                    kind: p.kind.clone(),
                    ok: p.ok,
                    status: p.status,
                    duration_ms: p.duration_ms,
                    attempts: p.attempts,
                    expected: ro(&p.expected),
                    observed: ro(&p.observed),
                    detail: ro(&p.detail),
                    reason: ro(&p.reason),
                    evidence: p.evidence.iter().map(|(k, v)| (r(k), r(v))).collect(),
                    errored: p.errored,
                })
                .collect(),
            ..self.clone()
        }
    }
}

impl ProbeReport {
    fn skipped(name: String, kind: String, reason: String) -> Self {
        ProbeReport {
            name,
            kind,
            ok: true,
            status: ProbeStatus::Skipped,
            duration_ms: 0,
            attempts: 0,
            expected: None,
            observed: None,
            detail: None,
            reason: Some(reason),
            evidence: vec![],
            errored: false,
        }
    }

    fn from_outcome(
        name: String,
        kind: String,
        (outcome, attempts, took, errored): Attempted,
    ) -> Self {
        let mut evidence = outcome.evidence;
        if attempts > 1 {
            evidence.push(("attempts".to_owned(), attempts.to_string()));
        }
        let (expected, observed, detail) = if outcome.ok {
            (
                None,
                None,
                Some(format!("{}: {}", outcome.expected, outcome.observed)),
            )
        } else {
            (Some(outcome.expected), Some(outcome.observed), None)
        };
        ProbeReport {
            name,
            kind,
            ok: outcome.ok,
            status: if outcome.ok {
                ProbeStatus::Passed
            } else {
                ProbeStatus::Failed
            },
            duration_ms: took.as_millis() as u64,
            attempts,
            expected,
            observed,
            detail,
            reason: None,
            evidence,
            errored: errored && !outcome.ok,
        }
    }
}

/// Runs probes. Cheap to build; hold one per run.
#[derive(Debug, Clone, Default)]
pub struct Runner {
    options: RunnerOptions,
    redactor: Redactor,
    progress: Option<Arc<dyn Progress>>,
}

impl Runner {
    /// A runner with these options and an empty redactor of its own.
    pub fn new(options: RunnerOptions) -> Self {
        Runner {
            options,
            redactor: Redactor::new(),
            progress: None,
        }
    }

    /// Redact every text of the report with `redactor`.
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// Report "n/m probes done" to `progress` (under the step name `smoke`).
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Run `probes`, list `skipped` after them, and return the redacted report.
    pub async fn run(
        &self,
        probes: Vec<ScheduledProbe>,
        skipped: Vec<SkippedProbe>,
    ) -> SmokeReport {
        let started = Instant::now();
        let total = probes.len();
        let labels: Vec<(String, String)> = probes
            .iter()
            .map(|p| (p.probe.name().to_owned(), p.probe.kind().to_owned()))
            .collect();
        let mut results: Vec<Option<ProbeReport>> = vec![None; total];
        let mut queue = probes.into_iter().enumerate();
        let mut tasks = JoinSet::new();
        let mut index_of = HashMap::new();
        let mut stopped_by: Option<String> = None;
        let mut done = 0;
        let concurrency = self.options.concurrency.max(1);
        loop {
            while stopped_by.is_none() && tasks.len() < concurrency {
                let Some((i, scheduled)) = queue.next() else {
                    break;
                };
                let options = self.options;
                let handle = tasks.spawn(async move { run_with_retries(scheduled, options).await });
                index_of.insert(handle.id(), i);
            }
            let Some(joined) = tasks.join_next_with_id().await else {
                break;
            };
            let (id, entry) = match joined {
                Ok((id, attempted)) => {
                    let i = index_of[&id];
                    let (name, kind) = labels[i].clone();
                    (id, ProbeReport::from_outcome(name, kind, attempted))
                }
                Err(e) if e.is_cancelled() => continue,
                Err(e) => {
                    let i = index_of[&e.id()];
                    let (name, kind) = labels[i].clone();
                    let outcome = ProbeOutcome::fail(
                        "the probe to finish",
                        "the probe panicked",
                        Duration::ZERO,
                    );
                    (
                        e.id(),
                        ProbeReport::from_outcome(name, kind, (outcome, 1, Duration::ZERO, true)),
                    )
                }
            };
            let i = index_of[&id];
            done += 1;
            if let Some(p) = &self.progress {
                p.message("smoke", &format!("{done}/{total} probes done"));
            }
            if !entry.ok && self.options.fail_fast && stopped_by.is_none() {
                stopped_by = Some(entry.name.clone());
                tasks.abort_all();
            }
            results[i] = Some(entry);
        }
        let mut entries: Vec<ProbeReport> = results
            .into_iter()
            .zip(labels)
            .map(|(r, (name, kind))| {
                r.unwrap_or_else(|| {
                    let why = format!(
                        "not run: fail-fast stopped the run after `{}` failed",
                        stopped_by.as_deref().unwrap_or("?")
                    );
                    ProbeReport::skipped(name, kind, why)
                })
            })
            .collect();
        entries.extend(
            skipped
                .into_iter()
                .map(|s| ProbeReport::skipped(s.name, s.kind, s.reason)),
        );
        SmokeReport::from_probes(entries, started.elapsed()).redacted(&self.redactor)
    }
}

/// The last outcome of a probe, the number of attempts, the wall time, and whether the
/// last attempt could not run at all.
type Attempted = (ProbeOutcome, u32, Duration, bool);

/// Run one probe: attempts bounded by its timeout, retried with backoff while it fails and
/// `retry_for` allows.
async fn run_with_retries(scheduled: ScheduledProbe, options: RunnerOptions) -> Attempted {
    let started = Instant::now();
    let mut backoff = Backoff::new(options.initial_backoff, options.max_backoff);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let attempt_started = Instant::now();
        let (outcome, retryable, errored) =
            match tokio::time::timeout(scheduled.timeout, scheduled.probe.run()).await {
                Ok(Ok(outcome)) => (outcome, true, false),
                Ok(Err(e)) => {
                    let retryable = e.is_retryable();
                    (
                        ProbeOutcome::fail(
                            "the probe to run",
                            e.to_string(),
                            attempt_started.elapsed(),
                        ),
                        retryable,
                        true,
                    )
                }
                Err(_) => {
                    let limit = fmt_duration(scheduled.timeout);
                    (
                        ProbeOutcome::fail(
                            format!("a result within {limit}"),
                            format!("no result after {limit}"),
                            scheduled.timeout,
                        ),
                        true,
                        false,
                    )
                }
            };
        if outcome.ok || !retryable {
            return (outcome, attempts, started.elapsed(), errored);
        }
        let Some(limit) = scheduled.retry_for else {
            return (outcome, attempts, started.elapsed(), errored);
        };
        let delay = backoff.next_delay();
        if started.elapsed() + delay > limit {
            return (outcome, attempts, started.elapsed(), errored);
        }
        tokio::time::sleep(delay).await;
    }
}
