//! [`VercelProvider`]: the [`Provider`] trait over Vercel's REST API. A spec service is a
//! Vercel project; a spec environment is a Vercel target (production, preview of a branch,
//! or a custom environment).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use staging_core::{
    Cancel, Capabilities, Deploy, DeployKinds, DeployRequest, DeployStatus, DeployTarget, EnvVars,
    Error, Identity, LiveState, Logs, Pacing, Provider, Result, Rollback, ServiceHandle,
    WriteTarget,
};

use crate::builder::{ProjectRef, Target};
use crate::client::Client;
use crate::error::PROVIDER;
use crate::settings::SecretType;

/// The deployment `meta` key a staged deployment keeps the project's
/// `autoAssignCustomDomains` of before the run in (`"true"` / `"false"`).
pub(crate) const AUTO_ASSIGN_META: &str = "stagingAutoAssignCustomDomains";

/// How many deployments are read to find the live one and the ones before it.
const DEPLOYMENTS_PAGE: usize = 50;

/// The Vercel provider. Cheap to clone. One provider works in one Vercel target.
///
/// Built with [`crate::VercelBuilder`]; the CLI builds it through [`crate::VercelFactory`],
/// wrapped in [`staging_core::RetryProvider`].
#[derive(Debug, Clone)]
pub struct VercelProvider {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) target: Target,
    pub(crate) git_branch: String,
    pub(crate) secret_type: SecretType,
    /// Production deploys hold the domains back (see [`crate::StagedPromoteStep`]).
    pub(crate) staged: bool,
    /// The staged deployment of each project this provider created, not yet promoted.
    pub(crate) pending: std::sync::Mutex<BTreeMap<String, String>>,
    pub(crate) projects: BTreeMap<String, ProjectRef>,
    pub(crate) poll_interval: Duration,
    pub(crate) read_budget: staging_core::ReadBudget,
    /// Custom environment ids by project id, once found.
    pub(crate) custom_environment_ids: tokio::sync::Mutex<BTreeMap<String, String>>,
}

/// A project as the provider needs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Project {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) auto_assign_custom_domains: Option<bool>,
    #[serde(default)]
    pub(crate) targets: Option<BTreeMap<String, Option<TargetRef>>>,
    /// The last promote or rollback: Vercel finishes it in the background.
    #[serde(default)]
    pub(crate) last_alias_request: Option<AliasRequest>,
}

/// `lastAliasRequest` of a project: a promote or rollback and how far its job is.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AliasRequest {
    pub(crate) to_deployment_id: String,
    /// `pending`, `in-progress`, `succeeded`, `failed`, `skipped`.
    pub(crate) job_status: String,
}

/// How long a promote or rollback job may stay pending before the wait gives up.
pub(crate) const ALIAS_JOB_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TargetRef {
    pub(crate) id: String,
}

impl Project {
    /// The deployment the production domains point at.
    pub(crate) fn production_id(&self) -> Option<&str> {
        self.targets
            .as_ref()?
            .get("production")?
            .as_ref()
            .map(|t| t.id.as_str())
    }
}

/// One deployment: what `getDeployment`, `createDeployment`, `cancelDeployment` answer, and
/// (with `uid`) an item of `getDeployments`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawDeployment {
    #[serde(alias = "uid")]
    pub(crate) id: String,
    #[serde(default)]
    ready_state: Option<String>,
    /// What `getDeployments` items call their state (they carry both words).
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    pub(crate) meta: BTreeMap<String, Value>,
    #[serde(default)]
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) alias: Vec<String>,
    #[serde(default)]
    pub(crate) target: Option<String>,
    #[serde(default)]
    pub(crate) project_id: Option<String>,
}

impl RawDeployment {
    /// `QUEUED`, `BUILDING`, `READY`, …
    pub(crate) fn state(&self) -> Option<&str> {
        self.ready_state.as_deref().or(self.state.as_deref())
    }

