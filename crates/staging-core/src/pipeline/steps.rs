//! The steps core can run by itself, through the [`crate::Provider`] trait: validate,
//! deploy, wait, verify the live commit.

use std::collections::BTreeMap;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::{DeployedService, Finding, RunContext, Step, StepReport};
use crate::error::{Error, Result};
use crate::isolation::{EnvValues, Writes};
use crate::provider::{Capability, DeployRequest, ProviderExt};
use crate::registry::ProviderRegistry;

/// How many log lines a failed deploy shows.
const LOG_LINES: usize = 20;

/// How long the provider has to answer [`check_access`].
pub const ACCESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Ask `provider` for `service` of `environment` once, to learn before anything changes
/// whether its credentials are accepted and its endpoint answers: `Ok` when it answered
/// (a service it does not know yet is still an answer: the deploy step reports that),
/// else the error as the provider classified it (missing or refused credentials,
/// unreachable endpoint: exit 3). Bounded by [`ACCESS_TIMEOUT`]; no answer in time is a
/// retryable provider error (exit 3), not a failed check.
pub async fn check_access(
    provider: &crate::DynProvider,
    environment: &str,
    service: &str,
) -> Result<()> {
    tracing::info!(
        "checking access to {} for `{environment}` (locating `{service}`)",
        provider.name()
    );
    match tokio::time::timeout(ACCESS_TIMEOUT, provider.locate(environment, service)).await {
        Ok(Ok(_)) | Ok(Err(Error::NotFound { .. })) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::Provider {
            provider: provider.name().to_owned(),
            source: format!(
                "no answer within {} while locating `{service}`",
                humantime::format_duration(ACCESS_TIMEOUT)
            )
            .into(),
            retryable: true,
        }),
    }
}

/// Checks the environment's provider settings, builds the provider for the run and checks
/// that the provider accepts its credentials ([`check_access`]).
#[derive(Debug, Clone)]
pub struct ValidateStep {
    registry: ProviderRegistry,
}

impl ValidateStep {
    /// A validate step that builds providers from `registry`.
    pub fn new(registry: ProviderRegistry) -> Self {
        ValidateStep { registry }
    }
}

#[async_trait]
impl Step for ValidateStep {
    fn name(&self) -> &'static str {
        "validate"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let factory = self.registry.factory_for(&ctx.spec, &ctx.environment)?;
        self.registry.check(&ctx.spec, &ctx.environment)?;
        let provider = crate::LoggedProvider::wrap(factory.build(&ctx.spec, &ctx.environment)?);
        tracing::info!(
            environment = %ctx.environment,
            "spec valid; the provider of `{}` is {}",
            ctx.environment,
            provider.name()
        );
        ctx.provider_probes = factory.probes(&ctx.spec, &ctx.environment)?;
        let spec = &ctx.spec.spec;
        let summary = format!(
            "{} is valid: environment `{}` on {}, {} service(s), {} variable(s), {} database(s), {} probe(s)",
            ctx.spec.path.display(),
            ctx.environment,
            provider.name(),
            spec.services.len(),
            spec.vars.len(),
            spec.databases.len(),
            spec.probes.len()
        );
        ctx.provider = Some(provider);
        Ok(StepReport::passed(self.name(), summary))
    }
}

/// Refuses the run before any write when what it will change is also another
/// environment's ([`crate::isolation::check_before_write`]): offline by effective settings
/// and database URLs, then by platform ids where the run's credentials can read the other
/// environments. Runs after `validate` (which builds the provider) and before the first
/// step that writes.
#[derive(Debug, Clone)]
pub struct IsolationStep {
    registry: ProviderRegistry,
    values: std::sync::Arc<dyn EnvValues>,
}

impl IsolationStep {
    /// An isolation step over the providers of `registry`, reading database URLs through
    /// `values`.
    pub fn new(registry: ProviderRegistry, values: std::sync::Arc<dyn EnvValues>) -> Self {
        IsolationStep { registry, values }
    }
}

