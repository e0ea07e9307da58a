//! Rollback: return a service to an earlier deploy, wait until it is live, and prove the
//! live commit is that deploy's. Two steps use it: [`RollbackStep`] (`staging rollback`,
//! every service or one, to the previous live deploy or a named one) and
//! [`AutoRollbackStep`] (after a `promote` whose deploy went live but whose verify or smoke
//! step failed: every service the run changed goes back to the deploy live before it).
//!
//! Both are ordinary steps, so a rollback is recorded as evidence like any run, on protected
//! environments too: a rollback restores a known state, it does not bring new code.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;

use super::steps::short;
use super::{DeployedService, Finding, RunContext, Step, StepReport, StepStatus, commits_match};
use crate::boundary::WriteTarget;
use crate::error::{Error, Result};
use crate::provider::{Capability, Deploy, DynProvider, ProviderExt, ServiceHandle};

/// One service returned to an earlier deploy, as [`roll_back`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolledBack {
    /// The service's name in the spec and its platform id.
    pub target: ServiceHandle,
    /// The deploy that was live before the rollback, if any.
    pub from: Option<Deploy>,
    /// The deploy the rollback made live.
    pub to: Deploy,
    /// The commit the service serves after the rollback, as the provider reports it.
    pub live_commit: Option<String>,
    /// Whether the live commit is the one of the deploy rolled back to.
    pub verified: bool,
}

impl RolledBack {
    /// `web (srv-1): deploy dep-2 (commit 2222222) → dep-3 (commit 1111111), serving 1111111`.
    pub fn describe(&self) -> String {
        let deploy = |d: &Deploy| {
            format!(
                "deploy {} (commit {})",
                d.id,
                d.commit.as_deref().map(short).unwrap_or("unknown")
            )
        };
        let from = self
            .from
            .as_ref()
            .map(deploy)
            .unwrap_or_else(|| "nothing live".to_owned());
        let serving = match (&self.live_commit, self.verified) {
            (Some(c), true) => format!("serving {}", short(c)),
            (Some(c), false) => format!("but serving {}, not the commit rolled back to", short(c)),
            (None, _) => "but no live commit is reported".to_owned(),
        };
        format!(
            "{} ({}): {from} → {}, {serving}",
            self.target.name,
            self.target.id,
            deploy(&self.to)
        )
    }

    /// The finding a step reports for this rollback: ok when verified, with the commit
    /// rolled back to as expected and the live one as observed otherwise.
    pub fn finding(&self) -> Finding {
        if self.verified {
            Finding::ok(&self.target.name, self.describe())
        } else {
            Finding::failed(&self.target.name, self.describe()).with_evidence(
                self.to.commit.clone().unwrap_or_else(|| "unknown".into()),
                self.live_commit.clone().unwrap_or_else(|| "none".into()),
            )
        }
    }
}

/// Return `service` to the deploy `to` (the previous live deploy when `None`), wait —
/// bounded by `timeout` — until the rollback's deploy is live, and read the live commit
/// back. `on_progress` hears each poll.
///
/// [`Error::NotSupported`] when the provider cannot roll back (checked before any request).
pub async fn roll_back(
    provider: &DynProvider,
    service: &WriteTarget,
    to: Option<&str>,
    timeout: Duration,
    on_progress: &mut (dyn FnMut(&str) + Send),
) -> Result<RolledBack> {
    if !provider.capabilities().has(Capability::Rollback) {
        return Err(Error::not_supported(
            provider.name(),
            format!("rolling back `{}`", service.name),
        ));
    }
    let from = provider.live_state(service).await?.live;
    // The commit of the deploy asked for, read first: an unknown id fails before any write.
    let wanted_commit = match to {
        Some(id) => provider.deploy_status(service, id).await?.commit,
        None => None,
    };
    let started = match to {
        Some(id) => provider.rollback_to(service, id).await?,
        None => provider.rollback(service).await?,
    };
    let live = provider
        .wait_until_live(service, &started.id, timeout, &mut |p| {
            on_progress(&format!(
                "{}: rolling back, {} ({}s of {}s)",
                service.name,
                p.deploy.raw_status,
                p.elapsed.as_secs(),
                p.timeout.as_secs()
            ))
        })
        .await?;
    let mut to_deploy = live;
    if to_deploy.commit.is_none() {
        to_deploy.commit = started.commit.clone().or(wanted_commit.clone());
    }
    let expected = wanted_commit.or_else(|| to_deploy.commit.clone());
    let live_commit = provider
        .live_state(service)
        .await?
        .live_commit()
        .map(str::to_owned);
    let verified = match (&expected, &live_commit) {
        (Some(want), Some(got)) => commits_match(want, got),
        _ => false,
    };
    Ok(RolledBack {
        target: service.handle().clone(),
        from,
        to: to_deploy,
        live_commit,
        verified,
    })
}

