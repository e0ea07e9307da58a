//! The commands that operate on what is live — `rollback`, `logs`, `smoke`, `secrets sync`
//! and `secrets rotate`, `validate --online` — as methods of a [`Staging`] session. Each
//! takes the environment's provider from the session ([`Staging::provider`]): built once
//! for the environment while anything holds it, never by the caller.

use std::time::Duration;

use staging_core::ProviderExt;
use staging_core::isolation::Writes;
use staging_core::pipeline::{
    LocateStep, Pipeline, RollbackStep, RunContext, RunReport, StepReport, StepStatus, ValidateStep,
};
use staging_core::{
    Capability, DynProvider, Error, ErrorClass, LogLine, LogQuery, Redactor, Result, ServiceHandle,
};
use staging_evidence::RecordEvidence;
use staging_smoke::{SmokeReport, SmokeStep};

use crate::{Run, RunOutcome, Staging};

/// The shortest pause between two reads of a followed log, whatever the provider allows.
pub const MIN_FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// What to say when services of a provider that runs them in its own process (local) are
/// not running: they live only inside the `staging up` that started them.
pub fn not_running_message(provider: &str, env: &str, services: &[&str]) -> String {
    format!(
        "nothing is running for {} of `{env}`: services of the {provider} provider live only as long as the `staging up` that started them; run `staging up --keep-running --env {env}` in another terminal",
        services
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Options of [`Staging::rollback`].
#[derive(Debug, Clone, Default)]
pub struct RollbackOptions {
    /// Only this service (default: every service of the spec).
    pub service: Option<String>,
    /// Roll back to this deploy (the provider's deploy id) instead of the previous live
    /// one; needs `service`.
    pub to: Option<String>,
}

/// Options of [`Staging::smoke`].
#[derive(Debug, Default)]
pub struct SmokeOptions {
    /// The smoke step (default: the spec's probes, run as the spec says).
    pub step: Option<SmokeStep>,
    /// Probe although the environment holds unscrubbed production data.
    pub allow_unscrubbed: bool,
}

/// What [`Staging::smoke`] did.
#[derive(Debug)]
pub struct SmokeRun {
    /// The run as the report files show it: the setup steps (validate, secrets, locate),
    /// then the probes' step (or the error that left nothing to probe).
    pub report: RunReport,
    /// The run's context (its redactor masks what the reports print).
    pub context: RunContext,
    /// How it ended.
    pub outcome: SmokeOutcome,
}

/// How a [`SmokeRun`] ended.
#[derive(Debug)]
pub enum SmokeOutcome {
    /// A setup step failed: no probe ran (the report says which step).
    SetupFailed,
    /// Services of a provider that runs them in this process are not running: nothing to
    /// probe (the run cannot proceed, exit 3). The message says what to do.
    NotRunning(String),
    /// The probes ran.
    Probed(SmokeReport),
}

/// The lines of one service's log ([`Staging::logs`]): find it ([`LogReader::locate`]),
/// then read, as often as [`LogReader::poll_interval`] allows.
#[derive(Debug)]
pub struct LogReader {
    environment: String,
    service: String,
    provider: DynProvider,
    handle: Option<ServiceHandle>,
}

/// Whether a [`LogReader`] found something to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// The service is there: [`LogReader::read`].
    Ready,
    /// Services of a provider that runs them in this process are not running: nothing to
    /// read (the run cannot proceed, exit 3). The message says what to do.
    NotRunning(String),
}

impl LogReader {
    /// The service read.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The pause between two reads of a followed log: the provider's, at least
    /// [`MIN_FOLLOW_INTERVAL`].
    pub fn poll_interval(&self) -> Duration {
        self.provider.poll_interval().max(MIN_FOLLOW_INTERVAL)
    }

    /// Find the service on the platform.
    pub async fn locate(&mut self) -> Result<Located> {
        let handle = self
            .provider
            .locate(&self.environment, &self.service)
            .await?;
        if self.provider.runs_services_in_process()
            && self.provider.live_state(&handle).await?.live.is_none()
        {
            return Ok(Located::NotRunning(not_running_message(
                self.provider.name(),
                &self.environment,
                &[&self.service],
            )));
        }
        self.handle = Some(handle);
        Ok(Located::Ready)
    }

    /// The lines `query` asks, oldest first, each masked by the process's redactor (what
    /// [`Staging::mask_secrets`] registered, URL passwords). Locates the service first when
    /// [`LogReader::locate`] was not called; nothing running is an error then.
    pub async fn read(&mut self, query: &LogQuery) -> Result<Vec<LogLine>> {
        if self.handle.is_none()
            && let Located::NotRunning(message) = self.locate().await?
        {
            return Err(Error::failed(message));
        }
        let Some(handle) = &self.handle else {
            return Err(Error::failed("the service was not located"));
        };
        let lines = self.provider.logs(handle, query).await?;
        let redactor = Redactor::global();
        Ok(lines
            .into_iter()
            .map(|mut line| {
                line.text = redactor.redact(&line.text).into_owned();
                line
            })
            .collect())
    }
}

impl Staging {
    /// The provider of `environment`, its settings checked: one per environment while
    /// anything (a run's context, this caller) holds it, built again only once nothing
    /// does. Every command of the session takes its provider from here (or, in a run's
    /// steps, from the session's registry, which gives the same one).
    pub fn provider(&self, environment: &str) -> Result<DynProvider> {
        self.registry.check(&self.spec, environment)?;
        self.registry
            .factory_for(&self.spec, environment)?
            .build(&self.spec, environment)
    }

    /// The provider of `environment`, refused (not supported) unless it can do `what`.
    fn provider_that_can(
        &self,
        environment: &str,
        capability: Capability,
        what: impl FnOnce() -> String,
    ) -> Result<DynProvider> {
        let provider = self.provider(environment)?;
        if !provider.capabilities().has(capability) {
            return Err(Error::not_supported(provider.name(), what()));
        }
        Ok(provider)
    }

    /// `staging validate --online`: [`Staging::validate`], then each environment's
    /// provider asked once, bounded, whether it accepts the credentials and answers
    /// (changes nothing): what `up` checks before its first step.
    pub async fn validate_online(&self, environment: Option<&str>) -> Result<Vec<String>> {
        let envs = self.validate(environment).await?;
        for env in &envs {
            let _held = self.provider(env)?;
            staging_core::pipeline::preflight(&self.registry, &self.spec, env).await?;
        }
        Ok(envs)
    }

    /// The rollback of `environment` ready to go, checked: a provider that cannot roll
    /// back is refused (not supported) and the same isolation check as `up` runs, before
    /// anything runs or is recorded. Its pipeline validates, rolls back (waits until live,
    /// verifies the live commit) and records evidence; the caller runs it under the
    /// environment's lease ([`Staging::lease`]), or calls [`Staging::rollback`].
    pub async fn start_rollback(&self, environment: &str, options: RollbackOptions) -> Result<Run> {
        let provider = self.provider_that_can(environment, Capability::Rollback, || {
            format!("rolling back environment `{environment}` (see the provider's capabilities)")
        })?;
        // A rollback changes deploys: the same isolation check as `up` before the first write.
        let boundary = self
            .check_isolation(environment, Writes::Run, Some(&provider))
            .await?;
        let store = staging_evidence::open_store(&self.spec).await?;
        let mut step = RollbackStep::new();
        if let Some(s) = options.service {
            step = step.service(s);
        }
        if let Some(to) = options.to {
            step = step.to(to);
        }
        let recorded = RecordEvidence::new(store.clone());
        let pipeline = Pipeline::new()
            .step(ValidateStep::new(self.registry.clone()))
            .step(step)
            .step(recorded.clone());
        // The commit is the one the rollback leaves live; the step fills it in.
        let mut context = self.run_context(environment, "unknown")?;
        context.boundary = Some(boundary);
        context.provider = Some(provider);
        Ok(Run {
            pipeline,
            context,
            store,
            recorded,
        })
    }

    /// `staging rollback`: return the services of `environment` (or one) to the previous
    /// live deploy, or to a named one ([`Staging::start_rollback`]), under the
    /// environment's lease, recording evidence. Allowed on protected environments: a
    /// rollback returns to a deploy that was live before, and the record says so.
    pub async fn rollback(
        &self,
        environment: &str,
        options: RollbackOptions,
    ) -> Result<RunOutcome> {
        let run = self.start_rollback(environment, options).await?;
        self.run_leased("rollback", run).await
    }

    /// `staging logs`: a reader of the log of `service` of `environment` (`None`: the
    /// spec's only service). A service the spec does not declare is a usage error; a
    /// provider without logs is refused (not supported). Reads nothing yet.
    pub fn logs(&self, environment: &str, service: Option<&str>) -> Result<LogReader> {
        let services = &self.spec.spec.services;
        let declared = || services.keys().cloned().collect::<Vec<_>>().join(", ");
        let service = match service {
            Some(s) if services.contains_key(s) => s.to_owned(),
            Some(s) => {
                let hint = staging_core::spec::closest(s, services.keys().map(String::as_str))
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                return Err(Error::config(format!(
                    "no service `{s}` in the spec{hint} (declared: {})",
                    declared()
                )));
            }
            None => match services.keys().collect::<Vec<_>>().as_slice() {
                [one] => (*one).clone(),
                _ => {
                    return Err(Error::config(format!(
                        "which service? pass --service (declared: {})",
                        declared()
                    )));
                }
            },
        };
        let provider = self.provider_that_can(environment, Capability::Logs, || {
            format!("logs of `{service}` (see the provider's capabilities)")
        })?;
        Ok(LogReader {
            environment: environment.to_owned(),
            service,
            provider,
            handle: None,
        })
    }

    /// Register the secret values of `environment` with the process's redactor, so that a
    /// log line (or anything else printed) that holds one is masked. `Err` says what could
    /// not be read; the values read are registered all the same.
    pub async fn mask_secrets(&self, environment: &str) -> Result<()> {
        let resolved =
            staging_secrets::resolve_vars(&self.backends, &self.spec, environment, None).await?;
        for (name, value) in &resolved.values {
            Redactor::global().register_if_secret(
                staging_core::secretness::Origin::Var {
                    spec: &self.spec.spec,
                    environment,
                    name,
                },
                value,
            );
        }
        Ok(())
    }

    /// `staging smoke`: the spec's probes against what is live in `environment` now, the
    /// commit they expect being `commit`. Refuses an environment holding unscrubbed
    /// production data unless `options.allow_unscrubbed`. Validates, resolves the secrets
    /// and locates the services first; a failed setup step, or services of an in-process
    /// provider that are not running, end it before any probe ([`SmokeOutcome`]).
    pub async fn smoke(
        &self,
        environment: &str,
        commit: &str,
        options: SmokeOptions,
    ) -> Result<SmokeRun> {
        self.refuse_unscrubbed(environment, "smoke", options.allow_unscrubbed)
            .await?;
        let mut context = self.run_context(environment, commit)?;
        let setup = Pipeline::new()
            .step(ValidateStep::new(self.registry.clone()))
            .step(staging_secrets::SecretsStep)
            .step(LocateStep);
        let mut report = setup.run(&mut context).await;
        if report
            .steps
            .iter()
            .any(|s| matches!(s.status, StepStatus::Failed | StepStatus::Error))
        {
            return Ok(SmokeRun {
                report,
                context,
                outcome: SmokeOutcome::SetupFailed,
            });
        }
        let not_running = context
            .provider
            .as_ref()
            .filter(|p| p.runs_services_in_process())
            .map(|provider| {
                let services: Vec<&str> = context
                    .services
                    .iter()
                    .filter(|(_, svc)| svc.url.is_none())
                    .map(|(name, _)| name.as_str())
                    .collect();
                (!services.is_empty())
                    .then(|| not_running_message(provider.name(), environment, &services))
            })
            .unwrap_or_default();
        if let Some(message) = not_running {
            let mut step = StepReport::error("smoke", &Error::failed(message.clone()));
            step.status = StepStatus::Error;
            step.error_class = Some(ErrorClass::CannotProceed);
            report.steps.push(step);
            report.ok = false;
            report.finished_at = now();
            return Ok(SmokeRun {
                report,
                context,
                outcome: SmokeOutcome::NotRunning(message),
            });
        }
        let smoke = options.step.unwrap_or_default();
        let smoke_report = smoke.run_report(&context).await?;
        report.steps.push(staging_smoke::step_report(&smoke_report));
        report.ok = smoke_report.ok;
        report.finished_at = now();
        Ok(SmokeRun {
            report,
            context,
            outcome: SmokeOutcome::Probed(smoke_report),
        })
    }

    /// `staging secrets diff A B`: the variables of two environments compared by keyed
    /// fingerprint (never a value), with their rules.
    pub async fn diff_secrets(&self, a: &str, b: &str) -> Result<staging_secrets::DiffReport> {
        staging_secrets::diff(&self.backends, &self.spec, a, b, None).await
    }

    /// `staging secrets sync`: the declared values of `environment` against its provider's
    /// env vars, one key at a time; written only with `options.apply`, after the same
    /// isolation check as `up` (and refused while values break the rules, unless
    /// `options.allow_violations`).
    pub async fn sync_secrets(
        &self,
        environment: &str,
        options: staging_secrets::SyncOptions,
    ) -> Result<staging_secrets::SyncReport> {
        let provider = self.provider(environment)?;
        let boundary = if options.apply {
            Some(
                self.check_isolation(environment, Writes::Env, Some(&provider))
                    .await?,
            )
        } else {
            None
        };
        staging_evidence::sync_checked(
            &self.backends,
            &self.spec,
            environment,
            &provider,
            options,
            &self.registry,
            boundary.as_ref(),
        )
        .await
    }

    /// `staging secrets rotate NAME`: a new value for `name` from the OS CSPRNG, written
    /// to its store and the provider, after the same isolation check as `up`. A dry run
    /// runs every check the rotation would, isolation included, and writes nothing.
    pub async fn rotate_secret(
        &self,
        environment: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<staging_secrets::RotateReport> {
        let provider = self.provider(environment)?;
        let boundary = self
            .check_isolation(environment, Writes::Env, Some(&provider))
            .await?;
        if dry_run {
            staging_secrets::rotate_dry_run(
                &self.backends,
                &self.spec,
                environment,
                name,
                Some(&provider),
            )
            .await
        } else {
            staging_secrets::rotate(
                &self.backends,
                &self.spec,
                environment,
                name,
                Some((&provider, &boundary)),
            )
            .await
        }
    }
}

/// Now, as a report's time.
fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
