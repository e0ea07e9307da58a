//! `staging` as a library: one [`Staging`] session per spec that validates, plans, runs,
//! promotes and compares staging environments — what the `staging` command does, for a
//! program that embeds it. The CLI is a thin layer over this crate: it parses arguments,
//! calls a session and prints the typed reports it gets back (the same structs its
//! `--json` serialises).
//!
//! A session is built once per spec: the providers of this build (the `providers-*`
//! features, [`providers()`]) are registered once, and the secret sources beyond the
//! spec's own stores (a provider's secret store, database branches) are fields of the
//! session, passed down to every run ([`SecretBackends`]); nothing is set process-wide, so
//! two sessions in one process never see each other's.
//!
//! ```no_run
//! # async fn demo() -> staging::Result<()> {
//! let session = staging::Staging::builder()
//!     .providers(staging::providers())
//!     .spec_file("examples/demo/staging.toml")
//!     .build()?;
//! let commit = session.resolve_commit(None)?; // git HEAD, as a full 40-hex id
//! // The whole pipeline: isolation, secrets, migrations, deploy, wait, verify, smoke,
//! // evidence — exactly what `staging up` runs.
//! let run = session.up("staging", &commit).await?;
//! println!("{} of {} steps passed", run.report.steps.iter().filter(|s| s.status == staging_core::pipeline::StepStatus::Passed).count(), run.report.steps.len());
//! // Gated on the evidence `up` just recorded, like `staging promote`.
//! match session.promote("production", &commit, staging::PromoteOptions::default()).await? {
//!     staging::Promotion::Ran(run) => assert!(run.report.ok),
//!     staging::Promotion::Refused(gate) => println!("refused: {:?}", gate.decision),
//! }
//! # Ok(()) }
//! ```
//!
//! Compile only the providers you use:
//!
//! ```toml
//! staging = { version = "0.1", default-features = false, features = ["providers-render"] }
//! ```
#![deny(missing_docs)]

mod branches;
mod compose;
mod import;
mod instances;
mod operate;
pub mod plan;
mod providers;
mod refresh;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use staging_core::ProviderExt;
use staging_core::isolation::Writes;
use staging_core::pipeline::{EvidenceRef, NoProgress, Pipeline, Progress};
use staging_evidence::lease::{Lease, LeaseHolder, LeaseOptions};
use staging_evidence::{DynEvidenceStore, GateDecision, GateRequest, RecordEvidence};

pub use compose::{SpecValues, discover_spec, resolve_commit};
pub use import::{IMPORTABLE, import_config};
pub use instances::{DownOptions, DownReport, Instance, Teardown as TeardownItem};
pub use operate::{
    Located, LogReader, MIN_FOLLOW_INTERVAL, RollbackOptions, SmokeOptions, SmokeOutcome, SmokeRun,
    not_running_message,
};
pub use providers::{branch_secret_store, database_branch, registry as providers};
pub use refresh::RefreshRun;
pub use staging_core::pipeline::{RunContext, RunReport};
pub use staging_core::spec::LoadedSpec;
pub use staging_core::{
    DynProvider, Error, ErrorClass, LogLine, LogQuery, ProviderRegistry, Result, SecretBackends,
};
pub use staging_smoke::SmokeStep;

/// Builds a [`Staging`] session: [`Staging::builder`].
#[derive(Debug, Default)]
pub struct StagingBuilder {
    registry: Option<ProviderRegistry>,
    spec_file: Option<PathBuf>,
    progress: Option<Arc<dyn Progress>>,
    instance: Option<String>,
}

