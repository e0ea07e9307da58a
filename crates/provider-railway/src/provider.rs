//! [`RailwayProvider`]: the [`Provider`] trait over Railway's GraphQL API.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Serialize;
use staging_core::pipeline::commits_match;
use staging_core::{
    Cancel, Capabilities, Deploy, DeployKinds, DeployRequest, DeployStatus, DeployTarget, EnvVars,
    EnvironmentSetup, Error, Identity, LiveState, LogLine, LogQuery, Logs, Pacing, Provider,
    Result, Rollback, ServiceHandle, WriteTarget,
};

use crate::builder::{CreateFrom, Ref};
use crate::client::Client;
use crate::error::PROVIDER;
use crate::queries::{self, EnvironmentVariables};

/// How many deployments are read to find the live one and the one before it.
const DEPLOYMENTS_PAGE: i64 = 50;
/// How long a committed environment copy may take to show its services.
const INSTANCES_TIMEOUT: Duration = Duration::from_secs(300);

/// The Railway provider. Cheap to clone (the client is shared). One provider works in one
/// Railway environment of one project.
///
/// Built with [`crate::RailwayBuilder`]; the CLI builds it through
/// [`crate::RailwayFactory`], wrapped in [`staging_core::RetryProvider`].
#[derive(Debug, Clone)]
pub struct RailwayProvider {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) project: Option<Ref>,
    pub(crate) workspace_id: Option<String>,
    pub(crate) environment: Option<Ref>,
    pub(crate) protected: bool,
    pub(crate) create_from: Option<CreateFrom>,
    pub(crate) services: BTreeMap<String, Ref>,
    pub(crate) poll_interval: Duration,
    pub(crate) read_budget: staging_core::ReadBudget,
    /// The project and environment ids, once found (they do not change during a run).
    pub(crate) resolved: tokio::sync::Mutex<Option<Scope>>,
}

/// The ids every service-instance operation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub(crate) project_id: String,
    pub(crate) environment_id: String,
}

/// A project as `locate` sees it: environments and services by name.
#[derive(Debug, Clone)]
pub(crate) struct ProjectInfo {
    pub(crate) id: String,
    pub(crate) environments: Vec<(String, String)>,
    pub(crate) services: Vec<(String, String)>,
}

/// What is true of the provider's Railway environment before a run writes anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EnvironmentPlan {
    /// It exists.
    Exists {
        /// Its name on Railway.
        name: String,
        /// Its id.
        id: String,
    },
    /// It does not exist; `up` creates it as a copy of `from`.
    Create {
        /// The name it will have.
        name: String,
        /// The Railway environment it is copied from.
        from: String,
        /// That environment's id.
        from_id: String,
    },
}

/// The status word of a generated `DeploymentStatus` enum (`SUCCESS`), whichever
/// operation's module it comes from.
fn status_word<T: Serialize>(status: &T) -> String {
    match serde_json::to_value(status) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "UNKNOWN".to_owned(),
    }
}

/// Railway's statuses in the toolkit's words.
pub(crate) fn deploy_status(word: &str) -> DeployStatus {
    match word {
        "QUEUED" | "WAITING" | "NEEDS_APPROVAL" => DeployStatus::Queued,
        "INITIALIZING" | "BUILDING" | "DEPLOYING" => DeployStatus::InProgress,
        "SUCCESS" | "SLEEPING" => DeployStatus::Live,
        "FAILED" | "CRASHED" => DeployStatus::Failed,
        "SKIPPED" => DeployStatus::Canceled,
        // REMOVED / REMOVING: replaced by a newer deployment, or stopped.
        _ => DeployStatus::Superseded,
    }
}

/// One deployment, as every query that reads one gives it.
#[derive(Debug, Clone)]
pub(crate) struct RawDeployment {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) can_rollback: bool,
    pub(crate) meta: Option<serde_json::Value>,
}

