//! [`RenderProvider`]: the [`Provider`] trait over Render's REST API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use staging_core::pipeline::commits_match;
use staging_core::{
    Cancel, Capabilities, Deploy, DeployKinds, DeployRequest, DeployTarget, EnvVars, Error,
    Identity, LiveState, LogLine, LogQuery, Logs, Pacing, Provider, Result, Rollback,
    ServiceHandle, WriteTarget,
};

use crate::builder::ServiceRef;
use crate::client::{Client, Pace, decode};
use crate::error::PROVIDER;
use crate::model::{DeployItem, EnvVar, EnvVarItem, LogsPage, RawDeploy, Service, ServiceItem};

/// The Render provider. Cheap to clone (the client is shared).
///
/// Built with [`crate::RenderBuilder`]; the CLI builds it through [`crate::RenderFactory`],
/// wrapped in [`staging_core::RetryProvider`].
#[derive(Debug, Clone)]
pub struct RenderProvider {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) owner_id: Option<String>,
    /// How each spec service is found, and the workspace to look in when it is not the
    /// provider's.
    pub(crate) services: BTreeMap<String, (ServiceRef, Option<String>)>,
    pub(crate) poll_interval: Duration,
    pub(crate) read_budget: staging_core::ReadBudget,
    /// The key's only workspace, once read (names are resolved there when the spec names
    /// no `owner_id`).
    pub(crate) only_workspace: tokio::sync::Mutex<Option<String>>,
}

impl RenderProvider {
    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    pub(crate) fn owner_query(&self) -> Vec<(&'static str, String)> {
        self.inner
            .owner_id
            .iter()
            .map(|o| ("ownerId", o.clone()))
            .collect()
    }

    /// Finds a Render service by id or by exact name, in the provider's workspace.
    pub async fn find_service(&self, service: &ServiceRef) -> Result<(String, String)> {
        self.find_service_in(service, self.inner.owner_id.as_deref())
            .await
            .map(|s| (s.id, s.name))
    }

