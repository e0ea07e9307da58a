//! The steps core can run by itself, through the [`crate::Provider`] trait: validate,
//! deploy, wait, verify the live commit.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::{DeployedService, Finding, RunContext, Step, StepReport};
use crate::DynProvider;
use crate::boundary::WriteTarget;
use crate::cadence::Cadence;
use crate::error::{Error, Result};
use crate::isolation::{EnvValues, Writes};
use crate::provider::{Capability, Deploy, DeployRequest, ProviderExt, ServiceHandle};
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

/// How long [`preflight`] gives an environment's provider to answer, retries included.
pub const PREFLIGHT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

/// Before a run reads or writes anything (`up`, `promote`, `plan`, `validate --online`):
/// build the environment's provider once — missing credentials are an error naming what to
/// set — and ask it one read (locating the spec's first service), bounded by
/// [`PREFLIGHT_TIMEOUT`]. A refused key, a missing permission or an endpoint that does not
/// answer in time ends the run here, exit 3, instead of a step retrying against it and the
/// failure surfacing at the first write. A service the platform does not know yet is an
/// answer (what creates it reports that). A spec without services has nothing to ask.
pub async fn preflight(
    registry: &ProviderRegistry,
    spec: &crate::spec::LoadedSpec,
    environment: &str,
) -> Result<()> {
    registry.check(spec, environment)?;
    let provider = registry
        .factory_for(spec, environment)?
        .build(spec, environment)?;
    let Some(service) = spec.spec.services.keys().next() else {
        return Ok(());
    };
    tracing::info!(
        "preflight: asking {} for `{service}` of `{environment}` (at most {})",
        provider.name(),
        humantime::format_duration(PREFLIGHT_TIMEOUT)
    );
    match tokio::time::timeout(PREFLIGHT_TIMEOUT, provider.locate(environment, service)).await {
        Ok(Ok(_)) | Ok(Err(Error::NotFound { .. })) => Ok(()),
        Ok(Err(e)) if e.class() == crate::ErrorClass::CannotProceed => {
            Err(naming_what_was_read(e, service, environment))
        }
        // Anything else the read says (a conflict, a failed check) is the run's to report.
        Ok(Err(_)) => Ok(()),
        Err(_) => Err(Error::Provider {
            provider: provider.name().to_owned(),
            source: format!(
                "no answer within {} while checking the credentials of `{environment}` (locating `{service}`): check the network and the provider's API address",
                humantime::format_duration(PREFLIGHT_TIMEOUT)
            )
            .into(),
            retryable: true,
        }),
    }
}

/// `e`, what the platform answered the preflight's read, with the read named (service
/// `service` of `environment`), its kind kept (a refused key stays `unauthenticated`).
fn naming_what_was_read(e: Error, service: &str, environment: &str) -> Error {
    let read = format!("while reading service `{service}` of `{environment}`, before any write");
    match e {
        Error::Unauthenticated { provider, message } => Error::Unauthenticated {
            provider,
            message: format!("{message} ({read})"),
        },
        Error::PermissionDenied { provider, message } => Error::PermissionDenied {
            provider,
            message: format!("{message} ({read})"),
        },
        Error::Provider {
            provider,
            source,
            retryable,
        } => Error::Provider {
            provider,
            source: format!("{} ({read})", crate::error::error_chain(&*source)).into(),
            retryable,
        },
        other => other,
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
        // Valid but risky settings: in the report (and the log), never silently.
        let warnings = self.registry.warnings(&ctx.spec, &ctx.environment)?;
        let mut report = StepReport::passed(self.name(), summary);
        for w in warnings {
            tracing::warn!(environment = %ctx.environment, "{w}");
            report
                .findings
                .push(Finding::ok("warning", format!("warning: {w}")));
        }
        Ok(report)
    }
}