#[async_trait]
impl Step for IsolationStep {
    fn name(&self) -> &'static str {
        "isolation"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let provider = ctx.provider.clone();
        let report = crate::isolation::check_before_write(
            &self.registry,
            &ctx.spec,
            &ctx.environment,
            Writes::Run,
            &*self.values,
            provider.as_ref(),
        )
        .await?;
        let findings = report
            .targets
            .iter()
            .map(|(name, target)| Finding::ok(name, target.clone()))
            .collect();
        let others = ctx
            .spec
            .spec
            .environments
            .keys()
            .filter(|e| **e != ctx.environment)
            .cloned()
            .collect::<Vec<_>>();
        let summary = if report.compared_ids_with.is_empty() {
            format!(
                "nothing of `{}` is named by {} (by settings and database URLs)",
                ctx.environment,
                if others.is_empty() {
                    "another environment".to_owned()
                } else {
                    others.join(", ")
                }
            )
        } else {
            format!(
                "nothing of `{}` is named by {} (by settings and database URLs; platform ids compared with {})",
                ctx.environment,
                others.join(", "),
                report.compared_ids_with.join(", ")
            )
        };
        ctx.targets = report.targets;
        Ok(StepReport::from_findings(self.name(), summary, findings))
    }
}

/// Sets each service's declared variables that differ from what the provider has (never
/// deleting or replacing the whole set), then starts a deploy of the run's commit.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeployStep;

impl DeployStep {
    /// The variables service `service` receives in this run.
    fn vars_for<'a>(ctx: &'a RunContext, service: &str) -> BTreeMap<&'a str, &'a SecretString> {
        ctx.vars
            .iter()
            .filter(|(name, _)| service_receives(&ctx.spec, name, service))
            .map(|(k, v)| (k.as_str(), v))
            .collect()
    }
}

/// Whether the deploy step gives variable `var` to `service`: every service, unless the
/// variable's `services` names others (a variable the spec does not declare goes to all).
pub fn service_receives(spec: &crate::spec::LoadedSpec, var: &str, service: &str) -> bool {
    spec.spec.vars.get(var).is_none_or(|v| {
        v.services
            .as_ref()
            .is_none_or(|s| s.iter().any(|s| s == service))
    })
}

#[async_trait]
impl Step for DeployStep {
    fn name(&self) -> &'static str {
        "deploy"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let provider = ctx.provider()?.clone();
        let caps = provider.capabilities();
        if !caps.has(Capability::DeployCommit) {
            return Err(Error::not_supported(provider.name(), "deploying a commit"));
        }
        let mut findings = vec![];
        // An environment the platform must create first (Railway copies a missing one from
        // the environment it promotes to) is created before anything is located or set.
        if let Some(done) = provider.prepare_environment(&ctx.environment).await? {
            findings.push(Finding::ok(&ctx.environment, done));
        }
        let names: Vec<String> = ctx.spec.spec.services.keys().cloned().collect();
        for name in names {
            ctx.progress
                .message(self.name(), &format!("locating {name}"));
            let handle = provider.locate(&ctx.environment, &name).await?;
            let wanted = Self::vars_for(ctx, &name);
            let mut changed = vec![];
            if !wanted.is_empty() {
                if !caps.has(Capability::WriteEnv) {
                    return Err(Error::not_supported(
                        provider.name(),
                        "setting environment variables",
                    ));
                }
                let current = if caps.has(Capability::ReadEnv) {
                    provider.env_vars(&handle).await?
                } else {
                    BTreeMap::new()
                };
                // The ones that differ, written together: one request where the platform
                // takes a set (`Provider::set_env_vars`), never replacing the others.
                let mut differing = BTreeMap::new();
                for (key, value) in wanted {
                    let same = current
                        .get(key)
                        .is_some_and(|c| c.expose_secret() == value.expose_secret());
                    if !same {
                        differing.insert(key.to_owned(), (*value).clone());
                        changed.push(key.to_owned());
                    }
                }
                if !differing.is_empty() {
                    provider.set_env_vars(&handle, &differing).await?;
                }
            }
            // What serves now is where a failed promote rolls back to.
            if let Some(live) = provider.live_state(&handle).await?.live {
                ctx.live_before.insert(name.clone(), live);
            }
            ctx.progress.message(
                self.name(),
                &format!("deploying {} to {name}", short(&ctx.commit)),
            );
            let deploy = provider
                .deploy(&handle, &DeployRequest::commit(ctx.commit.clone()))
                .await?;
            let vars_note = if changed.is_empty() {
                String::new()
            } else {
                format!("; set {}", changed.join(", "))
            };
            let target = match ctx.targets.get(&name) {
                Some(t) => format!("{t}, id {}", handle.id),
                None => format!("id {}", handle.id),
            };
            findings.push(Finding::ok(
                &name,
                format!(
                    "deploy {} started ({}) on {target}{vars_note}",
                    deploy.id, deploy.status
                ),
            ));
            ctx.services.insert(
                name,
                DeployedService {
                    handle,
                    deploy_id: Some(deploy.id),
                    url: None,
                },
            );
        }
        let n = findings.len();
        Ok(StepReport::from_findings(
            self.name(),
            format!("{n} deploy(s) of {} started", short(&ctx.commit)),
            findings,
        ))
    }
}