impl RawDeployment {
    pub(crate) fn to_deploy(&self) -> Deploy {
        let meta_text = |key: &str| {
            self.meta
                .as_ref()
                .and_then(|m| m.get(key))
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Deploy {
            id: self.id.clone(),
            status: deploy_status(&self.status),
            commit: meta_text("commitHash"),
            image: meta_text("image"),
            raw_status: self.status.clone(),
        }
    }
}

impl RailwayProvider {
    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The project, with its environments and services.
    pub(crate) async fn project(&self) -> Result<ProjectInfo> {
        let id = match &self.inner.project {
            Some(Ref::Id(id)) => id.clone(),
            Some(Ref::Name(name)) => self.project_id_by_name(name).await?,
            None => {
                let data = self
                    .client()
                    .run::<queries::ProjectToken>(
                        queries::project_token::Variables {},
                        "the project of the project token",
                    )
                    .await?;
                data.project_token.project_id
            }
        };
        let data = self
            .client()
            .run::<queries::Project>(
                queries::project::Variables { id: id.clone() },
                &format!("project {id}"),
            )
            .await?;
        let p = data.project;
        Ok(ProjectInfo {
            id: p.id,
            // A deleted environment or service may still be listed; it is not there to use.
            environments: p
                .environments
                .edges
                .into_iter()
                .filter(|e| e.node.deleted_at.is_none())
                .map(|e| (e.node.name, e.node.id))
                .collect(),
            services: p
                .services
                .edges
                .into_iter()
                .filter(|e| e.node.deleted_at.is_none())
                .map(|e| (e.node.name, e.node.id))
                .collect(),
        })
    }

    async fn project_id_by_name(&self, name: &str) -> Result<String> {
        let data = self
            .client()
            .run::<queries::Projects>(
                queries::projects::Variables {
                    workspace_id: self.inner.workspace_id.clone(),
                },
                &format!("projects named `{name}`"),
            )
            .await?;
        let ids: Vec<String> = data
            .projects
            .edges
            .into_iter()
            .filter(|e| e.node.name == name)
            .map(|e| e.node.id)
            .collect();
        match ids.as_slice() {
            [id] => Ok(id.clone()),
            [] => Err(Error::not_found(format!("Railway project named `{name}`"))),
            many => Err(Error::config(format!(
                "{} Railway projects are named `{name}` ({}); set `project_id`",
                many.len(),
                many.join(", ")
            ))),
        }
    }

    /// The Railway environment's name as the settings give it (or its id).
    fn environment_label(&self, spec_environment: &str) -> String {
        match &self.inner.environment {
            Some(Ref::Id(id)) => id.clone(),
            Some(Ref::Name(n)) => n.clone(),
            None => spec_environment.to_owned(),
        }
    }