    /// The commit the deployment was built from, whichever git host it came from.
    pub(crate) fn commit(&self) -> Option<String> {
        ["githubCommitSha", "gitlabCommitSha", "bitbucketCommitSha"]
            .iter()
            .find_map(|k| self.meta.get(*k).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    pub(crate) fn to_deploy(&self) -> Deploy {
        let raw = self.state().unwrap_or("UNKNOWN").to_owned();
        Deploy {
            id: self.id.clone(),
            status: deploy_status(&raw),
            commit: self.commit(),
            image: None,
            raw_status: raw,
        }
    }
}

/// Vercel's states in the toolkit's words.
pub(crate) fn deploy_status(word: &str) -> DeployStatus {
    match word {
        "QUEUED" | "INITIALIZING" => DeployStatus::Queued,
        "BUILDING" => DeployStatus::InProgress,
        "READY" => DeployStatus::Live,
        "ERROR" => DeployStatus::Failed,
        "CANCELED" => DeployStatus::Canceled,
        _ => DeployStatus::Superseded,
    }
}

#[derive(Debug, Deserialize)]
struct DeploymentList {
    deployments: Vec<RawDeployment>,
}

/// One env var record of a project.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnvRecord {
    #[serde(default)]
    pub(crate) id: Option<String>,
    pub(crate) key: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) value: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub(crate) target: Vec<String>,
    #[serde(default)]
    pub(crate) git_branch: Option<String>,
    #[serde(default)]
    pub(crate) custom_environment_ids: Vec<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => vec![],
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

impl std::fmt::Debug for EnvList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnvList({} records)", self.envs.len())
    }
}

#[derive(Deserialize)]
pub(crate) struct EnvList {
    pub(crate) envs: Vec<EnvRecord>,
}

/// Where an env var record applies, in Vercel's terms, for the provider's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `target` contains `production` / `preview` (with the branch, for preview).
    Standard {
        target: &'static str,
        branch: Option<String>,
    },
    /// `customEnvironmentIds` contains this id.
    Custom(String),
}

impl Scope {
    /// Whether `record` applies to this scope.
    pub(crate) fn covers(&self, record: &EnvRecord) -> bool {
        match self {
            Scope::Standard { target, branch } => {
                record.target.iter().any(|t| t == target)
                    && record.git_branch.as_deref().filter(|b| !b.is_empty()) == branch.as_deref()
            }
            Scope::Custom(id) => record.custom_environment_ids.iter().any(|c| c == id),
        }
    }

    /// Whether `record` applies to this scope and nothing else.
    fn only(&self, record: &EnvRecord) -> bool {
        self.covers(record)
            && match self {
                Scope::Standard { .. } => {
                    record.target.len() == 1 && record.custom_environment_ids.is_empty()
                }
                Scope::Custom(_) => {
                    record.target.is_empty() && record.custom_environment_ids.len() == 1
                }
            }
    }

    /// What a new record for this scope carries (besides key, value, type).
    fn fields(&self) -> Value {
        match self {
            Scope::Standard { target, branch } => {
                let mut v = json!({ "target": [target] });
                if let Some(b) = branch {
                    v["gitBranch"] = json!(b);
                }
                v
            }
            Scope::Custom(id) => json!({ "customEnvironmentIds": [id] }),
        }
    }

    /// The record's scopes with this one taken out (for a record shared with others).
    fn without(&self, record: &EnvRecord) -> Value {
        match self {
            Scope::Standard { target, .. } => {
                let rest: Vec<&String> = record.target.iter().filter(|t| t != target).collect();
                json!({ "target": rest })
            }
            Scope::Custom(id) => {
                let rest: Vec<&String> = record
                    .custom_environment_ids
                    .iter()
                    .filter(|c| *c != id)
                    .collect();
                json!({ "customEnvironmentIds": rest })
            }
        }
    }
}

/// The project id of a located service. A handle's id is `PROJECT@TARGET`: a Vercel project
/// serves every target, and what one spec environment owns is the project *in its target*
/// (so the isolation check tells production and staging of one project apart).
pub(crate) fn project_of(service: &ServiceHandle) -> &str {
    service
        .id
        .split_once('@')
        .map_or(service.id.as_str(), |(p, _)| p)
}