/// Waits, bounded by the environment's `deploy_timeout`, until every deploy of the run is
/// live; on failure shows the last lines the service printed.
#[derive(Debug, Clone, Copy, Default)]
pub struct WaitStep;

#[async_trait]
impl Step for WaitStep {
    fn name(&self) -> &'static str {
        "wait"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let provider = ctx.provider()?.clone();
        let timeout = ctx.spec.spec.environment(&ctx.environment)?.deploy_timeout;
        let mut findings = vec![];
        let mut failure: Option<Error> = None;
        let services: Vec<(String, DeployedService)> = ctx
            .services
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, svc) in services {
            let Some(deploy_id) = svc.deploy_id.clone() else {
                continue;
            };
            let progress = ctx.progress.clone();
            let step = self.name();
            let mut on_progress = |p: crate::provider::WaitProgress<'_>| {
                progress.message(
                    step,
                    &format!(
                        "{name}: {} ({}s of {}s)",
                        p.deploy.raw_status,
                        p.elapsed.as_secs(),
                        p.timeout.as_secs()
                    ),
                );
            };
            let started = std::time::Instant::now();
            match provider
                .wait_until_live(&svc.handle, &deploy_id, timeout, &mut on_progress)
                .await
            {
                Ok(deploy) => {
                    findings.push(
                        Finding::ok(&name, format!("deploy {} is live", deploy.id))
                            .with_duration(started.elapsed()),
                    );
                }
                Err(e) if matches!(e, Error::Failed { .. } | Error::Timeout { .. }) => {
                    let mut message = ctx.redactor.redact(&e.to_string()).into_owned();
                    let lines = if provider.capabilities().has(Capability::Logs) {
                        provider
                            .recent_logs(&svc.handle, Some(&deploy_id), LOG_LINES)
                            .await
                            .unwrap_or_default()
                    } else {
                        vec![]
                    };
                    if !lines.is_empty() {
                        message.push_str("\nlast lines the service printed:\n");
                        for l in lines {
                            message.push_str("  | ");
                            message.push_str(&ctx.redactor.redact(&l));
                            message.push('\n');
                        }
                    }
                    findings.push(
                        Finding::failed(&name, message.trim_end()).with_duration(started.elapsed()),
                    );
                    failure.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        let summary = match &failure {
            None => format!("{} service(s) live", findings.len()),
            Some(Error::Timeout { after, .. }) => {
                format!("not live within {}", humantime::format_duration(*after))
            }
            Some(_) => "a deploy failed".to_owned(),
        };
        Ok(StepReport::from_findings(self.name(), summary, findings))
    }
}

/// Checks that the commit each service serves is the one deployed — the platform serving a
/// cached old image is caught here — and records the services' URLs.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyCommitStep;