impl StagingBuilder {
    /// The providers the session knows (default: [`providers()`], every provider of this
    /// build's features).
    pub fn providers(mut self, registry: ProviderRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The spec file (default: `staging.toml` in the current directory or the nearest
    /// parent that has one, [`discover_spec`]).
    pub fn spec_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.spec_file = Some(path.into());
        self
    }

    /// The spec file when `path` is `Some`, else the discovered one.
    pub fn spec_file_or_discover(mut self, path: Option<impl Into<PathBuf>>) -> Self {
        self.spec_file = path.map(Into::into);
        self
    }

    /// The instance of an ephemeral environment the session works on (`pr-42`): the spec is
    /// loaded with `${instance}` filled in ([`staging_core::spec::LoadOptions::with_instance`]),
    /// and an ephemeral environment is run, listed and torn down only through one.
    pub fn instance(mut self, instance: Option<impl Into<String>>) -> Self {
        self.instance = instance.map(Into::into);
        self
    }

    /// Where runs show their progress (default: nowhere, [`NoProgress`]).
    pub fn progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Load and check the spec (syntax, keys, types, providers named): the session, or the
    /// error at its place in the file (exit 2).
    pub fn build(self) -> Result<Staging> {
        let base = self.registry.unwrap_or_else(providers::registry);
        let spec = compose::load_spec(self.spec_file.as_deref(), &base, self.instance.as_deref())?;
        // Every provider of the session is built through here: once per environment.
        let registry = providers::shared(base.clone(), &spec)?;
        let backends = providers::backends(&registry);
        Ok(Staging {
            spec,
            registry,
            base,
            backends,
            progress: self.progress.unwrap_or_else(|| Arc::new(NoProgress)),
        })
    }
}

/// One spec, its providers and the secret sources its runs reach: what every command of
/// `staging` works on. Build it with [`Staging::builder`].
///
/// The provider of an environment is built once while anything holds it: the preflight,
/// every step of a run and every command of the session get the same one
/// ([`Staging::provider`]), so a provider's state (a local provider's processes, a rate
/// budget) is one per environment, and dropping the last holder (a run's context) drops it.
#[derive(Debug, Clone)]
pub struct Staging {
    spec: Arc<LoadedSpec>,
    registry: ProviderRegistry,
    /// The registry as given, before the session wrapped it: what a session of another
    /// instance of the same spec starts from ([`Staging::for_instance`]).
    base: ProviderRegistry,
    backends: SecretBackends,
    progress: Arc<dyn Progress>,
}

/// A run of one environment at one commit that passed [`Staging::preflight`]: what
/// [`Staging::start`] takes, so no run starts unchecked. Holds the environment's provider
/// the preflight built, which the run then uses.
#[derive(Debug)]
#[must_use = "a preflight is for starting the run it checked"]
pub struct Preflight {
    environment: String,
    commit: String,
    provider: staging_core::DynProvider,
}

impl Preflight {
    /// The environment checked.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The commit checked (a full id).
    pub fn commit(&self) -> &str {
        &self.commit
    }
}

/// What a run of [`Staging::start`] adds to the pipeline of `up`.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// The smoke step (default: the spec's probes, run as the spec says).
    pub smoke: Option<SmokeStep>,
    /// The evidence record that allowed this run (a promotion), recorded with its own.
    pub promoted_from: Option<EvidenceRef>,
    /// After a deploy that went live but failed verify or smoke, return each service to
    /// the deploy live before (what `promote` does unless told not to).
    pub auto_rollback: bool,
    /// Deploy every service even when it already serves the commit with the run's
    /// variables (`staging up --redeploy`); by default such a service is left as it is.
    pub redeploy: bool,
    /// Run although the environment holds unscrubbed production data
    /// (`--allow-unscrubbed`); the override is recorded in evidence. Without it the
    /// `branches` step refuses such a run, naming the state.
    pub allow_unscrubbed: bool,
}

/// A run ready to go ([`Staging::start`]): the pipeline, the context it runs in and where
/// its evidence goes. The caller runs it (`run.pipeline.run(&mut run.context)`), under the
/// environment's lease ([`Staging::lease`]).
#[derive(Debug)]
pub struct Run {
    /// The steps, in order.
    pub pipeline: Pipeline,
    /// What the steps share; dropping it drops the provider (which stops the services a
    /// local provider runs in this process).
    pub context: RunContext,
    /// The evidence store the spec names.
    pub store: DynEvidenceStore,
    /// The run's evidence step (a clone shares what it recorded: `recorded_id()`).
    pub recorded: RecordEvidence,
}

impl Run {
    /// The id of the evidence record the run wrote, once its evidence step ran.
    pub fn evidence_id(&self) -> Option<String> {
        self.recorded.recorded_id()
    }
}

/// A finished run of `up` or `promote`.
#[derive(Debug)]
pub struct RunOutcome {
    /// What each step did: what `staging up --json` prints.
    pub report: RunReport,
    /// The id of the evidence record written, if the evidence step ran.
    pub evidence_id: Option<String>,
    /// The run's context (its provider holds the services a local provider runs until
    /// this is dropped).
    pub context: RunContext,
}

