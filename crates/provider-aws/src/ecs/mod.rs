//! [`EcsProvider`]: services on ECS (Fargate or EC2), deployed by task-definition revision.
//!
//! - **deploy** registers a new revision of the newest revision of the service's family,
//!   with the new image in the service's container, tagged with the commit and with the
//!   revision the service ran before; then `UpdateService`. The deploy's id is the new
//!   revision's ARN.
//! - **status** is judged from the service (see [`rollout`]): COMPLETED or FAILED rollout
//!   state, counts, and the running tasks' revisions.
//! - **rollback** goes to the revision tagged as previous (else the next lower active one).
//! - **env vars** are the container's `environment` in the newest revision of the family:
//!   what the next deploy runs. Setting one registers a revision without deploying it.
//! - **secret env vars** (the spec's `secret = true`, and plain values that embed one) are
//!   never written into a task definition: the value goes to Secrets Manager, as the
//!   environment's `secrets_prefix` + the name, and the container's `secrets` gets a
//!   `valueFrom` reference to that secret's ARN. A name is in `environment` or in `secrets`,
//!   never both; a secret found in plain `environment` is moved on the next write.

pub(crate) mod rollout;
mod taskdef;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use aws_sdk_ecs::types::{DesiredStatus, Service, Task, TaskDefinition, TaskDefinitionField};
use secrecy::{ExposeSecret, SecretString};
use staging_core::{
    Capabilities, Deploy, DeployKinds, DeployRequest, DeployStatus, DeployTarget, EnvVars, Error,
    Identity, LiveState, LogLine, LogQuery, Pacing, Provider, ReadBudget, Result, Rollback,
    ServiceHandle, WriteTarget, async_trait,
};
use tokio::sync::OnceCell;

use crate::SecretsManagerStore;
use crate::context::AwsContext;
use crate::error::{PROVIDER, map_sdk_error};
use crate::settings::{EcsServiceSettings, commit_of_image, image_for_commit};
use rollout::{DeploymentView, ServiceView, TaskView, judge, revision_of, short_name};
use taskdef::{Change, TAG_COMMIT, TAG_PREVIOUS};

/// The reads a wait may budget with. Amazon ECS throttles per account and Region with token
/// buckets per group of actions; the service read actions (`DescribeServices`) refill at 20
/// requests a second (burst 100), shared with every other caller in the account. One status
/// poll makes one `DescribeServices` call (its `ListTasks`, `DescribeTasks` and
/// `DescribeTaskDefinition` calls count against buckets of their own, with the same or
/// higher rates). A quarter of 1,200 a minute leaves the 2 s floor in charge up to 10
/// services; 20 services are polled every 4 s.
pub const READ_BUDGET: ReadBudget = ReadBudget::per_minute(
    1200,
    "Amazon ECS: service read actions (DescribeServices) refill at 20 a second per account and Region",
);

/// The ECS provider: one ECS service per service of the spec.
pub struct EcsProvider {
    ctx: AwsContext,
    services: BTreeMap<String, EcsServiceSettings>,
    client: OnceCell<aws_sdk_ecs::Client>,
    poll_interval: Duration,
    read_budget: ReadBudget,
    /// Where secret variables' values are kept, and which variables are secrets.
    secrets: Option<(SecretsManagerStore, BTreeSet<String>)>,
}

impl fmt::Debug for EcsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcsProvider")
            .field("ctx", &self.ctx)
            .field("services", &self.services)
            .field("secrets", &self.secrets)
            .finish()
    }
}

/// A stopped task of a rollout and why it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoppedTask {
    /// The task id (the last part of its ARN).
    pub task_id: String,
    /// `short_name` of its task definition (`web:7`).
    pub task_definition: String,
    /// ECS's `stoppedReason` (`Essential container in task exited`).
    pub reason: String,
    /// Each container's exit code and reason (`web exit 1: ...`).
    pub containers: Vec<String>,
}