impl Target {
    /// The target's part of a handle's id.
    fn label(&self, branch: &str) -> String {
        match self {
            Target::Production => "production".to_owned(),
            Target::Preview => format!("preview:{branch}"),
            Target::Custom(slug) => format!("custom:{slug}"),
        }
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl VercelProvider {
    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The target this provider deploys to.
    pub fn target(&self) -> &Target {
        &self.inner.target
    }

    /// A project by id or name.
    pub(crate) async fn project(&self, id_or_name: &str) -> Result<Project> {
        self.client()
            .send(
                Method::GET,
                &format!("v9/projects/{}", enc(id_or_name)),
                &[],
                None,
                "getProject",
                &format!("project `{id_or_name}`"),
            )
            .await
    }

    /// One deployment.
    pub(crate) async fn deployment(&self, id: &str) -> Result<RawDeployment> {
        self.client()
            .send(
                Method::GET,
                &format!("v13/deployments/{}", enc(id)),
                &[],
                None,
                "getDeployment",
                &format!("deployment {id}"),
            )
            .await
    }

    /// The newest deployments of a project for the provider's target, newest first.
    pub(crate) async fn deployments(&self, project_id: &str) -> Result<Vec<RawDeployment>> {
        let mut query = vec![
            ("projectId", project_id.to_owned()),
            ("limit", DEPLOYMENTS_PAGE.to_string()),
        ];
        match &self.inner.target {
            Target::Production => query.push(("target", "production".to_owned())),
            // Preview and custom-environment deployments are told apart by their branch.
            Target::Preview | Target::Custom(_) => {
                query.push(("branch", self.inner.git_branch.clone()))
            }
        }
        let list: DeploymentList = self
            .client()
            .send(
                Method::GET,
                "v6/deployments",
                &query,
                None,
                "getDeployments",
                &format!("deployments of project {project_id}"),
            )
            .await?;
        Ok(list.deployments)
    }

    /// The scope env vars of this provider's target live in.
    pub(crate) async fn scope(&self, project_id: &str) -> Result<Scope> {
        Ok(match &self.inner.target {
            Target::Production => Scope::Standard {
                target: "production",
                branch: None,
            },
            Target::Preview => Scope::Standard {
                target: "preview",
                branch: Some(self.inner.git_branch.clone()),
            },
            Target::Custom(slug) => {
                Scope::Custom(self.custom_environment_id(project_id, slug).await?)
            }
        })
    }

    async fn custom_environment_id(&self, project_id: &str, slug: &str) -> Result<String> {
        let mut cache = self.inner.custom_environment_ids.lock().await;
        if let Some(id) = cache.get(project_id) {
            return Ok(id.clone());
        }
        #[derive(Deserialize)]
        struct CustomEnvironment {
            id: String,
        }
        let env: CustomEnvironment = self
            .client()
            .send(
                Method::GET,
                &format!(
                    "v9/projects/{}/custom-environments/{}",
                    enc(project_id),
                    enc(slug)
                ),
                &[],
                None,
                "getCustomEnvironment",
                &format!("custom environment `{slug}` of project {project_id}"),
            )
            .await?;
        cache.insert(project_id.to_owned(), env.id.clone());
        Ok(env.id)
    }

    /// The env var records of a project (values only when `decrypt`).
    pub(crate) async fn env_records(
        &self,
        project_id: &str,
        decrypt: bool,
    ) -> Result<Vec<EnvRecord>> {
        let mut query = vec![];
        if decrypt {
            query.push(("decrypt", "true".to_owned()));
        }
        let list: EnvList = self
            .client()
            .send(
                Method::GET,
                &format!("v10/projects/{}/env", enc(project_id)),
                &query,
                None,
                "filterProjectEnvs",
                &format!("env vars of project {project_id}"),
            )
            .await?;
        Ok(list.envs)
    }

    /// Fails unless the deployment was built from `expected` (compared whole) and, in
    /// production, the production domains point at it. Names both commits.
    pub async fn verify_deployment(
        &self,
        service: &ServiceHandle,
        deployment_id: &str,
        expected: &str,
    ) -> Result<Deploy> {
        let d = self.deployment(deployment_id).await?;
        let deploy = d.to_deploy();
        match deploy.commit.as_deref() {
            Some(c) if staging_core::pipeline::commits_match(c, expected) => {}
            other => {
                return Err(Error::failed(format!(
                    "{}: deployment {deployment_id} was built from commit {}, not {expected}",
                    service.name,
                    other.unwrap_or("unknown")
                )));
            }
        }
        if self.inner.target == Target::Production {
            let project = self.project(project_of(service)).await?;
            if project.production_id() != Some(deployment_id) {
                return Err(Error::failed(format!(
                    "{}: the production domains point at deployment {}, not {deployment_id} (commit {expected})",
                    service.name,
                    project.production_id().unwrap_or("none")
                )));
            }
        }
        Ok(deploy)
    }

    /// Reads a project's `autoAssignCustomDomains`.
    pub async fn auto_assign_custom_domains(&self, service: &ServiceHandle) -> Result<bool> {
        Ok(self
            .project(project_of(service))
            .await?
            .auto_assign_custom_domains
            .unwrap_or(true))
    }

    /// Sets a project's `autoAssignCustomDomains` (`updateProject`).
    pub async fn set_auto_assign_custom_domains(
        &self,
        service: &WriteTarget,
        on: bool,
    ) -> Result<()> {
        let _: Project = self
            .client()
            .send(
                Method::PATCH,
                &format!("v9/projects/{}", enc(project_of(service))),
                &[],
                Some(&json!({ "autoAssignCustomDomains": on })),
                "updateProject",
                &format!("project {}", project_of(service)),
            )
            .await?;
        Ok(())
    }

    /// Points the production domains at `deployment_id` (`requestPromote`).
    pub async fn promote(&self, service: &WriteTarget, deployment_id: &str) -> Result<()> {
        self.client()
            .send_empty(
                Method::POST,
                &format!(
                    "v10/projects/{}/promote/{}",
                    enc(project_of(service)),
                    enc(deployment_id)
                ),
                None,
                "requestPromote",
                &format!("deployment {deployment_id} of {}", service.name),
            )
            .await?;
        self.wait_alias_job(service, deployment_id, "promote").await
    }

    /// Waits (bounded, at the provider's cadence) until the background job of a promote or
    /// rollback to `deployment_id` has finished: `lastAliasRequest.jobStatus` leaves
    /// `pending` / `in-progress`. A `failed` job is an error with Vercel's reason (the
    /// aliases it could not move and their status). Without a `lastAliasRequest` for this
    /// deployment, the wait ends when the production domains point at it.
    pub(crate) async fn wait_alias_job(
        &self,
        service: &ServiceHandle,
        deployment_id: &str,
        kind: &str,
    ) -> Result<()> {
        let project_id = project_of(service);
        let failed = staging_core::poll_until(
            &staging_core::Cadence::for_provider(self),
            ALIAS_JOB_TIMEOUT,
            || {
                format!(
                    "Vercel's {kind} job to deployment {deployment_id} of {}",
                    service.name
                )
            },
            || self.project(project_id),
            |project: Project, _| {
                let job = project
                    .last_alias_request
                    .as_ref()
                    .filter(|r| r.to_deployment_id == deployment_id);
                Ok(match job.map(|r| r.job_status.as_str()) {
                    Some("failed") => staging_core::retry::Next::Done(true),
                    Some("succeeded" | "skipped") => staging_core::retry::Next::Done(false),
                    Some(other) => staging_core::retry::Next::Again(other.to_owned()),
                    None if project.production_id() == Some(deployment_id) => {
                        staging_core::retry::Next::Done(false)
                    }
                    None => staging_core::retry::Next::Again("not started".to_owned()),
                })
            },
        )
        .await?;
        if !failed {
            return Ok(());
        }
        Err(Error::failed(format!(
            "{}: Vercel's {kind} job to deployment {deployment_id} failed: {}",
            service.name,
            self.alias_failures(project_id).await
        )))
    }

    /// Vercel's reason for a failed promote or rollback job: the aliases it did not move
    /// (`listPromoteAliases?failedOnly=true`), each with its status.
    async fn alias_failures(&self, project_id: &str) -> String {
        #[derive(Deserialize)]
        struct Aliases {
            #[serde(default)]
            aliases: Vec<AliasStatus>,
        }
        #[derive(Deserialize)]
        struct AliasStatus {
            alias: String,
            status: String,
        }
        let listed: Result<Aliases> = self
            .client()
            .send(
                Method::GET,
                &format!("v1/projects/{}/promote/aliases", enc(project_id)),
                &[
                    ("failedOnly", "true".to_owned()),
                    ("limit", "20".to_owned()),
                ],
                None,
                "listPromoteAliases",
                &format!("aliases of the last promote of project {project_id}"),
            )
            .await;
        match listed {
            Ok(list) if !list.aliases.is_empty() => format!(
                "aliases not moved: {}",
                list.aliases
                    .iter()
                    .map(|a| format!("{} ({})", a.alias, a.status))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Ok(_) => "Vercel names no failed alias".to_owned(),
            Err(e) => format!("the failed aliases could not be read: {e}"),
        }
    }

    /// The deployment's URL (`https://…vercel.app`), what a staged deployment is smoked at.
    pub async fn deployment_url(&self, deployment_id: &str) -> Result<url::Url> {
        let d = self.deployment(deployment_id).await?;
        let host = d
            .url
            .ok_or_else(|| Error::failed(format!("deployment {deployment_id} has no URL")))?;
        url::Url::parse(&format!("https://{host}"))
            .map_err(|e| Error::failed(format!("deployment {deployment_id}: bad URL: {e}")))
    }

    fn project_ref(&self, service: &str) -> ProjectRef {
        self.inner
            .projects
            .get(service)
            .cloned()
            .unwrap_or_else(|| ProjectRef {
                id_or_name: service.to_owned(),
                repo: None,
            })
    }
}

#[async_trait]
impl Provider for VercelProvider {
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
            ..Capabilities::none()
        }
    }

    fn deploy_kinds(&self, _service: &str) -> DeployKinds {
        DeployKinds::COMMIT
    }

    /// The project by id or name (and, for a custom environment, that it exists).
    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        let r = self.project_ref(service);
        let project = self.project(&r.id_or_name).await?;
        if let Target::Custom(slug) = &self.inner.target {
            self.custom_environment_id(&project.id, slug).await?;
        }
        let target = self.inner.target.label(&self.inner.git_branch);
        // One project, several targets: deploys and variable values are per target.
        let identity = Identity::new(
            "vercel project target",
            [("project", project.id.clone()), ("target", target.clone())],
        );
        Ok(ServiceHandle {
            name: service.to_owned(),
            environment: environment.to_owned(),
            id: format!("{}@{target}", project.id),
            identity,
        })
    }