    fn find<'a>(list: &'a [(String, String)], how: &Ref) -> Option<&'a (String, String)> {
        list.iter().find(|(name, id)| match how {
            Ref::Id(want) => id == want,
            Ref::Name(want) => name == want,
        })
    }

    /// Whether the environment exists, or what `up` would create (`plan` shows it); fails
    /// when it is missing and may not be created.
    pub async fn environment_plan(&self, spec_environment: &str) -> Result<EnvironmentPlan> {
        let project = self.project().await?;
        self.plan_in(&project, spec_environment)
    }

    fn plan_in(&self, project: &ProjectInfo, spec_environment: &str) -> Result<EnvironmentPlan> {
        let how = self
            .inner
            .environment
            .clone()
            .unwrap_or_else(|| Ref::Name(spec_environment.to_owned()));
        if let Some((name, id)) = Self::find(&project.environments, &how) {
            return Ok(EnvironmentPlan::Exists {
                name: name.clone(),
                id: id.clone(),
            });
        }
        let label = self.environment_label(spec_environment);
        let missing = || {
            Error::not_found(format!(
                "Railway environment `{label}` in project {}",
                project.id
            ))
        };
        let Some(from) = &self.inner.create_from else {
            return Err(missing());
        };
        if self.inner.protected {
            return Err(Error::failed(format!(
                "Railway environment `{label}` does not exist and {spec_environment} is protected: a protected environment is never created by `staging`; create it on Railway"
            )));
        }
        let Ref::Name(name) = how else {
            return Err(Error::config(format!(
                "Railway environment id `{label}` does not exist; an environment to create needs a name (`environment`), not an id"
            )));
        };
        let (from_name, from_id) =
            Self::find(&project.environments, &from.source).ok_or_else(|| {
                Error::not_found(format!(
                    "Railway environment of {} (`{}`), to copy into `{name}`",
                    from.source_environment,
                    match &from.source {
                        Ref::Id(s) | Ref::Name(s) => s,
                    }
                ))
            })?;
        Ok(EnvironmentPlan::Create {
            name,
            from: from_name.clone(),
            from_id: from_id.clone(),
        })
    }

    /// Creates the environment when it is missing and the spec allows it (`environmentCreate`
    /// from the environment this one promotes to, changes staged, no initial deploys), commits
    /// the staged copy (`environmentPatchCommitStaged`, no deploys) and waits until every
    /// service of the project exists in it.
    /// Returns the plan that was carried out.
    pub async fn ensure_environment(&self, spec_environment: &str) -> Result<EnvironmentPlan> {
        let project = self.project().await?;
        let plan = self.plan_in(&project, spec_environment)?;
        if let EnvironmentPlan::Create { name, from_id, .. } = &plan {
            let created = self
                .client()
                .run::<queries::EnvironmentCreate>(
                    queries::environment_create::Variables {
                        project_id: project.id.clone(),
                        name: name.clone(),
                        source_environment_id: from_id.clone(),
                    },
                    &format!("environment `{name}`"),
                )
                .await?;
            let environment_id = created.environment_create.id;
            // The copy is staged: nothing exists in the new environment until it is committed.
            self.client()
                .run::<queries::EnvironmentCommit>(
                    queries::environment_commit::Variables {
                        environment_id: environment_id.clone(),
                        commit_message: Some(format!(
                            "staging: create `{name}` from its source environment"
                        )),
                    },
                    &format!("staged changes of environment `{name}`"),
                )
                .await?;
            self.wait_for_instances(&project, &environment_id, name)
                .await?;
            *self.inner.resolved.lock().await = Some(Scope {
                project_id: project.id.clone(),
                environment_id,
            });
        }
        Ok(plan)
    }

    /// Waits (bounded, at the provider's cadence) until every service of the project has
    /// its instance in the new environment: Railway applies a committed patch in the
    /// background.
    async fn wait_for_instances(
        &self,
        project: &ProjectInfo,
        environment_id: &str,
        name: &str,
    ) -> Result<()> {
        for (service_name, service_id) in &project.services {
            staging_core::poll_until(
                &staging_core::Cadence::for_provider(self),
                INSTANCES_TIMEOUT,
                || format!("service `{service_name}` to exist in Railway environment `{name}`"),
                || async {
                    let found = self
                        .client()
                        .run::<queries::ServiceInstance>(
                            queries::service_instance::Variables {
                                service_id: service_id.clone(),
                                environment_id: environment_id.to_owned(),
                            },
                            &format!("service `{service_name}` in environment `{name}`"),
                        )
                        .await;
                    match found {
                        Ok(_) => Ok(true),
                        Err(Error::NotFound { .. }) => Ok(false),
                        Err(e) => Err(e),
                    }
                },
                |exists: bool, _| {
                    Ok(if exists {
                        staging_core::retry::Next::Done(())
                    } else {
                        staging_core::retry::Next::Again("staged".to_owned())
                    })
                },
            )
            .await?;
        }
        Ok(())
    }

    /// The project and environment ids of this provider's environment.
    pub(crate) async fn scope(&self, spec_environment: &str) -> Result<(Scope, ProjectInfo)> {
        let project = self.project().await?;
        let mut resolved = self.inner.resolved.lock().await;
        if let Some(s) = resolved.as_ref() {
            return Ok((s.clone(), project));
        }
        let scope = match self.plan_in(&project, spec_environment)? {
            EnvironmentPlan::Exists { id, .. } => Scope {
                project_id: project.id.clone(),
                environment_id: id,
            },
            EnvironmentPlan::Create { name, from, .. } => {
                return Err(Error::not_found(format!(
                    "Railway environment `{name}` (`staging up` creates it from `{from}`)"
                )));
            }
        };
        *resolved = Some(scope.clone());
        Ok((scope, project))
    }

    async fn scope_of(&self, service: &ServiceHandle) -> Result<Scope> {
        if let Some(s) = self.inner.resolved.lock().await.as_ref() {
            return Ok(s.clone());
        }
        Ok(self.scope(&service.environment).await?.0)
    }

    /// The newest deployments of a service instance, newest first.
    pub(crate) async fn deployments(&self, service: &ServiceHandle) -> Result<Vec<RawDeployment>> {
        let scope = self.scope_of(service).await?;
        let data = self
            .client()
            .run::<queries::Deployments>(
                queries::deployments::Variables {
                    service_id: service.id.clone(),
                    environment_id: scope.environment_id,
                    first: DEPLOYMENTS_PAGE,
                },
                &format!("deployments of {}", service.name),
            )
            .await?;
        Ok(data
            .deployments
            .edges
            .into_iter()
            .map(|e| RawDeployment {
                id: e.node.id,
                status: status_word(&e.node.status),
                can_rollback: e.node.can_rollback,
                meta: e.node.meta,
            })
            .collect())
    }

    /// After a deploy mutation failed without a clear answer: a deployment of `sha` that is
    /// under way or live, if Railway lists one (then the commit is being deployed, or is
    /// already, and sending the mutation again would only start another build).
    async fn started_deployment(
        &self,
        service: &WriteTarget,
        sha: &str,
        failure: &Error,
    ) -> Result<Option<RawDeployment>> {
        if staging_rest::unanswered(failure) {
            // The request may still be in flight at Railway: give it the time one request
            // may take (at most 5 s) to land before asking.
            let settle = self
                .client()
                .settings()
                .timeout
                .min(std::time::Duration::from_secs(5));
            tokio::time::sleep(settle).await;
        }
        let listed = self.deployments(service).await.map_err(|e| {
            Error::failed(format!(
                "the deployment of {} may have started ({failure}), and reading Railway's \
                 deployments to find out failed: {e}; check the dashboard before running again",
                service.name
            ))
        })?;
        Ok(listed.into_iter().find(|d| {
            let deploy = d.to_deploy();
            deploy
                .commit
                .as_deref()
                .is_some_and(|c| commits_match(c, sha))
                && (deploy.status == DeployStatus::Live || !deploy.status.is_terminal())
        }))
    }

    pub(crate) async fn deployment(&self, id: &str) -> Result<RawDeployment> {
        let data = self
            .client()
            .run::<queries::Deployment>(
                queries::deployment::Variables { id: id.to_owned() },
                &format!("deployment {id}"),
            )
            .await?;
        let d = data.deployment;
        Ok(RawDeployment {
            id: d.id,
            status: status_word(&d.status),
            can_rollback: d.can_rollback,
            meta: d.meta,
        })
    }

    /// Sets several variables of a service instance in one `variableCollectionUpsert`
    /// (`replace: false`, so variables not named stay; `skipDeploys: true`, so the write
    /// starts no deployment: the deploy step starts the one deployment of the run).
    pub async fn set_variables(
        &self,
        service: &ServiceHandle,
        variables: &BTreeMap<String, SecretString>,
    ) -> Result<()> {
        if variables.is_empty() {
            return Ok(());
        }
        let scope = self.scope_of(service).await?;
        self.client()
            .run::<queries::UpsertVariables>(
                queries::upsert_variables::Variables {
                    project_id: scope.project_id,
                    environment_id: scope.environment_id,
                    service_id: service.id.clone(),
                    variables: EnvironmentVariables(variables.clone()),
                },
                &format!("variables of {}", service.name),
            )
            .await?;
        Ok(())
    }

    /// Fails unless the live deployment runs `expected` (the same SHA, compared whole): the
    /// deployment "succeeded" but a cached old image is serving. Names both commits.
    pub async fn verify_live_commit(
        &self,
        service: &ServiceHandle,
        expected: &str,
    ) -> Result<Deploy> {
        let state = self.live_state(service).await?;
        let live = state
            .live
            .ok_or_else(|| Error::failed(format!("{} has no live deployment", service.name)))?;
        match live.commit.as_deref() {
            Some(c) if commits_match(c, expected) => Ok(live),
            other => Err(Error::failed(format!(
                "{} serves commit {} (deployment {}), not {expected}: Railway may be serving a cached image",
                service.name,
                other.unwrap_or("unknown"),
                live.id
            ))),
        }
    }

    /// Log lines of one deployment: its build's, then its containers', oldest first.
    async fn deployment_lines(
        &self,
        deployment_id: &str,
        lines: usize,
        since: Option<String>,
    ) -> Result<Vec<LogLine>> {
        let limit = lines.clamp(1, 5000) as i64;
        let build = self
            .client()
            .run::<queries::BuildLogs>(
                queries::build_logs::Variables {
                    deployment_id: deployment_id.to_owned(),
                    limit,
                    start_date: since.clone(),
                },
                &format!("build logs of deployment {deployment_id}"),
            )
            .await?;
        let deploy = self
            .client()
            .run::<queries::DeploymentLogs>(
                queries::deployment_logs::Variables {
                    deployment_id: deployment_id.to_owned(),
                    limit,
                    start_date: since,
                },
                &format!("logs of deployment {deployment_id}"),
            )
            .await?;
        let build: Vec<LogLine> = build
            .build_logs
            .into_iter()
            .map(|l| LogLine {
                at: Some(l.timestamp),
                text: l.message,
            })
            .collect();
        let deploy: Vec<LogLine> = deploy
            .deployment_logs
            .into_iter()
            .map(|l| LogLine {
                at: Some(l.timestamp),
                text: l.message,
            })
            .collect();
        Ok(both_tails(build, deploy, lines))
    }
}