/// What went wrong in a rollout: the stopped tasks' reasons and the last log lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutDiagnosis {
    /// Stopped tasks of the deploy's revision, newest first.
    pub stopped_tasks: Vec<StoppedTask>,
    /// The last CloudWatch Logs lines of the container (may hold secrets: redact first).
    pub log_lines: Vec<String>,
    /// Why there are no log lines, when there are none.
    pub log_note: Option<String>,
}

impl fmt::Display for RolloutDiagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stopped_tasks.is_empty() {
            write!(f, "no stopped tasks")?;
        }
        for (i, t) in self.stopped_tasks.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(
                f,
                "task {} ({}) stopped: {}",
                t.task_id, t.task_definition, t.reason
            )?;
            if !t.containers.is_empty() {
                write!(f, " [{}]", t.containers.join(", "))?;
            }
        }
        if !self.log_lines.is_empty() {
            write!(f, "; last log lines: {}", self.log_lines.join(" | "))?;
        } else if let Some(note) = &self.log_note {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

/// Everything the provider reads of a service: for `staging status`-like output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsServiceState {
    /// The service's ARN.
    pub service_arn: String,
    /// The task definition the service is set to (`web:7`).
    pub task_definition: String,
    /// Its revision number.
    pub revision: Option<u32>,
    /// The deployed container's image.
    pub image: Option<String>,
    /// The image digests the running tasks report for that container.
    pub image_digests: Vec<String>,
    /// The commit the revision stands for, when known.
    pub commit: Option<String>,
    /// Running tasks.
    pub running: i32,
    /// Desired tasks.
    pub desired: i32,
    /// Pending tasks.
    pub pending: i32,
    /// The rollout state of the service's deployment for that revision, when ECS says.
    pub rollout_state: Option<String>,
    /// Our judgement of the rollout, and its words.
    pub status: DeployStatus,
    /// The words for `status`.
    pub status_detail: String,
}

impl EcsProvider {
    /// A provider for these services, by the spec's service name.
    pub fn new(ctx: AwsContext, services: BTreeMap<String, EcsServiceSettings>) -> Self {
        EcsProvider {
            ctx,
            services,
            client: OnceCell::new(),
            poll_interval: Duration::from_secs(2),
            read_budget: READ_BUDGET,
            secrets: None,
        }
    }

    /// Keep the values of the variables named in `secret_names` in Secrets Manager
    /// (`store`), referenced from the container's `secrets`, never in its `environment`.
    /// Without this, setting a variable that a secret name would need is refused.
    pub fn with_secrets(
        mut self,
        store: SecretsManagerStore,
        secret_names: impl IntoIterator<Item = String>,
    ) -> Self {
        self.secrets = Some((store, secret_names.into_iter().collect()));
        self
    }

    fn is_secret(&self, key: &str) -> bool {
        self.secrets
            .as_ref()
            .is_some_and(|(_, names)| names.contains(key))
    }

    /// The shortest interval between two polls of one deploy (default 2 s); the read budget
    /// makes it longer when many services are waited on at once.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The read budget waits pace themselves against (default [`READ_BUDGET`]).
    pub fn with_read_budget(mut self, budget: ReadBudget) -> Self {
        self.read_budget = budget;
        self
    }

    async fn client(&self) -> &aws_sdk_ecs::Client {
        self.client.get_or_init(|| self.ctx.ecs()).await
    }

    fn settings(&self, service: &str) -> Result<&EcsServiceSettings> {
        self.services.get(service).ok_or_else(|| {
            Error::not_found(format!(
                "service `{service}` has no aws settings (known: {})",
                self.known()
            ))
        })
    }

    fn known(&self) -> String {
        self.services.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    async fn describe_service(&self, s: &EcsServiceSettings) -> Result<Service> {
        let out = self
            .client()
            .await
            .describe_services()
            .cluster(&s.cluster)
            .services(&s.service)
            .send()
            .await
            .map_err(|e| map_sdk_error("ecs:DescribeServices", e))?;
        out.services()
            .iter()
            .find(|svc| svc.status() != Some("INACTIVE"))
            .cloned()
            .ok_or_else(|| {
                Error::not_found(format!(
                    "ECS service `{}` in cluster `{}`",
                    s.service, s.cluster
                ))
            })
    }

    async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<(TaskDefinition, Vec<aws_sdk_ecs::types::Tag>)> {
        let out = self
            .client()
            .await
            .describe_task_definition()
            .task_definition(task_definition)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| map_sdk_error("ecs:DescribeTaskDefinition", e))?;
        let td = out
            .task_definition()
            .cloned()
            .ok_or_else(|| Error::not_found(format!("task definition {task_definition}")))?;
        Ok((td, out.tags().to_vec()))
    }

