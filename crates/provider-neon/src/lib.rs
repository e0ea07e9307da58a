#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod http;
mod teardown;

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use staging_core::database_branch::check_target;
use staging_core::spec::NeonBranch;
use staging_core::{
    BranchState, BranchStatus, Creation, CreationTarget, DatabaseBranch, Error, Result, RetryPolicy,
};

use crate::http::{API, Client, PROVIDER};

/// Neon's API, as published.
pub const DEFAULT_BASE_URL: &str = "https://console.neon.tech/api/v2";

/// What the platform documents as its read limit; waits use at most a quarter of it.
const READ_BUDGET: staging_core::ReadBudget = staging_core::ReadBudget::per_minute(
    700,
    "Neon API: 700 requests a minute per account (api-docs.neon.tech, rate limiting)",
);

/// The kind of the creation of a Neon branch (with its compute endpoint).
pub const BRANCH_KIND: &str = "neon branch";

/// The kind of the creation of a compute endpoint on an existing Neon branch.
pub const ENDPOINT_KIND: &str = "neon compute endpoint";

/// Builds a [`NeonDatabaseBranch`]; a missing API key fails in [`NeonBuilder::build`].
#[derive(Debug, Clone)]
pub struct NeonBuilder {
    api_key: Option<SecretString>,
    base_url: String,
    poll_interval: Duration,
    read_budget: staging_core::ReadBudget,
    timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
}