/// Options of [`Staging::promote`].
#[derive(Debug, Default)]
pub struct PromoteOptions {
    /// The environment whose evidence gates the promotion (default: the one promoting to
    /// the target).
    pub from: Option<String>,
    /// Refuse evidence older than this (default: `project.evidence_max_age`, else 24h).
    pub max_age: Option<Duration>,
    /// Leave a deploy that went live but failed verify or smoke live, instead of rolling
    /// each service back.
    pub no_rollback: bool,
    /// The smoke step (default: the spec's probes).
    pub smoke: Option<SmokeStep>,
    /// Promote although the source or the target environment holds unscrubbed production
    /// data; recorded in the evidence store.
    pub allow_unscrubbed: bool,
}

/// The promotion gate's answer for one commit ([`Staging::gate`]).
#[derive(Debug)]
pub struct Gate {
    /// The environment whose evidence was asked.
    pub from: String,
    /// The environment promoted to.
    pub to: String,
    /// What was asked.
    pub request: GateRequest,
    /// Allowed (with the evidence that allows it) or refused (and why).
    pub decision: GateDecision,
}

/// What [`Staging::promote`] did.
#[derive(Debug)]
pub enum Promotion {
    /// The gate refused: nothing ran.
    Refused(Box<Gate>),
    /// The gate allowed it and the pipeline ran on the target.
    Ran(Box<RunOutcome>),
}

impl Staging {
    /// A builder: `.providers(..)`, `.spec_file(..)`, then `.build()`.
    pub fn builder() -> StagingBuilder {
        StagingBuilder::default()
    }

    /// The spec, as loaded and checked.
    pub fn spec(&self) -> &Arc<LoadedSpec> {
        &self.spec
    }

    /// The providers this session knows.
    pub fn registry(&self) -> &ProviderRegistry {
        &self.registry
    }

    /// The secret sources beyond the spec's own stores that this session's runs reach.
    pub fn backends(&self) -> &SecretBackends {
        &self.backends
    }

    /// The environment `given` names (checked to exist), or the obvious one: the only one,
    /// else the one unprotected environment that promotes to another.
    pub fn environment(&self, given: Option<&str>) -> Result<String> {
        compose::environment(given, &self.spec)
    }

    /// The full id of the commit `given` names (or git HEAD) in the spec's checkout:
    /// [`resolve_commit`] in the spec's directory.
    pub fn resolve_commit(&self, given: Option<&str>) -> Result<String> {
        resolve_commit(&self.spec.base_dir(), given)
    }

    /// A fresh context for a run of `environment` at `commit`, with this session's
    /// progress display and secret sources.
    pub fn run_context(&self, environment: &str, commit: impl Into<String>) -> Result<RunContext> {
        let mut ctx = RunContext::new(self.spec.clone(), environment, commit)?;
        ctx.progress = self.progress.clone();
        ctx.backends = self.backends.clone();
        Ok(ctx)
    }

    /// Refuse (exit 2) before the first write of a command that changes `writes` of
    /// `environment` when any of it is also another environment's, and fail (exit 3) when
    /// what the check must read cannot be read ([`staging_core::isolation`]). Returns the
    /// write boundary the command's platform writes take their targets from.
    pub async fn check_isolation(
        &self,
        environment: &str,
        writes: Writes,
        provider: Option<&staging_core::DynProvider>,
    ) -> Result<staging_core::WriteBoundary> {
        compose::check_isolation(
            &self.registry,
            &self.backends,
            &self.spec,
            environment,
            writes,
            provider,
        )
        .await
    }

    /// The pipeline of `up` for `commit` (and of `promote` with `auto_rollback`), recording
    /// its evidence with `evidence`: validate, isolation, branches, provision, secrets, drift,
    /// migrate, deploy, wait, verify, smoke, reverify, what the spec's providers add,
    /// rollback (promote), evidence. Its branches step creates what is missing and refuses
    /// unscrubbed data ([`RunOptions::allow_unscrubbed`] is [`Staging::start`]'s).
    pub fn up_pipeline(
        &self,
        commit: &str,
        smoke: SmokeStep,
        auto_rollback: bool,
        evidence: RecordEvidence,
    ) -> Pipeline {
        compose::up_pipeline(
            &self.registry,
            &self.backends,
            &self.spec,
            commit,
            smoke,
            auto_rollback,
            branches::BranchOptions {
                create: true,
                allow_unscrubbed: false,
            },
            evidence,
        )
    }