/// The tails of the build log and the deploy log together, `lines` at most, oldest first:
/// each keeps at least half of `lines` (what the other does not use goes to it), so a long
/// deploy log never hides the build log's end, where Railway writes its verdict
/// ("Healthcheck failed!").
fn both_tails(mut build: Vec<LogLine>, mut deploy: Vec<LogLine>, lines: usize) -> Vec<LogLine> {
    let half = lines / 2;
    let from_build = build
        .len()
        .min(half.max(lines.saturating_sub(deploy.len())));
    let from_deploy = deploy.len().min(lines - from_build);
    let mut out = build.split_off(build.len() - from_build);
    out.extend(deploy.split_off(deploy.len() - from_deploy));
    // Build lines come before the container's; a stable sort keeps that for equal times.
    out.sort_by(|a, b| a.at.cmp(&b.at));
    out
}

#[async_trait]
impl Provider for RailwayProvider {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn pacing(&self) -> Pacing {
        Pacing {
            poll_interval: self.inner.poll_interval,
            read_budget: self.inner.read_budget,
            ..Pacing::default()
        }
    }

    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            env: Some(self),
            rollback: Some(self),
            logs: Some(self),
            cancel: Some(self),
            environment_setup: Some(self),
        }
    }

    /// Commits only (Railway deploys a commit of the service's repository; an image source
    /// is a service setting, not a deploy).
    fn deploy_kinds(&self, _service: &str) -> DeployKinds {
        DeployKinds::COMMIT
    }

    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        let (scope, project) = self.scope(environment).await?;
        let how = self
            .inner
            .services
            .get(service)
            .cloned()
            .unwrap_or_else(|| Ref::Name(service.to_owned()));
        let (platform_name, id) = Self::find(&project.services, &how).ok_or_else(|| {
            Error::not_found(format!(
                "Railway service {} in project {} (service `{service}` of environment {environment})",
                match &how {
                    Ref::Id(i) => format!("id {i}"),
                    Ref::Name(n) => format!("named `{n}`"),
                },
                project.id
            ))
        })?;
        // A Railway service exists in every environment of its project; what a run writes
        // is the service *instance*: (service, environment).
        let identity = Identity::new(
            "railway service instance",
            [
                ("service", id.clone()),
                ("environment", scope.environment_id.clone()),
            ],
        )
        .named(Some(project.id.clone()), platform_name.clone());
        Ok(ServiceHandle {
            name: service.to_owned(),
            environment: environment.to_owned(),
            id: id.clone(),
            identity,
        })
    }

    /// The newest deployment, the live one (the newest `SUCCESS` or `SLEEPING`), and the
    /// service's public URL (a custom domain before a `*.up.railway.app` one).
    async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState> {
        let deployments = self.deployments(service).await?;
        let latest = deployments.first().map(RawDeployment::to_deploy);
        let live = deployments
            .iter()
            .map(RawDeployment::to_deploy)
            .find(|d| d.status == DeployStatus::Live);
        let scope = self.scope_of(service).await?;
        let instance = self
            .client()
            .run::<queries::ServiceInstance>(
                queries::service_instance::Variables {
                    service_id: service.id.clone(),
                    environment_id: scope.environment_id,
                },
                &format!("service {} in its environment", service.name),
            )
            .await?;
        let domains = instance.service_instance.domains;
        let url = domains
            .custom_domains
            .into_iter()
            .map(|d| d.domain)
            .chain(domains.service_domains.into_iter().map(|d| d.domain))
            .find_map(|d| url::Url::parse(&format!("https://{d}")).ok());
        Ok(LiveState { latest, live, url })
    }

    /// `serviceInstanceDeployV2` with the commit: a build of that commit, never a re-run of
    /// the image already built.
    async fn deploy(&self, service: &WriteTarget, request: &DeployRequest) -> Result<Deploy> {
        let sha = match &request.target {
            DeployTarget::Commit(sha) => sha.clone(),
            DeployTarget::Image(_) => {
                return Err(Error::not_supported(PROVIDER, "deploying a prebuilt image"));
            }
        };
        let scope = self.scope_of(service).await?;
        let what = format!("service {} ({})", service.name, service.id);
        let send = || {
            self.client().run::<queries::DeployCommit>(
                queries::deploy_commit::Variables {
                    service_id: service.id.clone(),
                    environment_id: scope.environment_id.clone(),
                    commit_sha: sha.clone(),
                },
                &what,
            )
        };
        // The mutation is sent once: the client re-sends it only when Railway refused it.
        // After an ambiguous failure (no answer, a 5xx) Railway is asked whether a
        // deployment of the commit is under way before the mutation is sent again.
        let data = match send().await {
            Ok(data) => data,
            Err(e) if staging_rest::ambiguous(&e) => {
                if let Some(started) = self.started_deployment(service, &sha, &e).await? {
                    return Ok(started.to_deploy());
                }
                tracing::info!(service = %service.name, error = %e, "the deployment did not start; sending it again");
                send().await?
            }
            Err(e) => return Err(e),
        };
        Ok(self
            .deployment(&data.service_instance_deploy_v2)
            .await?
            .to_deploy())
    }

    async fn deploy_status(&self, _service: &ServiceHandle, deploy_id: &str) -> Result<Deploy> {
        Ok(self.deployment(deploy_id).await?.to_deploy())
    }
}