    /// Production: the deployment the production domains point at. Preview and custom
    /// environments: the newest READY deployment of the branch.
    async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState> {
        let list = self.deployments(project_of(service)).await?;
        let latest = list.first().map(RawDeployment::to_deploy);
        let pending = self
            .inner
            .pending
            .lock()
            .ok()
            .and_then(|p| p.get(project_of(service)).cloned());
        let live = match &self.inner.target {
            Target::Production => {
                let project = self.project(project_of(service)).await?;
                let staged = match pending {
                    Some(id) if project.production_id() != Some(id.as_str()) => {
                        Some(self.deployment(&id).await?).filter(|d| d.state() == Some("READY"))
                    }
                    _ => None,
                };
                match (staged, project.production_id()) {
                    // A staged deployment is what this run verifies and smokes, at its own
                    // URL (it has no production domain yet).
                    (Some(d), _) => Some(RawDeployment { alias: vec![], ..d }),
                    (None, Some(id)) => Some(self.deployment(id).await?),
                    (None, None) => None,
                }
            }
            _ => list.iter().find(|d| d.state() == Some("READY")).cloned(),
        };
        let url = live.as_ref().and_then(|d| {
            let host = d.alias.first().or(d.url.as_ref())?;
            url::Url::parse(&format!("https://{host}")).ok()
        });
        Ok(LiveState {
            latest,
            live: live.as_ref().map(RawDeployment::to_deploy),
            url,
        })
    }

