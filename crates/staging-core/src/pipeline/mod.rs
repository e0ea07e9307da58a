//! The pipeline: validate → secrets → migrate → deploy → wait → verify commit → smoke →
//! evidence. Each step is a value implementing [`Step`]; the CLI runs a whole [`Pipeline`]
//! (`up`) or one step on its own (`smoke`, `migrate`).
//!
//! Steps share one [`RunContext`]: the spec, the environment, the commit, the resolved
//! variables, the services' handles and URLs once deployed. A step that fails stops the run;
//! the steps after it are reported as skipped.

mod evidence;
mod reverify;
mod rollback;
mod sent;
mod steps;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::error::{Error, ErrorClass, Result};
use crate::provider::{Deploy, DynProvider, ServiceHandle};
use crate::redact::Redactor;
use crate::spec::{LoadedSpec, Template};

pub use evidence::{Evidence, EvidenceRef, EvidenceStep, evidence_dir, write_record};
pub use reverify::ReverifyStep;
pub use rollback::{AutoRollbackStep, RollbackStep, RolledBack, roll_back};
pub use sent::{
    CANCEL_TIMEOUT, CancelOutcome, CancelReport, READ_BACK_TIMEOUT, SentDeploy, SentDeploys,
    cancel_sent,
};
pub use steps::{
    ACCESS_TIMEOUT, DeployStep, IsolationStep, LocateStep, PREFLIGHT_TIMEOUT, ValidateStep,
    VarAction, VarChange, VerifyCommitStep, WaitStep, check_access, commits_match,
    is_full_commit_id, preflight, service_receives, var_changes,
};

/// Shows the progress of long waits. The CLI draws a spinner on a TTY; tests and `--json`
/// runs use [`NoProgress`].
pub trait Progress: Debug + Send + Sync {
    /// A step began.
    fn start(&self, step: &str);
    /// A new status line for the running step.
    fn message(&self, step: &str, message: &str);
    /// The step ended.
    fn finish(&self, step: &str);
    /// A step's report is ready (also for steps skipped without running), so a display can
    /// show each step as it ends rather than all at the end.
    fn report(&self, report: &StepReport) {
        let _ = report;
    }
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _step: &str) {}
    fn message(&self, _step: &str, _message: &str) {}
    fn finish(&self, _step: &str) {}
}

/// A deployed service, as the pipeline knows it after the deploy step.
#[derive(Debug, Clone)]
pub struct DeployedService {
    /// Where it is.
    pub handle: ServiceHandle,
    /// The deploy started by this run.
    pub deploy_id: Option<String>,
    /// Its public URL, once known.
    pub url: Option<url::Url>,
}

/// Everything the steps of one run share.
#[derive(Debug)]
pub struct RunContext {
    /// The spec.
    pub spec: Arc<LoadedSpec>,
    /// The environment being run (`staging`).
    pub environment: String,
    /// The commit being deployed and checked.
    pub commit: String,
    /// The provider of the environment, once built.
    pub provider: Option<DynProvider>,
    /// Variable values for this environment, once the secrets step has read them.
    pub vars: BTreeMap<String, SecretString>,
    /// The variables whose value still waits for pipeline references the secrets step could
    /// not fill in (`API_URL = "${services.api.url}"`), with those references: their value
    /// in [`RunContext::vars`] is the template in spec syntax, which the deploy step renders
    /// once the services named are located.
    pub deferred: BTreeMap<String, Vec<String>>,
    /// The services, once located or deployed.
    pub services: BTreeMap<String, DeployedService>,
    /// The deploy each service served before this run's deploy (recorded by the deploy
    /// step): where [`AutoRollbackStep`] returns a service whose new deploy failed its checks.
    pub live_before: BTreeMap<String, Deploy>,
    /// The deploy each service served when the verify step found it serving the run's
    /// commit: what [`ReverifyStep`] expects to find still live after smoke, and the deploy
    /// ids the evidence records.
    pub verified: BTreeMap<String, Deploy>,
    /// The variables the deploy step changed on each service, as they were before it wrote
    /// them: what [`AutoRollbackStep`] puts back after a failed promote.
    pub env_before: BTreeMap<String, crate::env_snapshot::EnvSnapshot>,
    /// Services whose deploy of this run was held back and never took the traffic (Vercel's
    /// staged deployment, not promoted): [`AutoRollbackStep`] rolls nothing of theirs back.
    pub held_back: std::collections::BTreeSet<String>,
    /// Every deploy request the deploy step sent, from the moment before it was sent (its id
    /// once the answer is in): what an interrupted run cancels ([`cancel_sent`]), also when
    /// the signal came while an answer was still on its way.
    pub sent_deploys: SentDeploys,
    /// Deploy every service even when it already serves the run's commit with the run's
    /// variables (`staging up --redeploy`). Off by default: such a service is left as it is
    /// and reported so ([`DeployStep`]).
    pub redeploy: bool,
    /// Each service's platform target as the effective settings name it (`render service
    /// service_name=shop-worker-staging`), once the isolation step has worked it out; the
    /// deploy step's report names it next to the platform id.
    pub targets: BTreeMap<String, String>,
    /// The run's write boundary, once the isolation step (or, outside a pipeline, the
    /// command's own isolation check) has issued it: the only source of the targets every
    /// platform write needs ([`crate::boundary`]). Without one, nothing is written.
    pub boundary: Option<crate::boundary::WriteBoundary>,
    /// Captures made by probes (`${capture.NAME}`).
    pub captures: BTreeMap<String, SecretString>,
    /// The provider's own platform checks, run with the spec's probes (filled by the
    /// validate step from [`crate::ProviderFactory::probes`]).
    pub provider_probes: Vec<crate::probe::DynProbe>,
    /// The redactor every output passes through.
    pub redactor: Redactor,
    /// Progress display.
    pub progress: Arc<dyn Progress>,
    /// The reports of the steps run so far.
    pub reports: Vec<StepReport>,
    /// The secret sources beyond the spec's own stores (a provider's store, database
    /// branches) the secrets step and the others that read variables reach: set by whoever
    /// composes the run (none by default).
    pub backends: crate::SecretBackends,
    /// The ledger of the instance this run stands up, when the environment is ephemeral
    /// (`up --instance`): every creation is recorded in it before its request and after its
    /// answer, so `staging down` deletes exactly what the instance created
    /// ([`crate::teardown`]). Set by whoever composes the run.
    pub ledger: Option<crate::teardown::Ledger>,
}