    /// The tasks of the service in this state (ECS marks a service's tasks with the group
    /// `service:NAME`; the filter also keeps emulators that ignore `serviceName` honest).
    async fn service_tasks(
        &self,
        s: &EcsServiceSettings,
        status: DesiredStatus,
    ) -> Result<Vec<Task>> {
        let client = self.client().await;
        let mut arns = vec![];
        let mut next: Option<String> = None;
        loop {
            let out = client
                .list_tasks()
                .cluster(&s.cluster)
                .service_name(&s.service)
                .desired_status(status.clone())
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| map_sdk_error("ecs:ListTasks", e))?;
            arns.extend(out.task_arns().iter().cloned());
            match out.next_token() {
                Some(t) if arns.len() < 500 => next = Some(t.to_owned()),
                _ => break,
            }
        }
        let group = format!("service:{}", s.service);
        let mut tasks = vec![];
        for chunk in arns.chunks(100) {
            let out = client
                .describe_tasks()
                .cluster(&s.cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| map_sdk_error("ecs:DescribeTasks", e))?;
            tasks.extend(
                out.tasks()
                    .iter()
                    .filter(|t| t.group() == Some(group.as_str()))
                    .cloned(),
            );
        }
        Ok(tasks)
    }

    async fn view(&self, s: &EcsServiceSettings) -> Result<(Service, ServiceView, Vec<Task>)> {
        let service = self.describe_service(s).await?;
        let tasks = self.service_tasks(s, DesiredStatus::Running).await?;
        let view = ServiceView {
            task_definition: service.task_definition().unwrap_or_default().to_owned(),
            desired: service.desired_count(),
            running: service.running_count(),
            deployments: service
                .deployments()
                .iter()
                .map(|d| DeploymentView {
                    task_definition: d.task_definition().unwrap_or_default().to_owned(),
                    status: d.status().unwrap_or_default().to_owned(),
                    rollout_state: d.rollout_state().map(|r| r.as_str().to_owned()),
                    rollout_reason: d.rollout_state_reason().map(str::to_owned),
                    running: d.running_count(),
                    desired: d.desired_count(),
                })
                .collect(),
            tasks: tasks
                .iter()
                .map(|t| TaskView {
                    task_definition: t.task_definition_arn().unwrap_or_default().to_owned(),
                    last_status: t.last_status().unwrap_or_default().to_owned(),
                })
                .collect(),
        };
        Ok((service, view, tasks))
    }

    /// The image and commit of a revision.
    async fn revision_facts(
        &self,
        s: &EcsServiceSettings,
        task_definition: &str,
    ) -> Result<(Option<String>, Option<String>)> {
        let (td, tags) = self.describe_task_definition(task_definition).await?;
        let container = taskdef::container_name(&td, s.container.as_deref())?;
        let image = taskdef::container(&td, &container).and_then(|c| c.image.clone());
        let commit = taskdef::tag(&tags, TAG_COMMIT)
            .map(str::to_owned)
            .or_else(|| {
                let template = s.image_template.as_deref()?;
                commit_of_image(template, image.as_deref()?)
            });
        Ok((image, commit))
    }

    async fn deploy_of(
        &self,
        s: &EcsServiceSettings,
        task_definition: &str,
        status: DeployStatus,
        raw: String,
    ) -> Result<Deploy> {
        let (image, commit) = self.revision_facts(s, task_definition).await?;
        Ok(Deploy {
            id: task_definition.to_owned(),
            status,
            commit,
            image,
            raw_status: raw,
        })
    }

    /// Everything known of the service's current state.
    pub async fn service_state(&self, service: &ServiceHandle) -> Result<EcsServiceState> {
        let s = self.settings(&service.name)?;
        let (svc, view, tasks) = self.view(s).await?;
        let (status, detail) = judge(&view, &view.task_definition);
        let (td, tags) = self.describe_task_definition(&view.task_definition).await?;
        let container = taskdef::container_name(&td, s.container.as_deref())?;
        let image = taskdef::container(&td, &container).and_then(|c| c.image.clone());
        let commit = taskdef::tag(&tags, TAG_COMMIT)
            .map(str::to_owned)
            .or_else(|| commit_of_image(s.image_template.as_deref()?, image.as_deref()?));
        let mut image_digests: Vec<String> = tasks
            .iter()
            .filter(|t| t.task_definition_arn() == Some(view.task_definition.as_str()))
            .flat_map(|t| t.containers().iter())
            .filter(|c| c.name() == Some(container.as_str()))
            .filter_map(|c| c.image_digest().map(str::to_owned))
            .collect();
        image_digests.sort();
        image_digests.dedup();
        Ok(EcsServiceState {
            service_arn: svc.service_arn().unwrap_or_default().to_owned(),
            task_definition: short_name(&view.task_definition).to_owned(),
            revision: revision_of(&view.task_definition),
            image,
            image_digests,
            commit,
            running: svc.running_count(),
            desired: svc.desired_count(),
            pending: svc.pending_count(),
            rollout_state: view
                .deployments
                .iter()
                .find(|d| d.task_definition == view.task_definition)
                .and_then(|d| d.rollout_state.clone()),
            status,
            status_detail: detail,
        })
    }

    /// The task-definition revision a deploy id names, or (with none) the one the service
    /// runs now.
    async fn revision_or_current(
        &self,
        s: &EcsServiceSettings,
        deploy_id: Option<&str>,
    ) -> Result<String> {
        Ok(match deploy_id {
            Some(id) => id.to_owned(),
            None => self.current_revision(s).await?,
        })
    }

    /// The task definition the service is set to now (`arn:…:task-definition/web:7`).
    async fn current_revision(&self, s: &EcsServiceSettings) -> Result<String> {
        Ok(self
            .describe_service(s)
            .await?
            .task_definition()
            .unwrap_or_default()
            .to_owned())
    }

    /// The stopped tasks of a deploy (of the service's current revision when `None`) and the
    /// last log lines of its container: what to show when a rollout failed.
    pub async fn diagnose(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        log_lines: usize,
    ) -> Result<RolloutDiagnosis> {
        let s = self.settings(&service.name)?;
        let target = self.revision_or_current(s, deploy_id).await?;
        let mut stopped: Vec<Task> = self
            .service_tasks(s, DesiredStatus::Stopped)
            .await?
            .into_iter()
            .filter(|t| t.task_definition_arn() == Some(target.as_str()))
            .collect();
        stopped.sort_by_key(|t| std::cmp::Reverse(t.stopped_at().map(|d| d.secs()).unwrap_or(0)));
        let stopped_tasks: Vec<StoppedTask> = stopped
            .iter()
            .take(5)
            .map(|t| StoppedTask {
                task_id: task_id(t.task_arn().unwrap_or_default()).to_owned(),
                task_definition: short_name(&target).to_owned(),
                reason: t
                    .stopped_reason()
                    .map(str::to_owned)
                    .or_else(|| t.stop_code().map(|c| c.as_str().to_owned()))
                    .unwrap_or_else(|| "no reason given".into()),
                containers: t
                    .containers()
                    .iter()
                    .filter(|c| c.exit_code().is_some() || c.reason().is_some())
                    .map(|c| {
                        let mut s = c.name().unwrap_or("?").to_owned();
                        if let Some(code) = c.exit_code() {
                            s.push_str(&format!(" exit {code}"));
                        }
                        if let Some(r) = c.reason() {
                            s.push_str(&format!(": {r}"));
                        }
                        s
                    })
                    .collect(),
            })
            .collect();
        let ids: Vec<String> = stopped
            .iter()
            .map(|t| task_id(t.task_arn().unwrap_or_default()).to_owned())
            .collect();
        let (log_lines, log_note) = match self
            .tail_logs(s, &target, &ids, log_lines, None)
            .await
            .map(|lines| lines.into_iter().map(|l| l.text).collect::<Vec<String>>())
        {
            Ok(lines) if lines.is_empty() => (lines, Some("no log lines found".to_owned())),
            Ok(lines) => (lines, None),
            Err(e) => (vec![], Some(format!("logs unavailable: {e}"))),
        };
        Ok(RolloutDiagnosis {
            stopped_tasks,
            log_lines,
            log_note,
        })
    }

    #[cfg(feature = "logs")]
    async fn tail_logs(
        &self,
        s: &EcsServiceSettings,
        task_definition: &str,
        task_ids: &[String],
        lines: usize,
        since: Option<std::time::SystemTime>,
    ) -> Result<Vec<LogLine>> {
        let (td, _) = self.describe_task_definition(task_definition).await?;
        let container = taskdef::container_name(&td, s.container.as_deref())?;
        let c = taskdef::container(&td, &container)
            .ok_or_else(|| Error::not_found(format!("container `{container}`")))?;
        let config = c
            .log_configuration
            .as_ref()
            .filter(|l| l.log_driver().as_str() == "awslogs")
            .ok_or_else(|| {
                Error::not_supported(
                    PROVIDER,
                    format!(
                        "logs of container `{container}`, which does not use the awslogs driver"
                    ),
                )
            })?;
        let options = config.options();
        let group = options
            .and_then(|o| o.get("awslogs-group"))
            .cloned()
            .ok_or_else(|| {
                Error::config(format!(
                    "container `{container}` uses awslogs without `awslogs-group`"
                ))
            })?;
        let target = crate::logs::LogTarget {
            group,
            stream_prefix: options
                .and_then(|o| o.get("awslogs-stream-prefix"))
                .cloned(),
            container,
        };
        let client = self.ctx.logs().await;
        let since = since.map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        });
        Ok(crate::logs::tail(&client, &target, task_ids, lines, since)
            .await?
            .into_iter()
            .map(|(ms, text)| LogLine {
                at: u64::try_from(ms).ok().map(|ms| {
                    humantime::format_rfc3339_millis(
                        std::time::UNIX_EPOCH + Duration::from_millis(ms),
                    )
                    .to_string()
                }),
                text,
            })
            .collect())
    }

    #[cfg(not(feature = "logs"))]
    async fn tail_logs(
        &self,
        _: &EcsServiceSettings,
        _: &str,
        _: &[String],
        _: usize,
        _: Option<std::time::SystemTime>,
    ) -> Result<Vec<LogLine>> {
        Err(Error::not_supported(
            PROVIDER,
            "logs (built without the `logs` feature)",
        ))
    }

    /// Register a revision from the newest one of the family of the service's task
    /// definition, with `change` applied to the service's container.
    async fn register(
        &self,
        s: &EcsServiceSettings,
        current: &str,
        change: &Change<'_>,
        tags: Vec<aws_sdk_ecs::types::Tag>,
    ) -> Result<String> {
        let family = family_of(current);
        let (base, _) = self.describe_task_definition(family).await?;
        let container = taskdef::container_name(&base, s.container.as_deref())?;
        // A secret an earlier tool (or an earlier version of this one) left in plain
        // `environment` is moved to Secrets Manager before any revision is registered, so
        // no revision this provider registers carries it in plain text.
        let mut moved = vec![];
        if let Some((store, names)) = &self.secrets
            && let Some(c) = taskdef::container(&base, &container)
        {
            for (name, value) in taskdef::environment(c) {
                let replaced = change.set_env.is_some_and(|(k, _)| k == name)
                    || change.set_secret.is_some_and(|(k, _)| k == name)
                    || change.delete_env == Some(name.as_str());
                if names.contains(&name) && !replaced {
                    let arn = store
                        .put_returning_arn(&name, &SecretString::from(value))
                        .await?;
                    moved.push((name, arn));
                }
            }
        }
        let change = Change {
            image: change.image,
            set_env: change.set_env,
            set_secret: change.set_secret,
            delete_env: change.delete_env,
            moved_secrets: moved,
        };
        let out = taskdef::register_from(self.client().await, &base, &container, &change, tags)?
            .send()
            .await
            .map_err(|e| map_sdk_error("ecs:RegisterTaskDefinition", e))?;
        out.task_definition()
            .and_then(|td| td.task_definition_arn())
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::failed("ecs:RegisterTaskDefinition returned no task definition ARN")
            })
    }

    /// Point the service at a revision. `force` starts fresh tasks even for an unchanged
    /// revision, so a mutable tag (`:latest`) is pulled again instead of served from cache.
    async fn update_service(
        &self,
        s: &EcsServiceSettings,
        task_definition: &str,
        force: bool,
    ) -> Result<()> {
        self.client()
            .await
            .update_service()
            .cluster(&s.cluster)
            .service(&s.service)
            .task_definition(task_definition)
            .force_new_deployment(force)
            .send()
            .await
            .map_err(|e| map_sdk_error("ecs:UpdateService", e))?;
        Ok(())
    }

    /// The revision before `current`: the one its deploy tagged, else the next lower active
    /// revision of the family.
    async fn previous_revision(&self, current: &str) -> Result<String> {
        let (_, tags) = self.describe_task_definition(current).await?;
        if let Some(prev) = taskdef::tag(&tags, TAG_PREVIOUS) {
            return Ok(prev.to_owned());
        }
        let family = family_of(current);
        let rev = revision_of(current)
            .ok_or_else(|| Error::failed(format!("cannot read a revision from {current}")))?;
        for r in (1..rev).rev().take(20) {
            match self
                .describe_task_definition(&format!("{family}:{r}"))
                .await
            {
                Ok((td, _)) if td.status().map(|s| s.as_str()) != Some("INACTIVE") => {
                    return Ok(td.task_definition_arn().unwrap_or_default().to_owned());
                }
                Ok(_) | Err(Error::NotFound { .. }) => continue,
                Err(Error::Provider {
                    retryable: false, ..
                }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::not_found(format!(
            "a revision of {family} before {} to roll back to",
            short_name(current)
        )))
    }
}

fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

/// `web` from `arn:...:task-definition/web:7` (or from `web:7`).
fn family_of(task_definition: &str) -> &str {
    let name = short_name(task_definition);
    name.rsplit_once(':').map(|(f, _)| f).unwrap_or(name)
}

#[async_trait]
impl Provider for EcsProvider {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn pacing(&self) -> Pacing {
        Pacing {
            poll_interval: self.poll_interval,
            read_budget: self.read_budget,
            ..Pacing::default()
        }
    }

    /// Env vars and rollback; logs with feature `logs`. No cancel: a rollout is undone by
    /// rolling back, not canceled.
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            env: Some(self),
            rollback: Some(self),
            #[cfg(feature = "logs")]
            logs: Some(self),
            ..Capabilities::none()
        }
    }

    /// Images always; commits to a service with an `image` template (the commit names the
    /// image).
    fn deploy_kinds(&self, service: &str) -> DeployKinds {
        match self.services.get(service) {
            Some(s) if s.image_template.is_some() => DeployKinds::BOTH,
            _ => DeployKinds::IMAGE,
        }
    }

    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        let s = self.settings(service)?;
        let svc = self.describe_service(s).await?;
        // What ECS writes land on: the service of that name in that cluster (the ARN names
        // account and region).
        let cluster = svc.cluster_arn().unwrap_or(&s.cluster).to_owned();
        let name = svc.service_name().unwrap_or(&s.service).to_owned();
        let identity = Identity::new(
            "ecs service",
            [("cluster", cluster.clone()), ("service", name.clone())],
        )
        .named(Some(cluster), name);
        Ok(ServiceHandle {
            name: service.to_owned(),
            environment: environment.to_owned(),
            id: svc.service_arn().unwrap_or(&s.service).to_owned(),
            identity,
        })
    }

    async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState> {
        let s = self.settings(&service.name)?;
        let (_, view, _) = self.view(s).await?;
        let (status, raw) = judge(&view, &view.task_definition);
        let latest = self
            .deploy_of(s, &view.task_definition, status, raw)
            .await?;
        let live = if status == DeployStatus::Live {
            Some(latest.clone())
        } else {
            // During a rollout the older deployment keeps serving.
            match view
                .deployments
                .iter()
                .find(|d| d.task_definition != view.task_definition && d.status == "ACTIVE")
            {
                Some(d) => Some(
                    self.deploy_of(s, &d.task_definition, DeployStatus::Live, "ACTIVE".into())
                        .await?,
                ),
                None => None,
            }
        };
        let url = match &s.url {
            Some(u) => Some(url::Url::parse(u).map_err(|e| {
                Error::config(format!("service `{}` url `{u}`: {e}", service.name))
            })?),
            None => None,
        };
        Ok(LiveState {
            latest: Some(latest),
            live,
            url,
        })
    }

    async fn deploy(&self, service: &WriteTarget, request: &DeployRequest) -> Result<Deploy> {
        let s = self.settings(&service.name)?;
        let image = match &request.target {
            DeployTarget::Image(image) => image.clone(),
            DeployTarget::Commit(commit) => match &s.image_template {
                Some(template) => image_for_commit(template, commit),
                None => {
                    return Err(Error::not_supported(
                        PROVIDER,
                        format!(
                            "deploying a commit to `{}` without an `image` template setting (e.g. `image = \"123456789012.dkr.ecr.us-east-1.amazonaws.com/app:${{commit}}\"`)",
                            service.name
                        ),
                    ));
                }
            },
        };
        let current = self.current_revision(s).await?;
        let mut tags = vec![taskdef::make_tag(TAG_PREVIOUS, &current)];
        if let Some(commit) = &request.commit {
            tags.push(taskdef::make_tag(TAG_COMMIT, commit));
        }
        let change = Change {
            image: Some(&image),
            ..Change::default()
        };
        let new = self.register(s, &current, &change, tags).await?;
        self.update_service(s, &new, request.clear_cache).await?;
        Ok(Deploy {
            id: new,
            status: DeployStatus::InProgress,
            commit: request.commit.clone(),
            image: Some(image),
            raw_status: "IN_PROGRESS".into(),
        })
    }

    async fn deploy_status(&self, service: &ServiceHandle, deploy_id: &str) -> Result<Deploy> {
        let s = self.settings(&service.name)?;
        let (_, view, _) = self.view(s).await?;
        let (status, mut raw) = judge(&view, deploy_id);
        if status == DeployStatus::Failed {
            match self.diagnose(service, Some(deploy_id), 10).await {
                Ok(d) => raw = format!("{raw}; {d}"),
                Err(e) => raw = format!("{raw}; (could not read stopped tasks: {e})"),
            }
        }
        self.deploy_of(s, deploy_id, status, raw).await
    }
}