/// `staging rollback`: returns each service of the environment (or the one named) to its
/// previous live deploy, or to the deploy named, and verifies what is live after.
#[derive(Debug, Clone, Default)]
pub struct RollbackStep {
    service: Option<String>,
    to: Option<String>,
}

impl RollbackStep {
    /// Roll back every service to its previous live deploy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only this service of the spec.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// To this deploy (a provider's deploy id) rather than the previous live one; needs
    /// [`RollbackStep::service`].
    pub fn to(mut self, deploy_id: impl Into<String>) -> Self {
        self.to = Some(deploy_id.into());
        self
    }

    /// The step's name.
    pub const NAME: &'static str = "rollback";
}

#[async_trait]
impl Step for RollbackStep {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let provider = ctx.provider()?.clone();
        if self.to.is_some() && self.service.is_none() {
            return Err(Error::config(
                "--to names one deploy of one service: pass --service too",
            ));
        }
        let names: Vec<String> = match &self.service {
            Some(s) if ctx.spec.spec.services.contains_key(s) => vec![s.clone()],
            Some(s) => {
                return Err(Error::config(format!(
                    "no service `{s}` in the spec (declared: {})",
                    ctx.spec
                        .spec
                        .services
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            None => ctx.spec.spec.services.keys().cloned().collect(),
        };
        if !provider.capabilities().has(Capability::Rollback) {
            return Err(Error::not_supported(
                provider.name(),
                format!("rolling back in environment `{}`", ctx.environment),
            ));
        }
        let timeout = ctx.spec.spec.environment(&ctx.environment)?.deploy_timeout;
        let mut findings = vec![];
        for name in names {
            let handle = provider.locate(&ctx.environment, &name).await?;
            let target = ctx.write_target(handle.clone())?;
            let progress = ctx.progress.clone();
            let started = Instant::now();
            let done = roll_back(&provider, &target, self.to.as_deref(), timeout, &mut |m| {
                progress.message(Self::NAME, m)
            })
            .await;
            match done {
                Ok(done) => {
                    if let Some(c) = &done.live_commit {
                        ctx.commit.clone_from(c);
                    }
                    findings.push(done.finding().with_duration(started.elapsed()));
                    ctx.services.insert(
                        name,
                        DeployedService {
                            handle,
                            deploy_id: Some(done.to.id.clone()),
                            url: None,
                        },
                    );
                }
                Err(e @ (Error::Failed { .. } | Error::Timeout { .. })) => findings.push(
                    Finding::failed(&name, ctx.redactor.redact(&e.to_string()))
                        .with_duration(started.elapsed()),
                ),
                Err(e) => return Err(e),
            }
        }
        let ok = findings.iter().all(|f| f.ok);
        let summary = if ok {
            format!(
                "{} service(s) rolled back, live and verified",
                findings.len()
            )
        } else {
            "a rollback did not end with the deploy rolled back to live".to_owned()
        };
        Ok(StepReport::from_findings(Self::NAME, summary, findings))
    }
}

/// After a `promote` whose deploy went live but whose verify or smoke step failed: returns
/// each service the run deployed to the deploy that was live before it (recorded by the
/// deploy step in [`RunContext::live_before`]), waits until it is live and verifies it serves
/// that deploy's commit again. Runs after a failure (it is what a failure calls for); when
/// nothing failed, or the deploys never went live, it is skipped and says why. The run stays
/// failed: the report says what was rolled back, and the evidence records it.
#[derive(Debug, Clone, Copy, Default)]
pub struct AutoRollbackStep;

impl AutoRollbackStep {
    /// The step's name.
    pub const NAME: &'static str = "rollback";
}

#[async_trait]
impl Step for AutoRollbackStep {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn runs_after_failure(&self) -> bool {
        true
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let failed: Vec<&str> = ctx
            .reports
            .iter()
            .filter(|r| matches!(r.status, StepStatus::Failed | StepStatus::Error))
            .map(|r| r.step.as_str())
            .collect();
        if failed.is_empty() {
            return Ok(StepReport::skipped(
                Self::NAME,
                "nothing failed: nothing to roll back",
            ));
        }
        // Another deploy replaced this run's during smoke: returning to the deploy live
        // before would undo that one too, so it is left as it is.
        if failed == [super::ReverifyStep::NAME] {
            return Ok(StepReport::skipped(
                Self::NAME,
                "another deploy replaced this run's during smoke: it is left live, not rolled back over",
            ));
        }
        let provider = ctx.provider()?.clone();
        let mut findings = vec![];
        // The variables first, whenever the deploy step changed some: they were written
        // before the deploys, so a deploy that never went live left them changed too, and a
        // rollback deploy must start with the old values.
        let snapshots: Vec<(String, crate::env_snapshot::EnvSnapshot)> = ctx
            .env_before
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, snapshot) in snapshots {
            let label = format!("{name} variables");
            let restored = match ctx.write_target(snapshot.service.clone()) {
                Ok(target) => provider.restore_env(&target, &snapshot).await,
                Err(e) => Err(e),
            };
            findings.push(match restored {
                Ok(r) if r.complete() => Finding::ok(&label, r.describe()),
                Ok(r) => Finding::failed(&label, r.describe()),
                Err(e) => Finding::failed(
                    &label,
                    format!("not restored: {}", ctx.redactor.redact(&e.to_string())),
                ),
            });
        }
        let went_live = ctx
            .reports
            .iter()
            .any(|r| r.step == "wait" && r.status == StepStatus::Passed);
        if !went_live {
            if findings.is_empty() {
                return Ok(StepReport::skipped(
                    Self::NAME,
                    format!(
                        "the {} step failed before the deploys went live: the deploys live before are still serving",
                        failed.join(", ")
                    ),
                ));
            }
            let summary = format!(
                "the {} step failed before the deploys went live: the deploys live before are still serving; {}",
                failed.join(", "),
                if findings.iter().all(|f| f.ok) {
                    "the variables the run changed are set back"
                } else {
                    "the variables could not all be set back: check below"
                }
            );
            return Ok(StepReport::from_findings(Self::NAME, summary, findings));
        }
        let timeout = ctx.spec.spec.environment(&ctx.environment)?.deploy_timeout;
        let can = provider.capabilities().has(Capability::Rollback);
        let services: Vec<(String, DeployedService)> = ctx
            .services
            .iter()
            .filter(|(_, s)| s.deploy_id.is_some())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut rolled_back = 0;
        for (name, svc) in services {
            let Some(before) = ctx.live_before.get(&name).cloned() else {
                findings.push(Finding::failed(
                    &name,
                    "nothing was live before this run's deploy: there is no deploy to roll back to",
                ));
                continue;
            };
            if Some(&before.id) == svc.deploy_id.as_ref() {
                continue;
            }
            if ctx.held_back.contains(&name) {
                findings.push(Finding::ok(
                    &name,
                    format!(
                        "deploy {} was held back and never served: deploy {} (live before this run) is still serving, nothing to roll back",
                        svc.deploy_id.as_deref().unwrap_or("?"),
                        before.id
                    ),
                ));
                continue;
            }
            // Never roll back what this run did not change: a deploy that never took the
            // traffic (Vercel's staged deployment, not promoted) leaves the deploy live
            // before still serving.
            match provider.live_state(&svc.handle).await {
                Ok(now) if now.live.as_ref().map(|d| &d.id) == Some(&before.id) => {
                    findings.push(Finding::ok(
                        &name,
                        format!(
                            "deploy {} (live before this run) is still serving: nothing to roll back",
                            before.id
                        ),
                    ));
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    findings.push(Finding::failed(
                        &name,
                        format!(
                            "not rolled back: what serves now cannot be read: {}",
                            ctx.redactor.redact(&e.to_string())
                        ),
                    ));
                    continue;
                }
            }
            if !can {
                findings.push(Finding::failed(
                    &name,
                    format!(
                        "not rolled back: {} cannot roll back here (not supported); deploy {} is still live",
                        provider.name(),
                        svc.deploy_id.as_deref().unwrap_or("?")
                    ),
                ));
                continue;
            }
            // Right before the write, through the run's boundary like the deploy was.
            let target = match ctx.write_target(svc.handle.clone()) {
                Ok(t) => t,
                Err(e) => {
                    findings.push(Finding::failed(
                        &name,
                        format!("not rolled back: {}", ctx.redactor.redact(&e.to_string())),
                    ));
                    continue;
                }
            };
            let progress = ctx.progress.clone();
            let started = Instant::now();
            match roll_back(&provider, &target, Some(&before.id), timeout, &mut |m| {
                progress.message(Self::NAME, m)
            })
            .await
            {
                Ok(done) => {
                    rolled_back += 1;
                    findings.push(done.finding().with_duration(started.elapsed()));
                    if let Some(s) = ctx.services.get_mut(&name) {
                        s.deploy_id = Some(done.to.id.clone());
                    }
                }
                Err(e) => findings.push(
                    Finding::failed(
                        &name,
                        format!(
                            "rollback to deploy {} failed: {}",
                            before.id,
                            ctx.redactor.redact(&e.to_string())
                        ),
                    )
                    .with_duration(started.elapsed()),
                ),
            }
        }
        let ok = findings.iter().all(|f| f.ok);
        let summary = if findings.is_empty() {
            "no service had a new deploy live: nothing to roll back".to_owned()
        } else if ok {
            format!(
                "the {} step failed after the deploy went live: {rolled_back} service(s) rolled back to the deploy live before, live and verified; every variable the run changed is as it was",
                failed.join(", "),
            )
        } else {
            format!(
                "the {} step failed after the deploy went live, and the rollback did not complete: check the services below",
                failed.join(", ")
            )
        };
        Ok(StepReport::from_findings(Self::NAME, summary, findings))
    }
}