impl Default for NeonBuilder {
    fn default() -> Self {
        NeonBuilder {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            poll_interval: Duration::from_secs(1),
            read_budget: READ_BUDGET,
            timeout: Duration::from_secs(600),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

impl NeonBuilder {
    /// A builder with nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `NEON_API_KEY` and, when set, `NEON_API_URL` (a stand-in's address).
    pub fn from_env() -> Self {
        let mut b = Self::default();
        if let Ok(k) = std::env::var("NEON_API_KEY") {
            b.api_key = Some(SecretString::from(k));
        }
        if let Ok(u) = std::env::var("NEON_API_URL") {
            b.base_url = u;
        }
        b
    }

    /// The API key.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// The API's base URL.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// First delay between two reads of an operation.
    pub fn with_poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// The read budget waits pace against (default: the platform's documented limit); a
    /// test stand-in can lift it with [`staging_core::ReadBudget::unlimited`].
    pub fn with_read_budget(mut self, budget: staging_core::ReadBudget) -> Self {
        self.read_budget = budget;
        self
    }

    /// The bound on waiting for a branch's operations.
    pub fn with_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// How refused or failed requests are retried.
    pub fn with_retry_policy(mut self, p: RetryPolicy) -> Self {
        self.retry = p;
        self
    }

    /// The branch the spec describes.
    pub fn build(self, spec: NeonBranch) -> Result<NeonDatabaseBranch> {
        let key = self.api_key.ok_or_else(|| Error::Unauthenticated {
            provider: PROVIDER.to_owned(),
            message: "NEON_API_KEY is not set".to_owned(),
        })?;
        Ok(NeonDatabaseBranch {
            client: Client::new(API, self.base_url, key, self.request_timeout, self.retry)?,
            spec,
            poll_interval: self.poll_interval,
            read_budget: self.read_budget,
            timeout: self.timeout,
        })
    }
}

/// One Neon branch of one project. Its `Debug` never shows the key.
#[derive(Debug)]
pub struct NeonDatabaseBranch {
    client: Client,
    spec: NeonBranch,
    poll_interval: Duration,
    read_budget: staging_core::ReadBudget,
    timeout: Duration,
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn status_of(b: &Value, created: bool) -> BranchStatus {
    let state = match str_of(b, "current_state") {
        "ready" | "archived" => BranchState::Ready,
        "failed" | "error" => BranchState::Failed,
        _ => BranchState::Busy,
    };
    BranchStatus {
        id: str_of(b, "id").to_owned(),
        name: str_of(b, "name").to_owned(),
        parent_id: b
            .get("parent_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        state,
        created,
    }
}

impl NeonDatabaseBranch {
    fn project(&self) -> String {
        format!("/projects/{}", self.spec.project_id)
    }

    /// Every branch of the project, by name.
    async fn branches(&self) -> Result<Vec<Value>> {
        let v = self
            .client
            .get(&format!("{}/branches", self.project()), &[])
            .await?;
        Ok(v.get("branches")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    fn named<'a>(branches: &'a [Value], name: &str) -> Option<&'a Value> {
        branches.iter().find(|b| str_of(b, "name") == name)
    }

    /// This environment's branch among `branches`, refused (exit 2, before any write) when
    /// what carries its name is the project's default branch or a branch without a parent:
    /// production's, never an environment's.
    fn ours<'a>(&self, branches: &'a [Value]) -> Result<Option<&'a Value>> {
        let Some(b) = Self::named(branches, &self.spec.branch) else {
            return Ok(None);
        };
        let default = b.get("default").and_then(Value::as_bool).unwrap_or(false)
            || b.get("primary").and_then(Value::as_bool).unwrap_or(false);
        let parent = b
            .get("parent_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if default || parent.is_empty() {
            return Err(Error::PermissionDenied {
                provider: PROVIDER.to_owned(),
                message: format!(
                    "Neon branch `{}` of project {} is the project's {} branch (production's): an environment's branch is never it, so nothing is created, reset or read through it; name a branch of its own in the spec",
                    self.spec.branch,
                    self.spec.project_id,
                    if default { "default" } else { "root" }
                ),
            });
        }
        Ok(Some(b))
    }

    async fn find(&self) -> Result<Option<Value>> {
        Ok(self.ours(&self.branches().await?)?.cloned())
    }

    /// The creation of the branch from its parent, with a read-write compute endpoint.
    fn branch_creation(&self, owner: &str) -> Creation {
        Creation {
            kind: BRANCH_KIND.to_owned(),
            name: self.spec.branch.clone(),
            owner: owner.to_owned(),
            namespace: None,
            like: None,
            settings: [
                ("project", self.spec.project_id.clone()),
                ("parent", self.spec.parent.clone()),
                (
                    "data",
                    format!("a copy of `{}`'s (unscrubbed)", self.spec.parent),
                ),
                ("endpoint", "read_write".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            request: Value::Null,
        }
    }

    /// The creation of a read-write compute endpoint on the (existing) branch.
    fn endpoint_creation(&self, owner: &str) -> Creation {
        Creation {
            kind: ENDPOINT_KIND.to_owned(),
            name: self.spec.branch.clone(),
            owner: owner.to_owned(),
            namespace: None,
            like: None,
            settings: [
                ("project", self.spec.project_id.clone()),
                ("type", "read_write".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            request: Value::Null,
        }
    }

    async fn require(&self) -> Result<Value> {
        self.find().await?.ok_or_else(|| self.not_found())
    }

    fn not_found(&self) -> Error {
        Error::not_found(format!(
            "Neon branch `{}` in project {} (`staging up` creates it from `{}`)",
            self.spec.branch, self.spec.project_id, self.spec.parent
        ))
    }

    fn no_parent(&self) -> Error {
        Error::not_found(format!(
            "parent branch `{}` of `{}` in Neon project {}",
            self.spec.parent, self.spec.branch, self.spec.project_id
        ))
    }

    /// Waits until every operation a request started has finished; a failed one is reported
    /// with Neon's own error text.
    async fn wait_for(&self, answer: &Value) -> Result<()> {
        let ops = answer
            .get("operations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let cadence = staging_core::Cadence::new("neon", self.read_budget, self.poll_interval);
        for op in ops {
            let id = str_of(&op, "id").to_owned();
            let path = format!("{}/operations/{id}", self.project());
            staging_core::poll_until(
                &cadence,
                self.timeout,
                || format!("Neon operation {id} on branch `{}`", self.spec.branch),
                || self.client.get(&path, &[]),
                |v: Value, _| {
                    let op = v.get("operation").cloned().unwrap_or_default();
                    match str_of(&op, "status") {
                        "finished" | "skipped" => Ok(staging_core::retry::Next::Done(())),
                        s @ ("failed" | "error" | "cancelled") => Err(Error::Failed {
                            message: format!(
                                "Neon operation {id} ({}) on branch `{}` {s}: {}",
                                str_of(&op, "action"),
                                self.spec.branch,
                                op.get("error")
                                    .and_then(Value::as_str)
                                    .unwrap_or("no error text")
                            ),
                        }),
                        other => Ok(staging_core::retry::Next::Again(other.to_owned())),
                    }
                },
            )
            .await?;
        }
        Ok(())
    }

    /// The hosts of the branch's compute endpoints.
    async fn endpoint_hosts(&self, branch_id: &str) -> Result<Vec<String>> {
        let v = self
            .client
            .get(
                &format!("{}/branches/{branch_id}/endpoints", self.project()),
                &[],
            )
            .await?;
        Ok(v.get("endpoints")
            .and_then(Value::as_array)
            .map(|eps| eps.iter().map(|e| str_of(e, "host").to_owned()).collect())
            .unwrap_or_default())
    }

    /// The database and role to connect with: the spec's, else the branch's first database
    /// and its owner.
    async fn database_and_role(&self, branch_id: &str) -> Result<(String, String)> {
        if let (Some(d), Some(r)) = (&self.spec.database, &self.spec.role) {
            return Ok((d.clone(), r.clone()));
        }
        let v = self
            .client
            .get(
                &format!("{}/branches/{branch_id}/databases", self.project()),
                &[],
            )
            .await?;
        let dbs = v
            .get("databases")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let db = match &self.spec.database {
            Some(name) => dbs.iter().find(|d| str_of(d, "name") == name),
            None => dbs.first(),
        }
        .ok_or_else(|| {
            Error::not_found(format!(
                "a database{} on Neon branch `{}`",
                self.spec
                    .database
                    .as_ref()
                    .map(|d| format!(" `{d}`"))
                    .unwrap_or_default(),
                self.spec.branch
            ))
        })?;
        Ok((
            str_of(db, "name").to_owned(),
            self.spec
                .role
                .clone()
                .unwrap_or_else(|| str_of(db, "owner_name").to_owned()),
        ))
    }
}

#[async_trait]
impl DatabaseBranch for NeonDatabaseBranch {
    fn describe(&self) -> String {
        format!(
            "neon branch `{}` of `{}` in project {}",
            self.spec.branch, self.spec.parent, self.spec.project_id
        )
    }

    async fn missing(&self, owner: &str) -> Result<Vec<Creation>> {
        let branches = self.branches().await?;
        let Some(b) = self.ours(&branches)? else {
            Self::named(&branches, &self.spec.parent).ok_or_else(|| self.no_parent())?;
            return Ok(vec![self.branch_creation(owner)]);
        };
        // A branch without a compute endpoint cannot be connected to: it needs one.
        Ok(if self.endpoint_hosts(str_of(b, "id")).await?.is_empty() {
            vec![self.endpoint_creation(owner)]
        } else {
            vec![]
        })
    }

    async fn create(&self, target: &CreationTarget) -> Result<BranchStatus> {
        let branches = self.branches().await?;
        if target.kind == ENDPOINT_KIND {
            check_target(target, &self.endpoint_creation(&target.owner))?;
            let b = self.ours(&branches)?.ok_or_else(|| self.not_found())?;
            let id = str_of(b, "id").to_owned();
            if self.endpoint_hosts(&id).await?.is_empty() {
                let answer = self
                    .client
                    .post(
                        &format!("{}/endpoints", self.project()),
                        json!({ "endpoint": { "branch_id": id, "type": "read_write" } }),
                    )
                    .await?;
                self.wait_for(&answer).await?;
            }
            return Ok(status_of(&self.require().await?, false));
        }
        check_target(target, &self.branch_creation(&target.owner))?;
        if let Some(b) = self.ours(&branches)? {
            // Created meanwhile (a run stopped after the request): not forked again.
            return Ok(status_of(b, false));
        }
        let parent = Self::named(&branches, &self.spec.parent).ok_or_else(|| self.no_parent())?;
        let answer = self
            .client
            .post(
                &format!("{}/branches", self.project()),
                json!({
                    "branch": { "parent_id": str_of(parent, "id"), "name": self.spec.branch },
                    "endpoints": [{ "type": "read_write" }],
                }),
            )
            .await?;
        self.wait_for(&answer).await?;
        Ok(status_of(&self.require().await?, true))
    }

    async fn reset_from_parent(&self) -> Result<BranchStatus> {
        let branches = self.branches().await?;
        let branch = self.ours(&branches)?.ok_or_else(|| self.not_found())?;
        let parent = Self::named(&branches, &self.spec.parent).ok_or_else(|| self.no_parent())?;
        let mut body = json!({ "source_branch_id": str_of(parent, "id") });
        if let Some(name) = &self.spec.preserve_under_name {
            body["preserve_under_name"] = json!(name);
        }
        let answer = self
            .client
            .post(
                &format!(
                    "{}/branches/{}/restore",
                    self.project(),
                    str_of(branch, "id")
                ),
                body,
            )
            .await?;
        self.wait_for(&answer).await?;
        Ok(status_of(&self.require().await?, false))
    }

    async fn connection_url(&self) -> Result<SecretString> {
        let branch = self.require().await?;
        let id = str_of(&branch, "id").to_owned();
        let (database, role) = self.database_and_role(&id).await?;
        let v = self
            .client
            .get(
                &format!("{}/connection_uri", self.project()),
                &[
                    ("branch_id", id.as_str()),
                    ("database_name", database.as_str()),
                    ("role_name", role.as_str()),
                ],
            )
            .await?;
        let uri = SecretString::from(str_of(&v, "uri").to_owned());
        // Only the host is read out of the URI; the URI itself is never printed.
        let host = url::Url::parse(uri.expose_secret())
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .ok_or_else(|| Error::Failed {
                message: format!(
                    "Neon answered a connection URI for branch `{}` that is not a URL",
                    self.spec.branch
                ),
            })?;
        let hosts = self.endpoint_hosts(&id).await?;
        let ours = |h: &str| {
            hosts.iter().any(|e| {
                e == h
                    || e.split_once('.')
                        .map(|(ep, rest)| format!("{ep}-pooler.{rest}"))
                        .as_deref()
                        == Some(h)
            })
        };
        if hosts.is_empty() {
            return Err(Error::Failed {
                message: format!(
                    "Neon branch `{}` has no compute endpoint, so it cannot be connected to: `staging up` gives it one",
                    self.spec.branch
                ),
            });
        }
        if !ours(&host) {
            return Err(Error::Failed {
                message: format!(
                    "Neon answered a connection URI for branch `{}` whose host {host} is not one of the branch's endpoints ({}): it may be the parent's database; refusing to use it",
                    self.spec.branch,
                    if hosts.is_empty() {
                        "none".to_owned()
                    } else {
                        hosts.join(", ")
                    }
                ),
            });
        }
        Ok(uri)
    }

    async fn status(&self) -> Result<BranchStatus> {
        Ok(status_of(&self.require().await?, false))
    }

    fn teardown(&self) -> Option<&dyn staging_core::teardown::Teardown> {
        Some(self)
    }
}