#[async_trait]
impl Rollback for EcsProvider {
    async fn rollback(&self, service: &WriteTarget) -> Result<Deploy> {
        let s = self.settings(&service.name)?;
        let current = self.current_revision(s).await?;
        let previous = self.previous_revision(&current).await?;
        self.update_service(s, &previous, false).await?;
        self.deploy_of(
            s,
            &previous,
            DeployStatus::InProgress,
            format!("ROLLING_BACK from {}", short_name(&current)),
        )
        .await
    }

    /// The service set back to a named revision of its own family (`web:7` or its ARN); a
    /// revision of another family is refused, so a rollback never runs another service's
    /// task definition.
    async fn rollback_to(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        let s = self.settings(&service.name)?;
        let current = self.current_revision(s).await?;
        let (td, _) = self.describe_task_definition(deploy_id).await?;
        let target = td.task_definition_arn().unwrap_or(deploy_id).to_owned();
        if family_of(&target) != family_of(&current) {
            return Err(Error::config(format!(
                "`{deploy_id}` is a revision of task-definition family `{}`, but `{}` runs family `{}`",
                family_of(&target),
                service.name,
                family_of(&current)
            )));
        }
        self.update_service(s, &target, false).await?;
        self.deploy_of(
            s,
            &target,
            DeployStatus::InProgress,
            format!("ROLLING_BACK from {}", short_name(&current)),
        )
        .await
    }
}