#[async_trait]
impl EnvironmentSetup for RailwayProvider {
    /// A missing Railway environment that `create_if_missing` allows: what `plan` shows.
    async fn environment_setup(&self, environment: &str) -> Result<Option<String>> {
        Ok(match self.environment_plan(environment).await? {
            EnvironmentPlan::Exists { .. } => None,
            EnvironmentPlan::Create { name, from, .. } => Some(format!(
                "create Railway environment `{name}` from `{from}` (services and variables copied, the staged copy committed, nothing deployed)"
            )),
        })
    }

    /// Creates the missing Railway environment (`environmentCreate`), before the deploy step
    /// sets its variables and starts its first deploy.
    async fn prepare_environment(
        &self,
        environment: &staging_core::EnvironmentTarget,
    ) -> Result<Option<String>> {
        Ok(
            match self.ensure_environment(environment.environment()).await? {
                EnvironmentPlan::Exists { .. } => None,
                EnvironmentPlan::Create { name, from, .. } => Some(format!(
                    "created Railway environment `{name}` from `{from}` (services and variables copied, the staged copy committed, nothing deployed)"
                )),
            },
        )
    }
}

#[async_trait]
impl Rollback for RailwayProvider {
    /// Back to the newest deployment before the live one that Railway can roll back to.
    async fn rollback(&self, service: &WriteTarget) -> Result<Deploy> {
        let deployments = self.deployments(service).await?;
        let live_at = deployments
            .iter()
            .position(|d| deploy_status(&d.status) == DeployStatus::Live)
            .ok_or_else(|| {
                Error::failed(format!(
                    "{} has no live deployment to roll back from",
                    service.name
                ))
            })?;
        let previous = deployments[live_at + 1..]
            .iter()
            .find(|d| d.can_rollback && d.status == "REMOVED")
            .ok_or_else(|| {
                Error::failed(format!(
                    "{} has no earlier deployment to roll back to",
                    service.name
                ))
            })?;
        self.rollback_to(service, &previous.id.clone()).await
    }