    /// `createDeployment` from the git source at the commit, for the target.
    async fn deploy(&self, service: &WriteTarget, request: &DeployRequest) -> Result<Deploy> {
        let DeployTarget::Commit(sha) = &request.target else {
            return Err(Error::not_supported(
                PROVIDER,
                "deploying an image (Vercel builds from the git source)",
            ));
        };
        let r = self.project_ref(&service.name);
        let repo = r.repo.ok_or_else(|| {
            Error::config(format!(
                "service `{}` has no `repo` (`org/repo` on GitHub) to build commit {sha} from",
                service.name
            ))
        })?;
        let (org, name) = repo.split_once('/').ok_or_else(|| {
            Error::config(format!(
                "`repo` of `{}` is `{repo}`, not `org/repo`",
                service.name
            ))
        })?;
        let mut body = json!({
            "name": project_of(service),
            "project": project_of(service),
            "gitSource": {
                "type": "github",
                "org": org,
                "repo": name,
                "ref": self.inner.git_branch,
                "sha": sha,
            },
        });
        let staged = self.inner.staged && self.inner.target == Target::Production;
        if staged {
            // Held back: the deployment must not take the production domains when READY.
            // What the setting was is kept on the deployment, for the promote step.
            let before = self.auto_assign_custom_domains(service).await?;
            if before {
                self.set_auto_assign_custom_domains(service, false).await?;
            }
            body["meta"] = json!({ AUTO_ASSIGN_META: before.to_string() });
        }
        match &self.inner.target {
            Target::Production => body["target"] = json!("production"),
            Target::Preview => {}
            Target::Custom(slug) => body["customEnvironmentSlugOrId"] = json!(slug),
        }
        let created: Result<RawDeployment> = self
            .client()
            .send(
                Method::POST,
                "v13/deployments",
                &[],
                Some(&body),
                "createDeployment",
                &format!("project {}", project_of(service)),
            )
            .await;
        let d = match created {
            Ok(d) => d,
            Err(e) => {
                if staged && body["meta"][AUTO_ASSIGN_META] == "true" {
                    // Nothing was deployed: the setting goes back at once.
                    self.set_auto_assign_custom_domains(service, true).await?;
                }
                return Err(e);
            }
        };
        if staged && let Ok(mut pending) = self.inner.pending.lock() {
            pending.insert(project_of(service).to_owned(), d.id.clone());
        }
        Ok(d.to_deploy())
    }