#[async_trait]
impl EnvVars for EcsProvider {
    async fn env_vars(&self, service: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        let s = self.settings(&service.name)?;
        let current = self.current_revision(s).await?;
        let (td, _) = self.describe_task_definition(family_of(&current)).await?;
        let container = taskdef::container_name(&td, s.container.as_deref())?;
        let c = taskdef::container(&td, &container)
            .ok_or_else(|| Error::not_found(format!("container `{container}`")))?;
        // A secret found in plain text is left out, so the next write moves it to `secrets`.
        let mut out: BTreeMap<String, SecretString> = taskdef::environment(c)
            .into_iter()
            .filter(|(k, _)| !self.is_secret(k))
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect();
        if let Some((store, _)) = &self.secrets {
            for (name, from) in taskdef::secrets(c) {
                // A reference we cannot read (another service's parameter, no permission)
                // is simply not known here.
                if let Ok(Some(value)) = store.get_by_id(&from).await {
                    out.insert(name, value);
                }
            }
        }
        Ok(out)
    }

    async fn set_env_var(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()> {
        let s = self.settings(&service.name)?;
        let current = self.current_revision(s).await?;
        if let Some((store, names)) = &self.secrets
            && names.contains(key)
        {
            let arn = store.put_returning_arn(key, value).await?;
            let change = Change {
                set_secret: Some((key, &arn)),
                ..Change::default()
            };
            return self.register(s, &current, &change, vec![]).await.map(drop);
        }
        let change = Change {
            set_env: Some((key, value.expose_secret())),
            ..Change::default()
        };
        self.register(s, &current, &change, vec![]).await.map(drop)
    }

    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()> {
        let s = self.settings(&service.name)?;
        let current = self.current_revision(s).await?;
        let change = Change {
            delete_env: Some(key),
            ..Change::default()
        };
        self.register(s, &current, &change, vec![]).await.map(drop)
    }
}

#[cfg(feature = "logs")]
#[async_trait]
impl staging_core::Logs for EcsProvider {
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        lines: usize,
    ) -> Result<Vec<String>> {
        staging_core::recent_logs_from_logs(self, service, deploy_id, lines).await
    }