    /// Everything that can refuse a run of `environment` at `commit` before its first
    /// request, then the bounded preflight: creation the environment does not allow
    /// (exit 2), anything the spec and local sources show to be another environment's
    /// (exit 2), missing or refused credentials and an unreachable provider (exit 3).
    /// The [`Preflight`] it returns is what [`Staging::start`] takes.
    pub async fn preflight(&self, environment: &str, commit: &str) -> Result<Preflight> {
        self.spec.check_instance_for(environment)?;
        staging_core::provision::refuse_offline(&self.registry, &self.spec, environment)?;
        compose::check_isolation_offline(
            &self.registry,
            &self.backends,
            &self.spec,
            environment,
            commit,
        )
        .await?;
        // Held from here: the preflight's read and the run's steps use this one provider.
        let provider = self.provider(environment)?;
        staging_core::pipeline::preflight(&self.registry, &self.spec, environment).await?;
        Ok(Preflight {
            environment: environment.to_owned(),
            commit: commit.to_owned(),
            provider,
        })
    }

    /// The run `checked` passed the preflight for, with `options`, ready to go: its
    /// pipeline, a fresh context (holding the preflight's provider) and the evidence store.
    /// The caller runs it under the environment's lease ([`Staging::lease`]).
    pub async fn start(&self, checked: Preflight, options: RunOptions) -> Result<Run> {
        let Preflight {
            environment,
            commit,
            provider,
        } = checked;
        let (environment, commit) = (environment.as_str(), commit.as_str());
        let store = staging_evidence::open_store(&self.spec).await?;
        let mut evidence = RecordEvidence::new(store.clone());
        let promoting = options.promoted_from.is_some();
        if let Some(source) = options.promoted_from {
            evidence = evidence.promoted_from(source);
        }
        let recorded = evidence.clone();
        let pipeline = compose::up_pipeline(
            &self.registry,
            &self.backends,
            &self.spec,
            commit,
            options.smoke.unwrap_or_default(),
            options.auto_rollback,
            branches::BranchOptions {
                // Only `up` creates a branch; a promotion finds it or fails.
                create: !promoting,
                allow_unscrubbed: options.allow_unscrubbed,
            },
            evidence,
        );
        let mut context = self.run_context(environment, commit)?;
        context.redeploy = options.redeploy;
        context.provider = Some(provider);
        context.ledger = self.open_ledger(&store, environment, commit).await?;
        Ok(Run {
            pipeline,
            context,
            store,
            recorded,
        })
    }

    /// Take the lease of `environment` in `store` for `command` (`up`, `promote`) of
    /// `commit`, waiting as `options` says: another run holding it past the wait is an
    /// [`Error::Locked`] (exit 3) naming it.
    pub async fn lease(
        &self,
        store: &DynEvidenceStore,
        environment: &str,
        command: &str,
        commit: Option<&str>,
        options: LeaseOptions,
        on_wait: impl FnMut(&staging_evidence::lease::LeaseRecord) + Send,
    ) -> Result<Lease> {
        let holder = LeaseHolder::this_process(
            &self.spec.spec.project.name,
            // An instance of an ephemeral environment has a lease of its own.
            self.spec.state_key(environment),
            command,
            commit.map(str::to_owned),
        );
        staging_evidence::lease::acquire(store.clone(), holder, options, on_wait).await
    }

    /// Run `run` under a lease of its environment taken without waiting, releasing it after;
    /// the loss of the lease stops the run (an [`Error::Locked`]).
    async fn run_leased(&self, command: &str, mut run: Run) -> Result<RunOutcome> {
        let env = run.context.environment.clone();
        let commit = run.context.commit.clone();
        let ttl = Duration::from_secs(60);
        let options = LeaseOptions {
            ttl,
            wait: Duration::ZERO,
            poll: Duration::from_secs(1),
        };
        let mut lease = self
            .lease(&run.store, &env, command, Some(&commit), options, |_| {})
            .await?;
        let outcome = tokio::select! {
            report = run.pipeline.run(&mut run.context) => Ok(report),
            why = lease.lost() => Err(Error::Locked {
                message: format!(
                    "the run was stopped: {why}; the services it started were stopped and nothing was recorded"
                ),
            }),
        };
        let evidence_id = run.evidence_id();
        let context = run.context;
        let outcome = match outcome {
            Ok(report) => Ok(RunOutcome {
                report,
                evidence_id,
                context,
            }),
            Err(e) => {
                drop(context);
                Err(e)
            }
        };
        if let Err(e) = lease.release().await {
            tracing::warn!("the lease of `{env}` was not released ({e}); it expires by itself");
        }
        outcome
    }