    /// `deploymentRollback`: Railway starts a new deployment of that deployment's image
    /// (returned), or brings that deployment back itself (then it is returned).
    async fn rollback_to(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        let before: BTreeSet<String> = self
            .deployments(service)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
        self.client()
            .run::<queries::RollbackDeployment>(
                queries::rollback_deployment::Variables {
                    id: deploy_id.to_owned(),
                },
                &format!("rollback of {} to {deploy_id}", service.name),
            )
            .await?;
        let after = self.deployments(service).await?;
        match after.iter().find(|d| !before.contains(&d.id)) {
            Some(new) => Ok(new.to_deploy()),
            // No new deployment listed: Railway brings the earlier one back itself.
            None => Ok(self.deployment(deploy_id).await?.to_deploy()),
        }
    }
}

#[async_trait]
impl EnvVars for RailwayProvider {
    async fn env_vars(&self, service: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        let scope = self.scope_of(service).await?;
        let data = self
            .client()
            .run::<queries::Variables>(
                queries::variables::Variables {
                    project_id: scope.project_id,
                    environment_id: scope.environment_id,
                    service_id: service.id.clone(),
                },
                &format!("variables of {}", service.name),
            )
            .await?;
        Ok(data.variables.0)
    }

    async fn set_env_var(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()> {
        self.set_variables(service, &BTreeMap::from([(key.to_owned(), value.clone())]))
            .await
    }

    async fn set_env_vars(
        &self,
        service: &WriteTarget,
        variables: &BTreeMap<String, SecretString>,
    ) -> Result<()> {
        self.set_variables(service, variables).await
    }

    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()> {
        let scope = self.scope_of(service).await?;
        self.client()
            .run::<queries::DeleteVariable>(
                queries::delete_variable::Variables {
                    project_id: scope.project_id,
                    environment_id: scope.environment_id,
                    service_id: service.id.clone(),
                    name: key.to_owned(),
                },
                &format!("variable {key} of {}", service.name),
            )
            .await?;
        Ok(())
    }

    /// Railway returns every variable of the service instance with its value: a key it did not return is absent.
    async fn snapshot_env(
        &self,
        service: &ServiceHandle,
        current: &BTreeMap<String, SecretString>,
        keys: &[String],
    ) -> Result<staging_core::EnvSnapshot> {
        Ok(staging_core::EnvSnapshot::from_read(
            service, current, keys, true,
        ))
    }
}

#[async_trait]
impl Logs for RailwayProvider {
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        lines: usize,
    ) -> Result<Vec<String>> {
        let query = LogQuery {
            deploy_id: deploy_id.map(str::to_owned),
            lines,
            since: None,
        };
        Ok(self
            .logs(service, &query)
            .await?
            .into_iter()
            .map(|l| match l.at {
                Some(t) => format!("{t} {}", l.text),
                None => l.text,
            })
            .collect())
    }