impl RunContext {
    /// A context for `environment` at `commit`.
    pub fn new(
        spec: Arc<LoadedSpec>,
        environment: impl Into<String>,
        commit: impl Into<String>,
    ) -> Result<Self> {
        let environment = environment.into();
        spec.spec.environment(&environment)?;
        Ok(RunContext {
            spec,
            environment,
            commit: commit.into(),
            provider: None,
            vars: BTreeMap::new(),
            deferred: BTreeMap::new(),
            services: BTreeMap::new(),
            live_before: BTreeMap::new(),
            verified: BTreeMap::new(),
            env_before: BTreeMap::new(),
            held_back: Default::default(),
            sent_deploys: SentDeploys::default(),
            redeploy: false,
            targets: BTreeMap::new(),
            boundary: None,
            captures: BTreeMap::new(),
            provider_probes: vec![],
            redactor: Redactor::global().clone(),
            progress: Arc::new(NoProgress),
            reports: vec![],
            backends: crate::SecretBackends::default(),
            ledger: None,
        })
    }

    /// The run's write boundary, or a refusal (exit 2) when no isolation check issued one.
    pub fn boundary(&self) -> Result<&crate::boundary::WriteBoundary> {
        self.boundary.as_ref().ok_or_else(|| {
            Error::config(format!(
                "no isolation check ran for `{}`, so nothing may be written: the isolation step must run before any step that writes",
                self.environment
            ))
        })
    }

    /// The target for a write to `handle`, issued by the run's boundary right before the
    /// write (a service created earlier in the run is compared like any other).
    pub fn write_target(&self, handle: ServiceHandle) -> Result<crate::boundary::WriteTarget> {
        self.boundary()?.target(handle)
    }

    /// The provider, or an error saying which step should have built it.
    pub fn provider(&self) -> Result<&DynProvider> {
        self.provider
            .as_ref()
            .ok_or_else(|| Error::config("no provider: the deploy step must run first"))
    }

    /// Record a variable's value and register it with the redactor when it is a secret.
    pub fn set_var(&mut self, name: impl Into<String>, value: SecretString, secret: bool) {
        if secret {
            self.redactor.register(&value);
        }
        self.vars.insert(name.into(), value);
    }

    /// The value of a pipeline variable (`commit`, `env`, `services.web.url`, `vars.X`,
    /// `capture.X`).
    pub fn lookup(&self, name: &str) -> Option<String> {
        match name {
            "commit" => Some(self.commit.clone()),
            "env" => Some(self.environment.clone()),
            "project" => Some(self.spec.spec.project.name.clone()),
            _ => {
                if let Some(rest) = name.strip_prefix("services.") {
                    let (svc, field) = rest.split_once('.')?;
                    let s = self.services.get(svc)?;
                    return match field {
                        "url" => s
                            .url
                            .as_ref()
                            .map(|u| u.as_str().trim_end_matches('/').to_owned()),
                        _ => None,
                    };
                }
                if let Some(var) = name.strip_prefix("vars.") {
                    return self.vars.get(var).map(|v| v.expose_secret().to_owned());
                }
                if let Some(c) = name.strip_prefix("capture.") {
                    return self.captures.get(c).map(|v| v.expose_secret().to_owned());
                }
                None
            }
        }
    }