/// Refuses the run before any write when what it will change is also another
/// environment's ([`crate::isolation::check_before_write`]): offline by effective settings
/// and database URLs, then by platform identity through the run's credentials, failing
/// closed (exit 3) on what it cannot read. Keeps the run's [`crate::WriteBoundary`] in
/// [`RunContext::boundary`]: no later step writes without it. Runs after `validate` (which
/// builds the provider) and before the first step that writes.
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
        let (report, boundary) = report;
        ctx.boundary = Some(boundary);
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
        let summary = match (
            report.not_visible.is_empty(),
            report.not_there_yet.is_empty(),
        ) {
            (true, true) => summary,
            _ => {
                let mut s = summary;
                if !report.not_visible.is_empty() {
                    s.push_str(&format!(
                        "; not visible to this run's credentials: {}",
                        report.not_visible.join(", ")
                    ));
                }
                if !report.not_there_yet.is_empty() {
                    s.push_str(&format!(
                        "; not on the platform yet (compared when written): {}",
                        report.not_there_yet.join(", ")
                    ));
                }
                s
            }
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

/// What a deploy does to one variable of one service: the one variable diff, which `plan`
/// shows and the deploy step carries out ([`var_changes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VarAction {
    /// Declared, not on the platform: the deploy sets it.
    Add,
    /// On the platform with another value: the deploy sets it.
    Change,
    /// On the platform with the same value: left alone.
    Unchanged,
    /// On the platform, not declared for this service: the deploy leaves it (it never
    /// deletes); remove it on the platform if it is stale.
    Remove,
    /// Declared, but its value (or the platform's) could not be read.
    Unknown,
}

impl VarAction {
    /// Whether the deploy writes the variable.
    pub fn writes(self) -> bool {
        matches!(self, VarAction::Add | VarAction::Change)
    }
}

/// One variable of one service in [`var_changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarChange {
    /// The variable's name.
    pub name: String,
    /// What the deploy does to it.
    pub action: VarAction,
}

/// The one variable diff of a service: for each variable `service` receives
/// ([`service_receives`]) with its value in `wanted`, whether the deploy adds it, changes it
/// or leaves it (compared by value), and each variable only `platform` has (left as is).
/// `platform` is `None` when the platform's variables cannot be read: every declared
/// variable is then [`VarAction::Add`] (the deploy sets it); a declared variable without a
/// value here is [`VarAction::Unknown`]. `plan` prints this; the deploy step writes the
/// variables it marks [`VarAction::writes`].
pub fn var_changes(
    spec: &crate::spec::LoadedSpec,
    service: &str,
    wanted: &BTreeMap<String, SecretString>,
    platform: Option<&BTreeMap<String, SecretString>>,
) -> Vec<VarChange> {
    let mut out = vec![];
    let declared = spec.spec.vars.keys().chain(
        wanted
            .keys()
            .filter(|k| !spec.spec.vars.contains_key(k.as_str())),
    );
    for name in declared {
        if !service_receives(spec, name, service) {
            continue;
        }
        let action = match (wanted.get(name), platform.map(|p| p.get(name))) {
            (None, _) => VarAction::Unknown,
            (Some(_), None) | (Some(_), Some(None)) => VarAction::Add,
            (Some(w), Some(Some(h))) if w.expose_secret() == h.expose_secret() => {
                VarAction::Unchanged
            }
            (Some(_), Some(Some(_))) => VarAction::Change,
        };
        out.push(VarChange {
            name: name.clone(),
            action,
        });
    }
    if let Some(platform) = platform {
        for key in platform.keys() {
            let declared = (spec.spec.vars.contains_key(key) || wanted.contains_key(key))
                && service_receives(spec, key, service);
            if !declared {
                out.push(VarChange {
                    name: key.clone(),
                    action: VarAction::Remove,
                });
            }
        }
    }
    out
}

/// What the deploy step read about one service before writing anything.
struct Located {
    name: String,
    handle: ServiceHandle,
    /// The variables to set: those that differ from what the provider has.
    to_set: BTreeMap<String, SecretString>,
    /// What those variables were, for the restore after a failed promote.
    before: Option<crate::env_snapshot::EnvSnapshot>,
    live: Option<Deploy>,
    /// Its public URL as the platform says now (what `${services.NAME.url}` becomes).
    url: Option<url::Url>,
    /// The id of the platform's newest deploy of the service (live or not), read before any
    /// write: what tells the run's own deploy apart when its answer never arrives.
    newest: Option<String>,
}

/// `services.NAME.url` → `NAME`.
fn url_reference(reference: &str) -> Option<&str> {
    reference
        .strip_prefix("services.")
        .and_then(|r| r.strip_suffix(".url"))
}