    async fn deploy_status(&self, _service: &ServiceHandle, deploy_id: &str) -> Result<Deploy> {
        Ok(self.deployment(deploy_id).await?.to_deploy())
    }
}

#[async_trait]
impl Rollback for VercelProvider {
    /// Production only: the production domains back to the READY production deployment
    /// before the one they point at.
    async fn rollback(&self, service: &WriteTarget) -> Result<Deploy> {
        self.production_only("rollback")?;
        let project = self.project(project_of(service)).await?;
        let current = project.production_id().map(str::to_owned);
        let list = self.deployments(project_of(service)).await?;
        let after_current = list
            .iter()
            .skip_while(|d| Some(&d.id) != current.as_ref())
            .skip(1)
            .find(|d| d.state() == Some("READY"))
            .ok_or_else(|| {
                Error::failed(format!(
                    "{}: no READY production deployment before {} to roll back to",
                    service.name,
                    current.as_deref().unwrap_or("the current one")
                ))
            })?;
        self.rollback_to(service, &after_current.id.clone()).await
    }

    /// The rollback call (`POST /v1/projects/{id}/rollback/{deployment}`, not in Vercel's
    /// published contract) after checking the deployment is a READY production deployment
    /// of the project.
    async fn rollback_to(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        self.production_only("rollback")?;
        let d = self.deployment(deploy_id).await?;
        if d.project_id.as_deref() != Some(project_of(service))
            || d.ready_state.as_deref() != Some("READY")
            || d.target.as_deref() != Some("production")
        {
            return Err(Error::failed(format!(
                "{}: deployment {deploy_id} is not a READY production deployment of project {}",
                service.name,
                project_of(service)
            )));
        }
        // Already serving production: an instant rollback to it would change nothing but
        // the project's history (and re-enable what a staged promote turned off).
        if self.project(project_of(service)).await?.production_id() == Some(deploy_id) {
            return Ok(d.to_deploy());
        }
        self.client()
            .send_unlisted(
                &format!(
                    "v1/projects/{}/rollback/{}",
                    enc(project_of(service)),
                    enc(deploy_id)
                ),
                "rollback",
                &format!("deployment {deploy_id} of {}", service.name),
            )
            .await?;
        self.wait_alias_job(service, deploy_id, "rollback").await?;
        Ok(self.deployment(deploy_id).await?.to_deploy())
    }
}

#[async_trait]
impl EnvVars for VercelProvider {
    /// The target's vars (decrypted; `sensitive` ones cannot be read and are left out).
    async fn env_vars(&self, service: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        let scope = self.scope(project_of(service)).await?;
        let records = self.env_records(project_of(service), true).await?;
        Ok(records
            .into_iter()
            .filter(|r| scope.covers(r) && r.kind != "sensitive")
            .filter_map(|r| Some((r.key, SecretString::from(r.value?))))
            .collect())
    }