    /// `buildLogs` and `deploymentLogs` of the deployment named (else the newest), from
    /// `since` (`startDate`) when given; oldest first.
    async fn logs(&self, service: &ServiceHandle, query: &LogQuery) -> Result<Vec<LogLine>> {
        let id = match &query.deploy_id {
            Some(id) => id.clone(),
            None => match self.deployments(service).await?.first() {
                Some(d) => d.id.clone(),
                None => return Ok(vec![]),
            },
        };
        let since = query
            .since
            .map(|t| humantime::format_rfc3339_seconds(t).to_string());
        self.deployment_lines(&id, query.lines, since).await
    }
}

#[async_trait]
impl Cancel for RailwayProvider {
    /// `deploymentCancel`, then the deployment as it is now. Railway marks a canceled
    /// deployment `REMOVED` (or `REMOVING`), the word it also uses for one replaced by a newer
    /// deployment; here, right after our cancel, it means canceled.
    async fn cancel_deploy(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        self.client()
            .run::<queries::CancelDeployment>(
                queries::cancel_deployment::Variables {
                    id: deploy_id.to_owned(),
                },
                &format!("deployment {deploy_id} of {}", service.name),
            )
            .await?;
        let mut deploy = self.deployment(deploy_id).await?.to_deploy();
        if matches!(
            deploy.raw_status.as_str(),
            "REMOVED" | "REMOVING" | "SKIPPED"
        ) {
            deploy.status = DeployStatus::Canceled;
        }
        Ok(deploy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(prefix: &str, n: usize, first: u32) -> Vec<LogLine> {
        (0..n)
            .map(|i| LogLine {
                at: Some(format!("2026-01-01T00:{:02}:00Z", first as usize + i)),
                text: format!("{prefix} {i}"),
            })
            .collect()
    }

    #[test]
    fn a_long_deploy_log_does_not_hide_the_end_of_the_build_log() {
        let mut build = lines("build", 5, 0);
        build.push(LogLine {
            at: Some("2026-01-01T00:05:30Z".into()),
            text: "Healthcheck failed!".into(),
        });
        let out = both_tails(build, lines("deploy", 40, 6), 10);
        assert_eq!(out.len(), 10);
        assert!(
            out.iter().any(|l| l.text == "Healthcheck failed!"),
            "{out:?}"
        );
        assert!(out.iter().any(|l| l.text == "deploy 39"), "{out:?}");
        // Oldest first.
        assert!(out.windows(2).all(|w| w[0].at <= w[1].at), "{out:?}");
        // A short deploy log leaves its share to the build log.
        let out = both_tails(lines("build", 30, 0), lines("deploy", 2, 40), 10);
        assert_eq!(
            out.iter().filter(|l| l.text.starts_with("build")).count(),
            8
        );
        assert!(both_tails(vec![], vec![], 10).is_empty());
    }

    #[test]
    fn railway_statuses_map_to_kinds() {
        let cases = [
            ("QUEUED", DeployStatus::Queued),
            ("WAITING", DeployStatus::Queued),
            ("NEEDS_APPROVAL", DeployStatus::Queued),
            ("INITIALIZING", DeployStatus::InProgress),
            ("BUILDING", DeployStatus::InProgress),
            ("DEPLOYING", DeployStatus::InProgress),
            ("SUCCESS", DeployStatus::Live),
            ("SLEEPING", DeployStatus::Live),
            ("FAILED", DeployStatus::Failed),
            ("CRASHED", DeployStatus::Failed),
            ("SKIPPED", DeployStatus::Canceled),
            ("REMOVED", DeployStatus::Superseded),
            ("REMOVING", DeployStatus::Superseded),
        ];
        for (word, want) in cases {
            assert_eq!(deploy_status(word), want, "{word}");
        }
    }

    #[test]
    fn meta_gives_commit_and_image() {
        let d = RawDeployment {
            id: "d".into(),
            status: "SUCCESS".into(),
            can_rollback: true,
            meta: Some(serde_json::json!({"commitHash": "abc", "image": "img:1"})),
        }
        .to_deploy();
        assert_eq!(d.commit.as_deref(), Some("abc"));
        assert_eq!(d.image.as_deref(), Some("img:1"));
        assert_eq!(d.status, DeployStatus::Live);
    }
}