impl DeployStep {
    /// The services whose URL a variable `service` receives waits for
    /// (`${services.api.url}`), other than itself.
    fn waits_on(ctx: &RunContext, service: &str) -> std::collections::BTreeSet<String> {
        ctx.deferred
            .iter()
            .filter(|(var, _)| service_receives(&ctx.spec, var, service))
            .flat_map(|(_, refs)| refs.iter().filter_map(|r| url_reference(r)))
            .filter(|s| *s != service)
            .map(str::to_owned)
            .collect()
    }

    /// The variables `service` receives, each deferred one rendered with the URLs of the
    /// services located so far (`urls`): its value is the template in spec syntax
    /// ([`RunContext::deferred`]), parsed here once and filled in once.
    fn rendered_vars(
        ctx: &RunContext,
        service: &str,
        urls: &BTreeMap<String, url::Url>,
    ) -> Result<BTreeMap<String, SecretString>> {
        let mut out = BTreeMap::new();
        for (key, value) in Self::vars_for(ctx, service) {
            let waits = ctx
                .deferred
                .get(key)
                .is_some_and(|refs| refs.iter().any(|r| url_reference(r).is_some()));
            if !waits {
                out.insert(key.to_owned(), value.clone());
                continue;
            }
            let template = crate::spec::Template::parse(value.expose_secret()).map_err(|e| {
                Error::config(format!("variable `{key}` of service `{service}`: {e}"))
            })?;
            let lookup = |name: &str| {
                url_reference(name)
                    .and_then(|s| urls.get(s))
                    .map(|u| u.as_str().trim_end_matches('/').to_owned())
            };
            let (rendered, unknown) = template.render_known(&lookup);
            if let Some(missing) = unknown.iter().find(|r| url_reference(r).is_some()) {
                return Err(Error::failed(format!(
                    "variable `{key}` of service `{service}` needs `${{{missing}}}`, but that service has no URL on the platform (does it serve HTTP, and is it deployed?)"
                )));
            }
            let text = match rendered.as_literal() {
                Some(t) => t.into_owned(),
                None => rendered.to_source(),
            };
            out.insert(key.to_owned(), SecretString::from(text));
        }
        Ok(out)
    }