    /// `staging up`: refuse a direct run of an environment that is only promoted to, check
    /// before the first request ([`Staging::preflight`]), then run the whole pipeline on
    /// `environment` at `commit` (a full id: [`Staging::resolve_commit`]) under its lease,
    /// recording evidence. A failed step is in the report (`report.exit_code()`); `Err`
    /// is a run that could not proceed.
    pub async fn up(&self, environment: &str, commit: &str) -> Result<RunOutcome> {
        staging_evidence::check_direct_up(&self.spec, environment)?;
        let checked = self.preflight(environment, commit).await?;
        let run = self.start(checked, RunOptions::default()).await?;
        self.run_leased("up", run).await
    }

    /// The promotion gate for `commit` to `to`: the evidence of `from` (default: the
    /// environment promoting to `to`) for the same commit and spec, no older than
    /// `max_age`.
    pub async fn gate(
        &self,
        from: Option<&str>,
        to: &str,
        commit: &str,
        max_age: Option<Duration>,
    ) -> Result<Gate> {
        let (from, to) = staging_evidence::promotion_pair(&self.spec, from, to)?;
        let store = staging_evidence::open_store(&self.spec).await?;
        let mut request = GateRequest::new(&self.spec, &from, &to, commit);
        if let Some(age) = max_age {
            request = request.with_max_age(age);
        }
        let decision = staging_evidence::check_gate(&*store, &request).await?;
        Ok(Gate {
            from,
            to,
            request,
            decision,
        })
    }

    /// `staging promote`: the gate ([`Staging::gate`]); when it allows, the pipeline on
    /// `to` at `commit` (rolling back a deploy that went live but failed its checks, unless
    /// `options.no_rollback`), recording evidence that names the record that allowed it.
    pub async fn promote(
        &self,
        to: &str,
        commit: &str,
        options: PromoteOptions,
    ) -> Result<Promotion> {
        let (_, target) =
            staging_evidence::promotion_pair(&self.spec, options.from.as_deref(), to)?;
        let checked = self.preflight(&target, commit).await?;
        // What is promoted was validated on the source's data: never on unscrubbed
        // production data without saying so.
        let (source, _) =
            staging_evidence::promotion_pair(&self.spec, options.from.as_deref(), to)?;
        self.refuse_unscrubbed(&source, "promote", options.allow_unscrubbed)
            .await?;
        let gate = self
            .gate(options.from.as_deref(), to, commit, options.max_age)
            .await?;
        let allowed_by = match &gate.decision {
            GateDecision::Allowed { evidence } => evidence.reference(),
            GateDecision::Refused { .. } => return Ok(Promotion::Refused(Box::new(gate))),
        };
        let run = self
            .start(
                checked,
                RunOptions {
                    smoke: options.smoke,
                    promoted_from: Some(allowed_by),
                    auto_rollback: !options.no_rollback,
                    redeploy: false,
                    allow_unscrubbed: options.allow_unscrubbed,
                },
            )
            .await?;
        self.run_leased("promote", run)
            .await
            .map(|outcome| Promotion::Ran(Box::new(outcome)))
    }

    /// Refuse `command` on `environment` while one of its databases holds unscrubbed
    /// production data, unless `allow` (then the override is recorded in the evidence
    /// store first, and refused when it cannot be).
    pub async fn refuse_unscrubbed(
        &self,
        environment: &str,
        command: &str,
        allow: bool,
    ) -> Result<()> {
        let store = staging_evidence::open_store(&self.spec).await?;
        staging_evidence::refuse_unscrubbed(&store, &self.spec, environment, command, allow)
            .await
            .map(drop)
    }