#[async_trait]
impl Step for VerifyCommitStep {
    fn name(&self) -> &'static str {
        "verify"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let provider = ctx.provider()?.clone();
        if ctx.services.is_empty() {
            for name in ctx.spec.spec.services.keys().cloned().collect::<Vec<_>>() {
                let handle = provider.locate(&ctx.environment, &name).await?;
                ctx.services.insert(
                    name,
                    DeployedService {
                        handle,
                        deploy_id: None,
                        url: None,
                    },
                );
            }
        }
        let mut findings = vec![];
        for (name, svc) in ctx.services.iter_mut() {
            let state = provider.live_state(&svc.handle).await?;
            svc.url = state.url.clone();
            let live = state.live_commit().unwrap_or("none");
            if commits_match(live, &ctx.commit) {
                findings.push(Finding::ok(name, format!("serving {}", short(live))));
            } else {
                findings.push(
                    Finding::failed(name, "the live commit is not the one deployed (a cached or older deploy is serving)")
                        .with_evidence(ctx.commit.clone(), live.to_owned()),
                );
            }
        }
        let ok = findings.iter().all(|f| f.ok);
        let summary = if ok {
            format!("every service serves {}", short(&ctx.commit))
        } else {
            "a service serves another commit".to_owned()
        };
        Ok(StepReport::from_findings(self.name(), summary, findings))
    }
}

/// Finds each service and its URL from the provider's live state, without deploying: what
/// `staging smoke` runs before the probes.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocateStep;

#[async_trait]
impl Step for LocateStep {
    fn name(&self) -> &'static str {
        "locate"
    }

    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let provider = ctx.provider()?.clone();
        let mut findings = vec![];
        for name in ctx.spec.spec.services.keys().cloned().collect::<Vec<_>>() {
            let handle = provider.locate(&ctx.environment, &name).await?;
            let state = provider.live_state(&handle).await?;
            let live = state.live_commit().map(short).unwrap_or("none").to_owned();
            let finding = match &state.url {
                Some(url) => Finding::ok(&name, format!("{url} (live commit {live})")),
                None => Finding::ok(
                    &name,
                    format!("no URL: nothing is live (live commit {live})"),
                ),
            };
            findings.push(finding);
            ctx.services.insert(
                name,
                DeployedService {
                    handle,
                    deploy_id: None,
                    url: state.url,
                },
            );
        }
        Ok(StepReport::from_findings(
            self.name(),
            format!("{} service(s) located", findings.len()),
            findings,
        ))
    }
}

/// Whether `id` is a full commit id: 40 (SHA-1) or 64 (SHA-256) hex digits. Only such ids
/// are compared by the promotion gate; a short id or a ref (`release-1`) is resolved to one
/// through git first (see the CLI's `--commit`).
pub fn is_full_commit_id(id: &str) -> bool {
    matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether two commit ids name the same commit: both hex and equal, ignoring surrounding
/// whitespace and the case of the hex digits. No prefix matching (`abcdef1` is not
/// `abcdef1fff…`) and no names (`release-1` is no commit): what runs and what is promoted are
/// compared by their full ids. Every provider and store compares commits with this one
/// function.
pub fn commits_match(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    !a.is_empty() && a.bytes().all(|b| b.is_ascii_hexdigit()) && a.eq_ignore_ascii_case(b)
}

/// The first 12 characters of a commit id.
pub(crate) fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::{commits_match, is_full_commit_id};

    #[test]
    fn only_the_same_hex_id_matches() {
        let full = "abcdef1234567890abcdef1234567890abcdef12";
        assert!(commits_match(full, &full.to_ascii_uppercase()));
        assert!(commits_match(&format!(" {full}\n"), full));
        // A prefix in either direction is another commit.
        assert!(!commits_match("abcdef1", full));
        assert!(!commits_match(full, "abcdef1"));
        assert!(!commits_match("abcdef1", "abcdef1fff"));
        // Names are not commits, whatever their case.
        assert!(!commits_match("release-1", "release-1"));
        assert!(!commits_match("release-1", "release-10"));
        assert!(!commits_match("", ""));
    }

    #[test]
    fn full_ids_are_40_or_64_hex_digits() {
        assert!(is_full_commit_id(&"a".repeat(40)));
        assert!(is_full_commit_id(&"F".repeat(64)));
        assert!(!is_full_commit_id(&"a".repeat(39)));
        assert!(!is_full_commit_id(&"g".repeat(40)));
        assert!(!is_full_commit_id("release-1"));
    }
}