    /// Locates every service, in waves: a service whose variables name another's URL
    /// (`${services.api.url}`) is located after that one, its variables rendered with the
    /// URL found. Without such references, one wave of every service at once (as always).
    async fn locate_all(ctx: &RunContext, provider: &DynProvider) -> Result<Vec<Located>> {
        let mut remaining: Vec<String> = ctx.spec.spec.services.keys().cloned().collect();
        let mut urls: BTreeMap<String, url::Url> = BTreeMap::new();
        let mut done: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let mut out = vec![];
        while !remaining.is_empty() {
            let (ready, later): (Vec<String>, Vec<String>) = remaining
                .into_iter()
                .partition(|n| Self::waits_on(ctx, n).is_subset(&done));
            if ready.is_empty() {
                return Err(Error::config(format!(
                    "the variables of {} wait for each other's URLs (`${{services.NAME.url}}` in a cycle): no service can be deployed first",
                    later
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let located = join_all(
                ready
                    .into_iter()
                    .map(|name| Self::locate(ctx, provider, name, &urls)),
            )
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
            for l in &located {
                done.insert(l.name.clone());
                if let Some(u) = &l.url {
                    urls.insert(l.name.clone(), u.clone());
                }
            }
            out.extend(located);
            remaining = later;
        }
        Ok(out)
    }

    /// Reads one service: where it is, its variables, what serves now. No write.
    async fn locate(
        ctx: &RunContext,
        provider: &DynProvider,
        name: String,
        urls: &BTreeMap<String, url::Url>,
    ) -> Result<Located> {
        let caps = provider.capabilities();
        ctx.progress.message("deploy", &format!("locating {name}"));
        let handle = provider.locate(&ctx.environment, &name).await?;
        let wanted = Self::rendered_vars(ctx, &name, urls)?;
        let mut to_set = BTreeMap::new();
        let mut before = None;
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
            // The one variable diff, the one `plan` shows.
            for change in var_changes(&ctx.spec, &name, &wanted, Some(&current)) {
                if change.action.writes()
                    && let Some(value) = wanted.get(&change.name)
                {
                    to_set.insert(change.name, value.clone());
                }
            }
            if !to_set.is_empty() {
                let keys: Vec<String> = to_set.keys().cloned().collect();
                before = Some(provider.snapshot_env(&handle, &current, &keys).await?);
            }
        }
        // What serves now is where a failed promote rolls back to.
        let state = provider.live_state(&handle).await?;
        Ok(Located {
            name,
            handle,
            to_set,
            before,
            live: state.live,
            url: state.url,
            newest: state.latest.map(|d| d.id),
        })
    }

    /// Writes one service's changed variables (in one call where the platform can), then
    /// starts its deploy: recorded in the run's [`crate::pipeline::SentDeploys`] right before
    /// the request is sent and again the moment its answer is in, so that a signal at any
    /// point between leaves the run knowing the deploy may be running.
    async fn start(
        ctx: &RunContext,
        provider: &DynProvider,
        located: &Located,
        target: &WriteTarget,
    ) -> Result<Deploy> {
        // The ones that differ, written together: one request where the platform takes a
        // set (`Provider::set_env_vars`), never replacing the others.
        if !located.to_set.is_empty() {
            provider.set_env_vars(target, &located.to_set).await?;
        }
        ctx.progress.message(
            "deploy",
            &format!("deploying {} to {}", short(&ctx.commit), located.name),
        );
        ctx.sent_deploys.sending(crate::pipeline::SentDeploy {
            service: located.name.clone(),
            target: target.clone(),
            commit: ctx.commit.clone(),
            newest_before: located.newest.clone(),
            deploy_id: None,
        });
        let deploy = provider
            .deploy(target, &DeployRequest::commit(ctx.commit.clone()))
            .await?;
        ctx.sent_deploys.answered(&located.name, &deploy.id);
        Ok(deploy)
    }
}

#[async_trait]
impl Step for DeployStep {
    fn name(&self) -> &'static str {
        "deploy"
    }

    /// Every service is read first, all at once (locate, variables, what serves now); only
    /// when every read succeeded are the writes made, again all at once, so N services take
    /// about as long as one and a service that cannot be found stops the run before any
    /// write. When a write fails, the deploys that did start are still recorded (so an
    /// interrupted run can cancel them) and the first failure in name order is returned.
    async fn run(&self, ctx: &mut RunContext) -> Result<StepReport> {
        let provider = ctx.provider()?.clone();
        // Before anything is prepared or written: every service must take a commit.
        if let Some(name) = ctx
            .spec
            .spec
            .services
            .keys()
            .find(|name| !provider.deploy_kinds(name).commit)
        {
            return Err(Error::not_supported(
                provider.name(),
                format!("deploying a commit to `{name}`"),
            ));
        }
        let mut findings = vec![];
        // An environment the platform must create first (Railway copies a missing one from
        // the environment it promotes to) is created before anything is located or set.
        let environment = ctx.boundary()?.environment_target()?;
        if let Some(done) = provider.prepare_environment(&environment).await? {
            findings.push(Finding::ok(&ctx.environment, done));
        }
        let located = Self::locate_all(ctx, &provider).await?;
        // Every service through the run's write boundary, right before the first write: one
        // located only now (created earlier in this run) is compared like any other.
        let targets = located
            .iter()
            .map(|l| ctx.write_target(l.handle.clone()))
            .collect::<Result<Vec<_>>>()?;
        // A service already serving this commit with these variables is left alone: a
        // second `up` of the same commit changes nothing, as `plan` says ("unchanged").
        // Not for a provider that runs services in this process (nothing outlives the run).
        let unchanged = |l: &Located| {
            !ctx.redeploy
                && !provider.runs_services_in_process()
                && l.to_set.is_empty()
                && l.live
                    .as_ref()
                    .and_then(|d| d.commit.as_deref())
                    .is_some_and(|live| commits_match(live, &ctx.commit))
        };
        let (located, targets): (Vec<Located>, Vec<WriteTarget>) = {
            let mut keep = (vec![], vec![]);
            for (l, t) in located.into_iter().zip(targets) {
                if unchanged(&l) {
                    let id = l.live.as_ref().map(|d| d.id.as_str()).unwrap_or("?");
                    findings.push(Finding::ok(
                        &l.name,
                        format!(
                            "already serves {} (deploy {id}) with these variables: not deployed again (`--redeploy` forces it)",
                            short(&ctx.commit)
                        ),
                    ));
                    ctx.services.insert(
                        l.name.clone(),
                        DeployedService {
                            handle: l.handle,
                            deploy_id: None,
                            url: None,
                        },
                    );
                } else {
                    keep.0.push(l);
                    keep.1.push(t);
                }
            }
            keep
        };
        let started = {
            let ctx = &*ctx;
            join_all(
                located
                    .iter()
                    .zip(&targets)
                    .map(|(l, t)| Self::start(ctx, &provider, l, t)),
            )
            .await
        };
        let mut first_error = None;
        for (located, deploy) in located.into_iter().zip(started) {
            let Located {
                name,
                handle,
                to_set,
                before,
                live,
                ..
            } = located;
            if let Some(live) = live {
                ctx.live_before.insert(name.clone(), live);
            }
            if let Some(before) = before {
                ctx.env_before.insert(name.clone(), before);
            }
            let deploy = match deploy {
                Ok(d) => d,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            let vars_note = if to_set.is_empty() {
                String::new()
            } else {
                let keys: Vec<&str> = to_set.keys().map(String::as_str).collect();
                format!("; set {}", keys.join(", "))
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
        if let Some(e) = first_error {
            return Err(e);
        }
        let n = ctx
            .services
            .values()
            .filter(|s| s.deploy_id.is_some())
            .count();
        let kept = ctx.services.len() - n;
        Ok(StepReport::from_findings(
            self.name(),
            if kept == 0 {
                format!("{n} deploy(s) of {} started", short(&ctx.commit))
            } else {
                format!(
                    "{n} deploy(s) of {} started; {kept} service(s) already serve it unchanged",
                    short(&ctx.commit)
                )
            },
            findings,
        ))
    }
}

/// Waits until every deploy of the run is live, all at once: each service is polled at the
/// cadence the provider's read budget allows for the services still waiting
/// ([`crate::cadence`]), and the environment's `deploy_timeout` bounds the whole wait, not
/// each service. The first failure (a deploy that failed, or the bound running out) ends the
/// wait: it is reported with the last lines the service printed, every other service by the
/// status it was last seen in.
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
        let waits: Vec<(String, ServiceHandle, String)> = ctx
            .services
            .iter()
            .filter_map(|(name, svc)| {
                let id = svc.deploy_id.clone()?;
                Some((name.clone(), svc.handle.clone(), id))
            })
            .collect();
        let cadence = Cadence::for_provider(&*provider);
        if !waits.is_empty() {
            tracing::info!("{}", cadence.explain(waits.len()));
        }
        let last_seen: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
        let started = Instant::now();
        let step = self.name();
        let mut pending: FuturesUnordered<_> = waits
            .iter()
            .map(|(name, handle, deploy_id)| {
                let (provider, cadence, last_seen) = (&provider, &cadence, &last_seen);
                let progress = ctx.progress.clone();
                // Counted before any poll, so the first interval already shares the budget;
                // dropped when this service's wait ends, so the others speed up.
                let counted = cadence.join();
                async move {
                    let _counted = counted;
                    let mut on_progress = |p: crate::provider::WaitProgress<'_>| {
                        lock(last_seen).insert(name.clone(), p.deploy.raw_status.clone());
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
                    let out = provider
                        .wait_until_live_paced(
                            handle,
                            deploy_id,
                            timeout,
                            cadence,
                            &mut on_progress,
                        )
                        .await;
                    (name, handle, deploy_id, out, started.elapsed())
                }
            })
            .collect();
        let mut findings: BTreeMap<String, Finding> = BTreeMap::new();
        let mut failure: Option<(String, Error)> = None;
        while let Some((name, handle, deploy_id, out, took)) = pending.next().await {
            match out {
                Ok(deploy) => {
                    tracing::debug!("{name}: deploy {} seen live after {took:?}", deploy.id);
                    findings.insert(
                        name.clone(),
                        Finding::ok(name, format!("deploy {} is live", deploy.id))
                            .with_duration(took),
                    );
                }
                Err(e) if matches!(e, Error::Failed { .. } | Error::Timeout { .. }) => {
                    let mut message = ctx.redactor.redact(&e.to_string()).into_owned();
                    let lines = if provider.capabilities().has(Capability::Logs) {
                        provider
                            .recent_logs(handle, Some(deploy_id), LOG_LINES)
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
                    findings.insert(
                        name.clone(),
                        Finding::failed(name, message.trim_end()).with_duration(took),
                    );
                    failure = Some((name.clone(), e));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        // Dropping the other waits stops their polls.
        drop(pending);
        if let Some((failed, _)) = &failure {
            let last_seen = lock(&last_seen);
            for (name, _, deploy_id) in &waits {
                if findings.contains_key(name) {
                    continue;
                }
                let status = last_seen
                    .get(name)
                    .map(|s| format!("last seen `{}`", ctx.redactor.redact(s)))
                    .unwrap_or_else(|| "no status read yet".to_owned());
                findings.insert(
                    name.clone(),
                    Finding::failed(
                        name,
                        format!(
                            "deploy {deploy_id} not live: {status} when the wait stopped ({failed} did not go live)"
                        ),
                    )
                    .with_duration(started.elapsed()),
                );
            }
        }
        let findings: Vec<Finding> = findings.into_values().collect();
        let summary = match &failure {
            None => format!("{} service(s) live", findings.len()),
            Some((_, Error::Timeout { after, .. })) => {
                format!("not live within {}", humantime::format_duration(*after))
            }
            Some(_) => "a deploy failed".to_owned(),
        };
        Ok(StepReport::from_findings(self.name(), summary, findings))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
            let names: Vec<String> = ctx.spec.spec.services.keys().cloned().collect();
            let handles = join_all(
                names
                    .iter()
                    .map(|name| provider.locate(&ctx.environment, name)),
            )
            .await;
            for (name, handle) in names.into_iter().zip(handles) {
                ctx.services.insert(
                    name,
                    DeployedService {
                        handle: handle?,
                        deploy_id: None,
                        url: None,
                    },
                );
            }
        }
        let states = join_all(
            ctx.services
                .values()
                .map(|svc| provider.live_state(&svc.handle)),
        )
        .await;
        let mut findings = vec![];
        for ((name, svc), state) in ctx.services.iter_mut().zip(states) {
            let state = state?;
            svc.url = state.url.clone();
            let live = state.live_commit().unwrap_or("none");
            if commits_match(live, &ctx.commit) {
                let deploy = state.live.clone();
                let id = deploy.as_ref().map(|d| d.id.as_str()).unwrap_or("?");
                findings.push(Finding::ok(
                    name,
                    format!("serving {} (deploy {id})", short(live)),
                ));
                // What the re-verification after smoke expects still to be live.
                if let Some(deploy) = deploy {
                    ctx.verified.insert(name.clone(), deploy);
                }
            } else {
                // Three different failures, three different messages: nothing live, a live
                // deploy the platform names no commit for (Render's `commit: null`: an image
                // or manual deploy), and another commit serving.
                let message = match &state.live {
                    None => "no deploy is live: nothing serves the commit deployed".to_owned(),
                    Some(d) if d.commit.is_none() => format!(
                        "the live deploy {} reports no commit (the platform answered `commit: null`: an image or manual deploy, or one whose commit it does not know), so it cannot be shown to serve the commit deployed",
                        d.id
                    ),
                    Some(_) => "the live commit is not the one deployed (a cached or older deploy is serving)".to_owned(),
                };
                findings.push(
                    Finding::failed(name, message)
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
        let names: Vec<String> = ctx.spec.spec.services.keys().cloned().collect();
        let read = join_all(names.iter().map(|name| {
            let provider = &provider;
            let environment = &ctx.environment;
            async move {
                let handle = provider.locate(environment, name).await?;
                let state = provider.live_state(&handle).await?;
                Ok::<_, Error>((handle, state))
            }
        }))
        .await;
        let mut findings = vec![];
        for (name, read) in names.into_iter().zip(read) {
            let (handle, state) = read?;
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