    /// `template` with every pipeline variable filled in (each value once, as it is).
    pub fn render(&self, template: &Template) -> Result<String> {
        template
            .render(&|n| self.lookup(n))
            .map_err(|e| Error::config(e.to_string()))
    }
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Ran and everything held.
    Passed,
    /// Ran and found a problem.
    Failed,
    /// Could not run (provider unreachable, auth refused, bad input).
    Error,
    /// Not run, because an earlier step failed or there was nothing to do.
    Skipped,
}

/// One finding of a step: a check with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked (`web`, `JWT_SECRET`, `health`).
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// What it found, in a few words.
    pub message: String,
    /// What was expected, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What was seen, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// How long it took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// It was not checked at all (a probe excluded from this environment, or cut short by
    /// fail-fast); `ok` is true, but it validated nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// The check could not be made at all (the probe could not connect, resolve or run),
    /// as opposed to a check that ran and found a wrong answer; JUnit reports it as
    /// `<error>`, not `<failure>`. Only on failed findings.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub errored: bool,
    /// What a failed check saw beyond expected and observed, already redacted and
    /// shortened by the check (a probe's `request`, `status`, the start of the `body`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<(String, String)>,
}

impl Finding {
    /// A check that held.
    pub fn ok(name: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            name: name.into(),
            ok: true,
            message: message.into(),
            expected: None,
            observed: None,
            duration_ms: None,
            skipped: false,
            errored: false,
            details: vec![],
        }
    }

    /// A check that did not hold.
    pub fn failed(name: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            name: name.into(),
            ok: false,
            message: message.into(),
            expected: None,
            observed: None,
            duration_ms: None,
            skipped: false,
            errored: false,
            details: vec![],
        }
    }

    /// A check that was not made, and why (`skipped: <reason>` in the message).
    pub fn skipped(name: impl Into<String>, reason: &str) -> Self {
        Finding {
            skipped: true,
            ..Finding::ok(name, format!("skipped: {reason}"))
        }
    }

    /// Add expected and observed values.
    pub fn with_evidence(
        mut self,
        expected: impl Into<String>,
        observed: impl Into<String>,
    ) -> Self {
        self.expected = Some(expected.into());
        self.observed = Some(observed.into());
        self
    }

    /// Add what the check saw (see [`Finding::details`]).
    pub fn with_details(mut self, details: impl IntoIterator<Item = (String, String)>) -> Self {
        self.details.extend(details);
        self
    }

    /// Mark a failed check as one that could not be made at all (see [`Finding::errored`]).
    pub fn could_not_run(mut self) -> Self {
        self.errored = !self.ok;
        self
    }

    /// Add a duration.
    pub fn with_duration(mut self, d: Duration) -> Self {
        self.duration_ms = Some(d.as_millis() as u64);
        self
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    /// The step (`deploy`).
    pub step: String,
    /// Its result.
    pub status: StepStatus,
    /// One line on what it found.
    pub summary: String,
    /// Its findings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// How long it took.
    pub duration_ms: u64,
    /// The exit code class of an error, when status is `error`.
    #[serde(skip)]
    pub error_class: Option<ErrorClass>,
}

impl StepReport {
    /// A report from findings: passed when all hold.
    pub fn from_findings(step: &str, summary: impl Into<String>, findings: Vec<Finding>) -> Self {
        let ok = findings.iter().all(|f| f.ok);
        StepReport {
            step: step.to_owned(),
            status: if ok {
                StepStatus::Passed
            } else {
                StepStatus::Failed
            },
            summary: summary.into(),
            findings,
            duration_ms: 0,
            error_class: None,
        }
    }

    /// A step that passed.
    pub fn passed(step: &str, summary: impl Into<String>) -> Self {
        Self::from_findings(step, summary, vec![])
    }

    /// A step that did not run.
    pub fn skipped(step: &str, why: impl Into<String>) -> Self {
        StepReport {
            step: step.to_owned(),
            status: StepStatus::Skipped,
            summary: why.into(),
            findings: vec![],
            duration_ms: 0,
            error_class: None,
        }
    }

    /// A step that ended in an error.
    pub fn error(step: &str, error: &Error) -> Self {
        let class = error.class();
        StepReport {
            step: step.to_owned(),
            status: if class == ErrorClass::Failed {
                StepStatus::Failed
            } else {
                StepStatus::Error
            },
            summary: error.to_string(),
            findings: vec![],
            duration_ms: 0,
            error_class: Some(class),
        }
    }