    /// CloudWatch Logs of the tasks of the deploy (the service's current revision when none
    /// is named), running and stopped, from `since` when given.
    async fn logs(&self, service: &ServiceHandle, query: &LogQuery) -> Result<Vec<LogLine>> {
        let s = self.settings(&service.name)?;
        let target = self
            .revision_or_current(s, query.deploy_id.as_deref())
            .await?;
        let mut ids = vec![];
        for status in [DesiredStatus::Running, DesiredStatus::Stopped] {
            ids.extend(
                self.service_tasks(s, status)
                    .await?
                    .iter()
                    .filter(|t| t.task_definition_arn() == Some(target.as_str()))
                    .map(|t| task_id(t.task_arn().unwrap_or_default()).to_owned()),
            );
        }
        self.tail_logs(s, &target, &ids, query.lines, query.since)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_task_ids_are_read_from_arns() {
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:1:task-definition/web-app:12"),
            "web-app"
        );
        assert_eq!(family_of("web:3"), "web");
        assert_eq!(family_of("web"), "web");
        assert_eq!(
            task_id("arn:aws:ecs:us-east-1:1:task/c1/0123abcd"),
            "0123abcd"
        );
    }

    #[test]
    fn a_diagnosis_reads_as_one_line() {
        let d = RolloutDiagnosis {
            stopped_tasks: vec![StoppedTask {
                task_id: "abc".into(),
                task_definition: "web:3".into(),
                reason: "Essential container in task exited".into(),
                containers: vec!["web exit 1".into()],
            }],
            log_lines: vec!["boot".into(), "JWT_SECRET missing".into()],
            log_note: None,
        };
        assert_eq!(
            d.to_string(),
            "task abc (web:3) stopped: Essential container in task exited [web exit 1]; last log lines: boot | JWT_SECRET missing"
        );
    }
}