    /// The workspace names are resolved in when the spec names none: the only one the key
    /// sees (`GET /owners`). Several are an error naming them (exit 2): a name is never
    /// looked up across workspaces, where another team's service of that name would be
    /// picked.
    pub(crate) async fn only_workspace(&self) -> Result<String> {
        if let Some(o) = self.inner.only_workspace.lock().await.as_ref() {
            return Ok(o.clone());
        }
        #[derive(serde::Deserialize)]
        struct OwnerItem {
            owner: OwnerRef,
        }
        #[derive(serde::Deserialize)]
        struct OwnerRef {
            id: String,
            #[serde(default)]
            name: Option<String>,
        }
        let owners: Vec<OwnerItem> = self
            .client()
            .list_all(&["owners"], &[], "workspaces")
            .await?;
        match owners.as_slice() {
            [one] => {
                *self.inner.only_workspace.lock().await = Some(one.owner.id.clone());
                Ok(one.owner.id.clone())
            }
            [] => Err(Error::config(
                "the Render API key sees no workspace: set `owner_id` in the environment's settings",
            )),
            many => Err(Error::config(format!(
                "the Render API key sees {} workspaces ({}) and the spec names none: set `owner_id = \"tea-...\"` in the environment's settings (services are looked up by name in one workspace, never across them)",
                many.len(),
                many.iter()
                    .map(|o| match &o.owner.name {
                        Some(n) => format!("{} `{n}`", o.owner.id),
                        None => o.owner.id.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The Render service behind `handle`.
    pub(crate) async fn service(&self, id: &str) -> Result<Service> {
        self.client()
            .get(&["services", id], &[], &format!("service {id}"))
            .await
    }

    pub(crate) async fn find_service_in(
        &self,
        service: &ServiceRef,
        owner: Option<&str>,
    ) -> Result<Service> {
        match service {
            ServiceRef::Id(id) => self.service(id).await,
            ServiceRef::Name(name) => {
                let owner = match owner {
                    Some(o) => o.to_owned(),
                    None => self.only_workspace().await?,
                };
                let owner = Some(owner.as_str());
                let mut query: Vec<(&str, String)> =
                    owner.iter().map(|o| ("ownerId", (*o).to_owned())).collect();
                query.push(("name", name.clone()));
                let found: Vec<ServiceItem> = self
                    .client()
                    .list_all(&["services"], &query, &format!("services named `{name}`"))
                    .await?;
                let mut matching: Vec<Service> = found
                    .into_iter()
                    .map(|i| i.service)
                    .filter(|s| &s.name == name)
                    .collect();
                match matching.len() {
                    0 => Err(Error::not_found(format!(
                        "service named `{name}`{}",
                        owner
                            .map(|o| format!(" in workspace {o}"))
                            .unwrap_or_default()
                    ))),
                    1 => Ok(matching.remove(0)),
                    n => Err(Error::config(format!(
                        "{n} Render services are named `{name}` ({}); set `service_id` (or `owner_id`) in the spec",
                        matching
                            .iter()
                            .map(|s| s.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                }
            }
        }
    }

    /// The newest deploys of a service, newest first (one page).
    pub(crate) async fn deploys(
        &self,
        service_id: &str,
        limit: usize,
        status: Option<&str>,
    ) -> Result<Vec<RawDeploy>> {
        let mut query = vec![("limit", limit.clamp(1, 100).to_string())];
        if let Some(s) = status {
            query.push(("status", s.to_owned()));
        }
        let page: Vec<DeployItem> = self
            .client()
            .get(
                &["services", service_id, "deploys"],
                &query,
                &format!("deploys of {service_id}"),
            )
            .await?;
        Ok(page.into_iter().filter_map(|i| i.deploy).collect())
    }

    /// After a deploy request failed without a clear answer: a deploy of the same commit
    /// (or image) among the newest that is under way or live, if Render lists one (then the
    /// commit is being deployed, or already is, and another trigger would only queue a
    /// second build). `Ok(None)`: Render has not started it.
    async fn started_deploy(
        &self,
        service: &WriteTarget,
        request: &DeployRequest,
        failure: &Error,
    ) -> Result<Option<Deploy>> {
        if staging_rest::unanswered(failure) {
            // The request may still be in flight at Render: give it the time one request
            // may take (at most 5 s) to land before asking.
            let settle = self
                .client()
                .rest()
                .settings()
                .timeout
                .min(Duration::from_secs(5));
            tokio::time::sleep(settle).await;
        }
        let listed = self.deploys(&service.id, 10, None).await.map_err(|e| {
            Error::failed(format!(
                "the deploy of {} may have started ({failure}), and reading Render's deploys \
                 to find out failed: {e}; check the dashboard before running again",
                service.name
            ))
        })?;
        let ours = listed.into_iter().find(|d| {
            let same = match &request.target {
                DeployTarget::Commit(sha) => d
                    .commit
                    .as_ref()
                    .and_then(|c| c.id.as_deref())
                    .is_some_and(|id| commits_match(id, sha)),
                DeployTarget::Image(image) => d
                    .image
                    .as_ref()
                    .and_then(|i| i.reference.as_deref())
                    .is_some_and(|r| r == image),
            };
            let status = d.to_deploy().status;
            same && (status == staging_core::DeployStatus::Live || !status.is_terminal())
        });
        if let Some(d) = &ours {
            tracing::info!(service = %service.name, deploy = %d.id, "the deploy had started; not sending it again");
        }
        Ok(ours.map(|d| d.to_deploy()))
    }

    async fn raw_deploy(&self, service_id: &str, deploy_id: &str) -> Result<RawDeploy> {
        self.client()
            .get(
                &["services", service_id, "deploys", deploy_id],
                &[],
                &format!("deploy {deploy_id} of {service_id}"),
            )
            .await
    }

    /// Cancels a deploy that has not gone live (Ctrl-C during a wait, when asked to).
    pub async fn cancel_deploy(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        // The cancel operation takes no body; sending `{}` breaks the contract.
        let segments = [
            "services",
            service.id.as_str(),
            "deploys",
            deploy_id,
            "cancel",
        ];
        let answer = self
            .client()
            .send(
                Method::POST,
                &segments,
                &[],
                None,
                Pace::Write,
                &format!("deploy {deploy_id} of {}", service.name),
            )
            .await?;
        let raw: RawDeploy = decode("POST", &self.client().url(&segments), &answer.body)?;
        Ok(raw.to_deploy())
    }

    /// Fails unless the live deploy runs `expected` (the same SHA, compared whole): the deploy
    /// "succeeded" but a cached old image is serving.
    pub async fn verify_live_commit(
        &self,
        service: &ServiceHandle,
        expected: &str,
    ) -> Result<Deploy> {
        let state = self.live_state(service).await?;
        let live = state
            .live
            .ok_or_else(|| Error::failed(format!("{} has no live deploy", service.name)))?;
        match live.commit.as_deref() {
            Some(c) if commits_match(c, expected) => Ok(live),
            other => Err(Error::failed(format!(
                "{} serves commit {} (deploy {}), not {expected}: the platform may be serving a cached image",
                service.name,
                other.unwrap_or("unknown"),
                live.id
            ))),
        }
    }
}

#[async_trait]
impl Provider for RenderProvider {
    fn name(&self) -> &str {
        PROVIDER
    }

    /// The declared budget, or the one Render advertises (`Ratelimit-Limit` on reads)
    /// once an answer has said it.
    fn pacing(&self) -> Pacing {
        Pacing {
            poll_interval: self.inner.poll_interval,
            read_budget: self
                .client()
                .rest()
                .budget()
                .read_budget(self.inner.read_budget),
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
        DeployKinds::BOTH
    }

    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        let (how, owner) = match self.inner.services.get(service) {
            Some((how, owner)) => (
                how.clone(),
                owner.clone().or_else(|| self.inner.owner_id.clone()),
            ),
            None => (
                ServiceRef::Name(service.to_owned()),
                self.inner.owner_id.clone(),
            ),
        };
        let found = self
            .find_service_in(&how, owner.as_deref())
            .await
            .map_err(|e| match e {
                Error::NotFound { what } => Error::not_found(format!(
                    "{what} (service `{service}` of environment {environment})"
                )),
                other => other,
            })?;
        // A service id is unique across Render; the workspace is where its name is.
        let identity = Identity::new("render service", [("service", found.id.clone())])
            .named(found.owner_id.clone().or(owner), found.name.clone());
        Ok(ServiceHandle {
            name: service.to_owned(),
            environment: environment.to_owned(),
            id: found.id,
            identity,
        })
    }

    async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState> {
        let svc = self.service(&service.id).await?;
        let latest = self
            .deploys(&service.id, 1, None)
            .await?
            .into_iter()
            .next()
            .map(|d| d.to_deploy());
        let live = match &latest {
            Some(d) if d.raw_status == "live" => Some(d.clone()),
            _ => self
                .deploys(&service.id, 1, Some("live"))
                .await?
                .into_iter()
                .map(|d| d.to_deploy())
                .find(|d| d.raw_status == "live"),
        };
        let url = svc
            .service_details
            .and_then(|d| d.url)
            .and_then(|u| url::Url::parse(&u).ok());
        Ok(LiveState { latest, live, url })
    }

    async fn deploy(&self, service: &WriteTarget, request: &DeployRequest) -> Result<Deploy> {
        let mut body = serde_json::Map::new();
        match &request.target {
            DeployTarget::Commit(sha) => body.insert("commitId".into(), json!(sha)),
            DeployTarget::Image(image) => body.insert("imageUrl".into(), json!(image)),
        };
        body.insert(
            "clearCache".into(),
            json!(if request.clear_cache {
                "clear"
            } else {
                "do_not_clear"
            }),
        );
        let body = serde_json::Value::Object(body);
        let what = format!("service {} ({})", service.name, service.id);
        let segments = ["services", service.id.as_str(), "deploys"];
        let send = || {
            self.client().send(
                Method::POST,
                &segments,
                &[],
                Some(&body),
                Pace::Deploy(&service.id),
                &what,
            )
        };
        // Sent once: the client re-sends it only when Render refused it (429). After an
        // ambiguous failure (no answer, a 5xx) Render is asked whether the deploy started
        // before it is sent again, so one `up` never starts two deploys.
        let answer = match send().await {
            Ok(answer) => answer,
            Err(e) if staging_rest::ambiguous(&e) => {
                if let Some(started) = self.started_deploy(service, request, &e).await? {
                    return Ok(started);
                }
                tracing::info!(service = %service.name, error = %e, "the deploy did not start; sending it again");
                send().await?
            }
            Err(e) => return Err(e),
        };
        if answer.status == StatusCode::ACCEPTED || answer.body.is_empty() {
            // 202: queued behind a running deploy, without a body; the newest deploy is ours.
            return self
                .deploys(&service.id, 1, None)
                .await?
                .into_iter()
                .next()
                .map(|d| d.to_deploy())
                .ok_or_else(|| {
                    Error::failed(format!(
                        "Render queued a deploy of {} but lists none",
                        service.name
                    ))
                });
        }
        let raw: RawDeploy = decode(
            "POST",
            &self.client().url(&["services", &service.id, "deploys"]),
            &answer.body,
        )?;
        Ok(raw.to_deploy())
    }

    async fn deploy_status(&self, service: &ServiceHandle, deploy_id: &str) -> Result<Deploy> {
        Ok(self.raw_deploy(&service.id, deploy_id).await?.to_deploy())
    }
}

#[async_trait]
impl Cancel for RenderProvider {
    async fn cancel_deploy(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        RenderProvider::cancel_deploy(self, service, deploy_id).await
    }
}

#[async_trait]
impl Rollback for RenderProvider {
    async fn rollback(&self, service: &WriteTarget) -> Result<Deploy> {
        let deploys = self.deploys(&service.id, 100, None).await?;
        let live_at = deploys
            .iter()
            .position(|d| d.status.as_deref() == Some("live"))
            .ok_or_else(|| {
                Error::failed(format!(
                    "{} has no live deploy to roll back from",
                    service.name
                ))
            })?;
        // A deploy that was live and was replaced is `deactivated`; the newest such one older
        // than the live deploy is the previous live deploy.
        let previous = deploys[live_at + 1..]
            .iter()
            .find(|d| d.status.as_deref() == Some("deactivated"))
            .ok_or_else(|| {
                Error::failed(format!(
                    "{} has no previous live deploy to roll back to",
                    service.name
                ))
            })?;
        self.rollback_to(service, &previous.id).await
    }

    /// `POST /services/{id}/rollback` with the deploy to return to: Render starts a new
    /// deploy (trigger `rollback`) of that deploy's commit or image.
    async fn rollback_to(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        // Only to a deploy that was live (`live`, or `deactivated`: live, then replaced):
        // Render would roll back to a deploy whose build failed or that was cancelled, and
        // the service would serve nothing that ever passed. Read first, refuse before the
        // write, and keep its commit for the record when Render's answer omits it.
        let target: RawDeploy = self
            .client()
            .get(
                &["services", &service.id, "deploys", deploy_id],
                &[],
                &format!("deploy {deploy_id} of {}", service.name),
            )
            .await?;
        match target.status.as_deref() {
            Some("live" | "deactivated") => {}
            other => {
                return Err(Error::config(format!(
                    "deploy {deploy_id} of {} never went live (Render says `{}`): roll back only to a deploy that was live (`staging rollback` without `--to` picks the last one)",
                    service.name,
                    other.unwrap_or("no status")
                )));
            }
        }
        let raw: RawDeploy = self
            .client()
            .write(
                Method::POST,
                &["services", &service.id, "rollback"],
                &json!({ "deployId": deploy_id }),
                Pace::Deploy(&service.id),
                &format!("rollback of {} to {deploy_id}", service.name),
            )
            .await?;
        let mut deploy = raw.to_deploy();
        if deploy.commit.is_none() {
            deploy.commit = target.commit.and_then(|c| c.id);
        }
        Ok(deploy)
    }
}

#[async_trait]
impl EnvVars for RenderProvider {
    async fn env_vars(&self, service: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        let items: Vec<EnvVarItem> = self
            .client()
            .list_all(
                &["services", &service.id, "env-vars"],
                &[],
                &format!("env vars of {}", service.name),
            )
            .await?;
        Ok(items
            .into_iter()
            .map(|i| (i.env_var.key, i.env_var.value))
            .collect())
    }

    async fn set_env_var(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()> {
        // One key at a time: the whole-set `PUT .../env-vars` would delete every other var.
        let _: EnvVar = self
            .client()
            .write(
                Method::PUT,
                &["services", &service.id, "env-vars", key],
                &json!({ "value": value.expose_secret() }),
                Pace::Write,
                &format!("env var {key} of {}", service.name),
            )
            .await?;
        Ok(())
    }

    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()> {
        self.client()
            .send(
                Method::DELETE,
                &["services", &service.id, "env-vars", key],
                &[],
                None,
                Pace::Write,
                &format!("env var {key} of {}", service.name),
            )
            .await?;
        Ok(())
    }

    /// Render returns every variable with its value: a key it did not return is absent.
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
impl Logs for RenderProvider {
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        lines: usize,
    ) -> Result<Vec<String>> {
        staging_core::recent_logs_from_logs(self, service, deploy_id, lines).await
    }

    /// `GET /logs` for the service (`resource`), newest first page by page (`direction =
    /// backward`, `nextEndTime`), within the deploy's start and end when one is named and
    /// from `since` (`startTime`) when given; returned oldest first.
    async fn logs(&self, service: &ServiceHandle, query: &LogQuery) -> Result<Vec<LogLine>> {
        let lines = query.lines;
        let svc = self.service(&service.id).await?;
        let owner = svc
            .owner_id
            .or_else(|| self.inner.owner_id.clone())
            .ok_or_else(|| {
                Error::failed(format!(
                    "Render did not say which workspace owns {}",
                    service.name
                ))
            })?;
        let mut window: (Option<String>, Option<String>) = (None, None);
        if let Some(id) = &query.deploy_id {
            let d = self.raw_deploy(&service.id, id).await?;
            window = (
                d.started_at.or(d.created_at),
                d.finished_at.or(d.updated_at),
            );
        }
        if let Some(since) = query.since {
            let since = humantime::format_rfc3339_seconds(since).to_string();
            // The later of the deploy's start and `since` (RFC 3339 in UTC sorts as text).
            if window.0.as_ref().is_none_or(|start| *start < since) {
                window.0 = Some(since);
            }
        }
        let mut out = vec![];
        let mut end = window.1.clone();
        while out.len() < lines {
            let mut query = vec![
                ("ownerId", owner.clone()),
                ("resource", service.id.clone()),
                ("direction", "backward".to_owned()),
                ("limit", (lines - out.len()).clamp(1, 100).to_string()),
            ];
            if let Some(s) = &window.0 {
                query.push(("startTime", s.clone()));
            }
            if let Some(e) = &end {
                query.push(("endTime", e.clone()));
            }
            let page: LogsPage = self
                .client()
                .get(&["logs"], &query, &format!("logs of {}", service.name))
                .await?;
            let got = page.logs.len();
            out.extend(page.logs.into_iter().map(|l| LogLine {
                at: l.timestamp,
                text: l.message,
            }));
            match page.next_end_time {
                Some(next) if page.has_more && got > 0 && end.as_deref() != Some(next.as_str()) => {
                    end = Some(next)
                }
                _ => break,
            }
        }
        out.truncate(lines);
        // Backward pages come newest first; show them in the order they were written.
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_full_sha_matches() {
        let full = "aaaaaaa1111111111111111111111111111111aa";
        assert!(commits_match(full, &full.to_ascii_uppercase()));
        assert!(!commits_match(full, "aaaaaaa"));
        assert!(!commits_match("aaaaaaa1111", "bbbbbbb"));
        assert!(!commits_match("abc", "abcd"));
    }
}