    /// Whether the run may go on after this step.
    pub fn ok(&self) -> bool {
        matches!(self.status, StepStatus::Passed | StepStatus::Skipped)
    }
}

/// One step of the pipeline.
#[async_trait]
pub trait Step: Debug + Send + Sync {
    /// The step's name (`deploy`), as reports show it.
    fn name(&self) -> &'static str;

    /// Run the step. Problems it finds go in the report; `Err` is for a step that could not
    /// run at all.
    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport>;

    /// Whether the step runs after an earlier step failed (the others are skipped): the
    /// evidence step, so that a failed run is recorded, and the automatic rollback, which a
    /// failure calls for.
    fn runs_after_failure(&self) -> bool {
        self.name() == EvidenceStep::NAME
    }
}

/// A sequence of steps.
#[derive(Debug, Default)]
pub struct Pipeline {
    steps: Vec<Box<dyn Step>>,
}

/// The outcome of a whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Whether every step passed.
    pub ok: bool,
    /// The project.
    pub project: String,
    /// The environment.
    pub environment: String,
    /// The commit.
    pub commit: String,
    /// SHA-256 of the spec file.
    pub spec_hash: String,
    /// SHA-256 of the effective spec (see [`crate::spec::LoadedSpec::effective_hash`]).
    pub effective_spec_hash: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339).
    pub finished_at: String,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
}

impl RunReport {
    /// The exit code the CLI returns for this run: 0, or the worst step's class.
    pub fn exit_code(&self) -> u8 {
        if self.ok {
            return 0;
        }
        let classes = self.steps.iter().filter_map(|s| match s.status {
            StepStatus::Failed => Some(s.error_class.unwrap_or(ErrorClass::Failed)),
            StepStatus::Error => Some(s.error_class.unwrap_or(ErrorClass::CannotProceed)),
            _ => None,
        });
        classes.map(ErrorClass::exit_code).max().unwrap_or(1)
    }
}

/// One step's outcome in the log: its status, summary and duration at `info`, each of its
/// findings at `debug` (`-vv`).
fn log_step(report: &StepReport) {
    let first = report.summary.lines().next().unwrap_or_default();
    let status = format!("{:?}", report.status).to_lowercase();
    tracing::info!(
        step = %report.step,
        status = %status,
        duration_ms = report.duration_ms,
        "{}: {status}: {first}",
        report.step
    );
    for f in &report.findings {
        let verdict = if f.skipped {
            "skipped"
        } else if f.ok {
            "held"
        } else {
            "did not hold"
        };
        tracing::debug!(step = %report.step, "{}: {verdict}: {}", f.name, f.message);
    }
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a step at the end.
    pub fn step(mut self, step: impl Step + 'static) -> Self {
        self.steps.push(Box::new(step));
        self
    }

    /// Add a step, already boxed, at the end (the steps a provider contributes,
    /// [`crate::ProviderRegistry::run_steps`]).
    pub fn boxed_step(mut self, step: Box<dyn Step>) -> Self {
        self.steps.push(step);
        self
    }

    /// The names of the steps, in order.
    pub fn step_names(&self) -> Vec<&'static str> {
        self.steps.iter().map(|s| s.name()).collect()
    }

    /// Run every step in order; after a failure the rest are skipped, except those that
    /// [run after a failure](Step::runs_after_failure) (the evidence step, so a failed run is
    /// recorded too; the automatic rollback).
    pub async fn run(&self, ctx: &mut RunContext) -> RunReport {
        let started = SystemTime::now();
        let mut failed = false;
        for step in &self.steps {
            let name = step.name();
            if failed && !step.runs_after_failure() {
                tracing::info!(step = name, "skipping {name}: an earlier step failed");
                let skipped = StepReport::skipped(name, "an earlier step failed");
                ctx.progress.report(&skipped);
                ctx.reports.push(skipped);
                continue;
            }
            ctx.progress.start(name);
            tracing::info!(step = name, environment = %ctx.environment, "{name}: starting");
            let t = Instant::now();
            let mut report = match step.run(ctx).await {
                Ok(r) => r,
                Err(e) => StepReport::error(name, &e),
            };
            ctx.progress.finish(name);
            report.duration_ms = t.elapsed().as_millis() as u64;
            log_step(&report);
            failed |= !report.ok();
            ctx.progress.report(&report);
            ctx.reports.push(report);
        }
        let reports = ctx.reports.clone();
        RunReport {
            ok: reports.iter().all(StepReport::ok),
            project: ctx.spec.spec.project.name.clone(),
            environment: ctx.environment.clone(),
            commit: ctx.commit.clone(),
            spec_hash: ctx.spec.hash.clone(),
            effective_spec_hash: ctx.spec.effective_hash.clone(),
            started_at: humantime::format_rfc3339_millis(started).to_string(),
            finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            steps: reports,
        }
    }
}