    /// `staging diff A B`: drift between two environments — variables by keyed
    /// fingerprint (never a value), the rules between them, migrations, and what each
    /// environment's platform holds (read through its provider; what cannot be read is
    /// said in the report).
    pub async fn diff(&self, a: &str, b: &str) -> Result<staging_evidence::DriftReport> {
        let mut report =
            staging_evidence::diff_environments(&self.backends, &self.spec, a, b).await?;
        report
            .add_platform(&self.backends, &self.spec, &self.registry)
            .await;
        Ok(report)
    }

    /// `staging secrets check`: every declared variable of `environment`, resolved and
    /// judged by its rules.
    pub async fn check_secrets(
        &self,
        environment: &str,
        commit: Option<&str>,
    ) -> Result<staging_secrets::CheckReport> {
        staging_secrets::check(&self.backends, &self.spec, environment, commit).await
    }

    /// The evidence records of `environment`, newest first (what `staging evidence list`
    /// shows).
    pub async fn evidence(
        &self,
        environment: &str,
    ) -> Result<Vec<staging_evidence::EvidenceSummary>> {
        let store = staging_evidence::open_store(&self.spec).await?;
        let filter = staging_evidence::EvidenceFilter::new()
            .project(self.spec.spec.project.name.clone())
            .environment(environment);
        Ok(store.list(&filter).await?.summaries())
    }

    /// `staging validate`: every environment's provider settings (or `environment`'s), and
    /// that what each environment's settings name is its own (offline).
    pub async fn validate(&self, environment: Option<&str>) -> Result<Vec<String>> {
        let envs: Vec<String> = match environment {
            Some(e) => {
                self.spec.spec.environment(e)?;
                vec![e.to_owned()]
            }
            None => self.spec.spec.environments.keys().cloned().collect(),
        };
        for env in &envs {
            self.registry.check(&self.spec, env)?;
        }
        staging_core::isolation::check_settings_of(&self.registry, &self.spec, &envs).await?;
        Ok(envs)
    }

    /// What is valid but risky in every environment's settings (or `environment`'s), each
    /// at its place, once ([`staging_core::ProviderFactory::warnings`]): what `staging
    /// validate` prints and `--strict` refuses. Call after [`Staging::validate`].
    pub fn warnings(&self, environment: Option<&str>) -> Result<Vec<staging_core::SpecWarning>> {
        let envs: Vec<String> = match environment {
            Some(e) => vec![e.to_owned()],
            None => self.spec.spec.environments.keys().cloned().collect(),
        };
        let mut out: Vec<staging_core::SpecWarning> = vec![];
        for env in &envs {
            for w in self.registry.warnings(&self.spec, env)? {
                if !out.contains(&w) {
                    out.push(w);
                }
            }
        }
        Ok(out)
    }

    /// `staging plan`: what `up` of `environment` at `commit` would change, read from what
    /// is live, changing nothing ([`plan::Plan`]).
    pub async fn plan(&self, environment: &str, commit: &str) -> Result<plan::Plan> {
        self.spec.check_instance_for(environment)?;
        plan::plan(self, environment, commit).await
    }

    /// `staging status`: the live state of each service of `environment`.
    pub async fn status(&self, environment: &str) -> Result<StatusReport> {
        let provider = self.provider(environment)?;
        let mut services = vec![];
        for name in self.spec.spec.services.keys() {
            let handle = provider.locate(environment, name).await?;
            let state = provider.live_state(&handle).await?;
            services.push(ServiceStatus {
                service: name.clone(),
                id: handle.id.clone(),
                state,
            });
        }
        Ok(StatusReport {
            environment: environment.to_owned(),
            provider: provider.name().to_owned(),
            in_process: provider.runs_services_in_process(),
            services,
        })
    }

    /// The path of the spec file.
    pub fn spec_path(&self) -> &Path {
        &self.spec.path
    }
}

/// The live state of each service of an environment ([`Staging::status`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusReport {
    /// The environment.
    pub environment: String,
    /// Its provider's name.
    pub provider: String,
    /// Whether the provider runs the services in this process (local): then a service not
    /// running is one no process here started.
    #[serde(skip)]
    pub in_process: bool,
    /// Each service.
    pub services: Vec<ServiceStatus>,
}

/// One service in a [`StatusReport`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceStatus {
    /// The service's name in the spec.
    pub service: String,
    /// Its platform id.
    pub id: String,
    /// What is live and what was deployed last.
    pub state: staging_core::LiveState,
}

/// The repository README, whose "Embedding" section is compiled here as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}