    /// One key of the target: a record of this target alone is edited; a record shared with
    /// other targets loses this target and a new record is made for it, so no other
    /// target's value changes. Written as `encrypted` or `sensitive`, never `plain`.
    async fn set_env_var(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()> {
        crate::env::set(self, service, key, value).await
    }

    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()> {
        crate::env::delete(self, service, key).await
    }

    /// The target's records of those keys, kept whole for an exact restore.
    async fn snapshot_env(
        &self,
        service: &ServiceHandle,
        current: &BTreeMap<String, SecretString>,
        keys: &[String],
    ) -> Result<staging_core::EnvSnapshot> {
        crate::restore::snapshot(self, service, current, keys).await
    }

    /// The records as they were: the run's new records deleted, the originals' fields (a
    /// split record's targets among them) written back.
    async fn restore_env(
        &self,
        target: &WriteTarget,
        snapshot: &staging_core::EnvSnapshot,
    ) -> Result<staging_core::EnvRestore> {
        crate::restore::restore(self, target, snapshot).await
    }
}

#[async_trait]
impl Logs for VercelProvider {
    /// The build events of the deployment (the newest of the target when none is named).
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        lines: usize,
    ) -> Result<Vec<String>> {
        let id = match deploy_id {
            Some(id) => id.to_owned(),
            None => match self.deployments(project_of(service)).await?.first() {
                Some(d) => d.id.clone(),
                None => return Ok(vec![]),
            },
        };
        let events: Vec<Value> = self
            .client()
            .send(
                Method::GET,
                &format!("v3/deployments/{}/events", enc(&id)),
                &[
                    ("builds", "1".to_owned()),
                    ("limit", lines.clamp(1, 5000).to_string()),
                ],
                None,
                "getDeploymentEvents",
                &format!("events of deployment {id}"),
            )
            .await?;
        let mut out: Vec<String> = events
            .iter()
            .filter_map(|e| {
                e.pointer("/payload/text")
                    .or_else(|| e.get("text"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect();
        let skip = out.len().saturating_sub(lines);
        out.drain(..skip);
        Ok(out)
    }
}

#[async_trait]
impl Cancel for VercelProvider {
    async fn cancel_deploy(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        let d: RawDeployment = self
            .client()
            .send(
                Method::PATCH,
                &format!("v12/deployments/{}/cancel", enc(deploy_id)),
                &[],
                None,
                "cancelDeployment",
                &format!("deployment {deploy_id} of {}", service.name),
            )
            .await?;
        Ok(d.to_deploy())
    }
}

impl VercelProvider {
    fn production_only(&self, what: &str) -> Result<()> {
        if self.inner.target != Target::Production {
            return Err(Error::failed(format!(
                "{what} moves the production domains; this environment deploys to {:?}",
                self.inner.target
            )));
        }
        Ok(())
    }

    pub(crate) fn secret_type(&self) -> SecretType {
        self.inner.secret_type
    }

    /// Writes one record's fields.
    pub(crate) async fn edit_env(
        &self,
        project_id: &str,
        env_id: &str,
        body: &Value,
    ) -> Result<()> {
        let _: Value = self
            .client()
            .send(
                Method::PATCH,
                &format!("v9/projects/{}/env/{}", enc(project_id), enc(env_id)),
                &[],
                Some(body),
                "editProjectEnv",
                &format!("env var {env_id} of project {project_id}"),
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn create_env(&self, project_id: &str, body: &Value) -> Result<()> {
        let _: Value = self
            .client()
            .send(
                Method::POST,
                &format!("v10/projects/{}/env", enc(project_id)),
                &[],
                Some(body),
                "createProjectEnv",
                &format!("env vars of project {project_id}"),
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn remove_env(&self, project_id: &str, env_id: &str) -> Result<()> {
        let _: Value = self
            .client()
            .send(
                Method::DELETE,
                &format!("v9/projects/{}/env/{}", enc(project_id), enc(env_id)),
                &[],
                None,
                "removeProjectEnv",
                &format!("env var {env_id} of project {project_id}"),
            )
            .await?;
        Ok(())
    }

    pub(crate) fn scope_fields(scope: &Scope) -> Value {
        scope.fields()
    }

    pub(crate) fn scope_without(scope: &Scope, record: &EnvRecord) -> Value {
        scope.without(record)
    }

    pub(crate) fn scope_only(scope: &Scope, record: &EnvRecord) -> bool {
        scope.only(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vercel_states_map_to_kinds() {
        for (word, want) in [
            ("QUEUED", DeployStatus::Queued),
            ("INITIALIZING", DeployStatus::Queued),
            ("BUILDING", DeployStatus::InProgress),
            ("READY", DeployStatus::Live),
            ("ERROR", DeployStatus::Failed),
            ("CANCELED", DeployStatus::Canceled),
            ("DELETED", DeployStatus::Superseded),
        ] {
            assert_eq!(deploy_status(word), want, "{word}");
        }
    }
}
