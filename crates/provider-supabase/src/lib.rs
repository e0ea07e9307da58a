#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod http;
mod teardown;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::{Value, json};
use staging_core::database_branch::check_target;
use staging_core::retry::Next;
use staging_core::spec::SupabaseBranch;
use staging_core::{
    BranchState, BranchStatus, Creation, CreationTarget, DatabaseBranch, Error, Result,
    RetryPolicy, SecretStore,
};

use crate::http::{API, Client, PROVIDER};

/// Supabase's Management API, as published.
pub const DEFAULT_BASE_URL: &str = "https://api.supabase.com";

/// What the platform documents as its read limit; waits use at most a quarter of it.
const READ_BUDGET: staging_core::ReadBudget = staging_core::ReadBudget::per_minute(
    60,
    "Supabase Management API: a conservative 60 requests a minute (its documented limits vary by endpoint)",
);

/// The kind of the creation of a Supabase branch (with its parent's data).
pub const BRANCH_KIND: &str = "supabase branch";

/// Builds a [`SupabaseDatabaseBranch`]; a missing token fails in [`SupabaseBuilder::build`].
#[derive(Debug, Clone)]
pub struct SupabaseBuilder {
    token: Option<SecretString>,
    base_url: String,
    poll_interval: Duration,
    read_budget: staging_core::ReadBudget,
    timeout: Duration,
    retry: RetryPolicy,
}

impl Default for SupabaseBuilder {
    fn default() -> Self {
        SupabaseBuilder {
            token: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            poll_interval: Duration::from_secs(2),
            read_budget: READ_BUDGET,
            timeout: Duration::from_secs(900),
            retry: RetryPolicy::default(),
        }
    }
}

impl SupabaseBuilder {
    /// A builder with nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `SUPABASE_ACCESS_TOKEN` and, when set, `SUPABASE_API_URL` (a stand-in's address).
    pub fn from_env() -> Self {
        let mut b = Self::default();
        if let Ok(t) = std::env::var("SUPABASE_ACCESS_TOKEN") {
            b.token = Some(SecretString::from(t));
        }
        if let Ok(u) = std::env::var("SUPABASE_API_URL") {
            b.base_url = u;
        }
        b
    }

    /// The access token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(SecretString::from(token.into()));
        self
    }

    /// The API's base URL.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// First delay between two reads of a branch or a run.
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

    /// The bound on waiting for a branch or a run.
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
    pub fn build(self, spec: SupabaseBranch) -> Result<SupabaseDatabaseBranch> {
        let token = self.token.ok_or_else(|| Error::Unauthenticated {
            provider: PROVIDER.to_owned(),
            message: "SUPABASE_ACCESS_TOKEN is not set".to_owned(),
        })?;
        Ok(SupabaseDatabaseBranch {
            client: Client::new(
                API,
                self.base_url,
                token,
                Duration::from_secs(30),
                self.retry,
            )?,
            spec,
            poll_interval: self.poll_interval,
            read_budget: self.read_budget,
            timeout: self.timeout,
        })
    }
}

/// One Supabase branch of one project. Its `Debug` never shows the token.
#[derive(Debug)]
pub struct SupabaseDatabaseBranch {
    client: Client,
    spec: SupabaseBranch,
    poll_interval: Duration,
    read_budget: staging_core::ReadBudget,
    timeout: Duration,
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn state_of(status: &str) -> BranchState {
    match status {
        "MIGRATIONS_PASSED" | "FUNCTIONS_DEPLOYED" => BranchState::Ready,
        "MIGRATIONS_FAILED" | "FUNCTIONS_FAILED" => BranchState::Failed,
        _ => BranchState::Busy,
    }
}

fn status_of(b: &Value, created: bool) -> BranchStatus {
    BranchStatus {
        id: str_of(b, "id").to_owned(),
        name: str_of(b, "name").to_owned(),
        parent_id: b
            .get("parent_project_ref")
            .and_then(Value::as_str)
            .map(str::to_owned),
        state: state_of(str_of(b, "status")),
        created,
    }
}

impl SupabaseDatabaseBranch {
    async fn find(&self) -> Result<Option<Value>> {
        let v = self
            .client
            .get(
                &format!("/v1/projects/{}/branches", self.spec.project_ref),
                &[],
            )
            .await?;
        let Some(b) = v
            .as_array()
            .and_then(|bs| bs.iter().find(|b| str_of(b, "name") == self.spec.branch))
            .cloned()
        else {
            return Ok(None);
        };
        // The project's default branch is the project itself (production's database): an
        // environment's branch is never it.
        let default = b
            .get("is_default")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if default || str_of(&b, "project_ref") == self.spec.project_ref {
            return Err(Error::PermissionDenied {
                provider: PROVIDER.to_owned(),
                message: format!(
                    "Supabase branch `{}` of project {} is the project's default branch (production's database): an environment's branch is never it, so nothing is created, reset or read through it; name a branch of its own in the spec",
                    self.spec.branch, self.spec.project_ref
                ),
            });
        }
        Ok(Some(b))
    }

    async fn require(&self) -> Result<Value> {
        self.find().await?.ok_or_else(|| {
            Error::not_found(format!(
                "Supabase branch `{}` of project {} (`staging up` creates it)",
                self.spec.branch, self.spec.project_ref
            ))
        })
    }

    /// The creation of the branch, with its parent's data.
    fn branch_creation(&self, owner: &str) -> Creation {
        let mut settings: std::collections::BTreeMap<String, String> = [
            ("project", self.spec.project_ref.clone()),
            ("with_data", "true".to_owned()),
            (
                "data",
                format!("a copy of project {}'s (unscrubbed)", self.spec.project_ref),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some(g) = &self.spec.git_branch {
            settings.insert("git_branch".to_owned(), g.clone());
        }
        Creation {
            kind: BRANCH_KIND.to_owned(),
            name: self.spec.branch.clone(),
            owner: owner.to_owned(),
            namespace: None,
            like: None,
            settings,
            request: Value::Null,
        }
    }

    /// The polling cadence: Supabase's Management API budget, at the floor of `poll_interval`.
    fn cadence(&self) -> staging_core::Cadence {
        staging_core::Cadence::new("supabase", self.read_budget, self.poll_interval)
    }

    /// Waits until the branch's status is ready; a failed one is reported.
    async fn wait_ready(&self) -> Result<Value> {
        staging_core::poll_until(
            &self.cadence(),
            self.timeout,
            || format!("Supabase branch `{}` to be ready", self.spec.branch),
            || self.require(),
            |b: Value, _| match state_of(str_of(&b, "status")) {
                BranchState::Ready => Ok(Next::Done(b)),
                BranchState::Failed => Err(Error::Failed {
                    message: format!(
                        "Supabase branch `{}` is {}",
                        self.spec.branch,
                        str_of(&b, "status")
                    ),
                }),
                BranchState::Busy => Ok(Next::Again(str_of(&b, "status").to_owned())),
            },
        )
        .await
    }

    /// Waits for a workflow run of the branch's project to finish: every step exited. A run
    /// with a dead step is reported with its log.
    async fn wait_run(&self, project_ref: &str, run_id: &str) -> Result<()> {
        let path = format!("/v1/projects/{project_ref}/actions/{run_id}");
        let failed = staging_core::poll_until(
            &self.cadence(),
            self.timeout,
            || {
                format!(
                    "Supabase action run {run_id} of branch `{}`",
                    self.spec.branch
                )
            },
            || self.client.get(&path, &[]),
            |run: Value, _| {
                let steps = run
                    .get("run_steps")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if let Some(dead) = steps.iter().find(|s| str_of(s, "status") == "DEAD") {
                    return Ok(Next::Done(Some(str_of(dead, "name").to_owned())));
                }
                let done =
                    !steps.is_empty() && steps.iter().all(|s| str_of(s, "status") == "EXITED");
                Ok(if done {
                    Next::Done(None)
                } else {
                    Next::Again(format!("{} steps", steps.len()))
                })
            },
        )
        .await?;
        if let Some(step) = failed {
            let log = self
                .client
                .get_text(&format!("{path}/logs"))
                .await
                .unwrap_or_else(|e| format!("(the log could not be read: {e})"));
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            return Err(Error::Failed {
                message: format!(
                    "Supabase action run {run_id} of branch `{}` failed at step `{step}`; its log ends:\n{}",
                    self.spec.branch,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ),
            });
        }
        Ok(())
    }

    /// The branch's API keys by name (`anon`, `service_role`).
    pub async fn api_key(&self, name: &str) -> Result<Option<SecretString>> {
        let b = self.require().await?;
        let keys = self
            .client
            .get(
                &format!("/v1/projects/{}/api-keys", str_of(&b, "project_ref")),
                &[("reveal", "true")],
            )
            .await?;
        Ok(keys
            .as_array()
            .and_then(|ks| ks.iter().find(|k| str_of(k, "name") == name))
            .and_then(|k| k.get("api_key").and_then(Value::as_str))
            .map(|k| SecretString::from(k.to_owned())))
    }
}

#[async_trait]
impl DatabaseBranch for SupabaseDatabaseBranch {
    fn describe(&self) -> String {
        format!(
            "supabase branch `{}` of project {}",
            self.spec.branch, self.spec.project_ref
        )
    }

    async fn missing(&self, owner: &str) -> Result<Vec<Creation>> {
        Ok(match self.find().await? {
            Some(_) => vec![],
            None => vec![self.branch_creation(owner)],
        })
    }

    async fn create(&self, target: &CreationTarget) -> Result<BranchStatus> {
        check_target(target, &self.branch_creation(&target.owner))?;
        if self.find().await?.is_some() {
            // Created meanwhile (a run stopped after the request): waited for, not again.
            return Ok(status_of(&self.wait_ready().await?, false));
        }
        let mut body = json!({ "branch_name": self.spec.branch, "with_data": true });
        if let Some(g) = &self.spec.git_branch {
            body["git_branch"] = json!(g);
        }
        self.client
            .post(
                &format!("/v1/projects/{}/branches", self.spec.project_ref),
                body,
            )
            .await?;
        Ok(status_of(&self.wait_ready().await?, true))
    }

    async fn reset_from_parent(&self) -> Result<BranchStatus> {
        let b = self.require().await?;
        let run = self
            .client
            .post(
                &format!("/v1/branches/{}/reset", str_of(&b, "project_ref")),
                json!({}),
            )
            .await?;
        self.wait_run(str_of(&b, "project_ref"), str_of(&run, "workflow_run_id"))
            .await?;
        Ok(status_of(&self.wait_ready().await?, false))
    }

    async fn connection_url(&self) -> Result<SecretString> {
        let b = self.require().await?;
        let ours = str_of(&b, "project_ref");
        let d = self
            .client
            .get(&format!("/v1/branches/{ours}"), &[])
            .await?;
        let answered = str_of(&d, "ref");
        if answered != ours || answered == self.spec.project_ref {
            return Err(Error::Failed {
                message: format!(
                    "Supabase answered the database of project `{answered}` for branch `{}`, whose project is `{ours}`: it may be the parent's database; refusing to use it",
                    self.spec.branch
                ),
            });
        }
        let mut url =
            url::Url::parse("postgresql://localhost/postgres").map_err(|e| Error::Failed {
                message: format!("building a URL: {e}"),
            })?;
        let bad = |_| Error::Failed {
            message: format!(
                "Supabase answered a database host for branch `{}` that is not a host",
                self.spec.branch
            ),
        };
        url.set_host(Some(str_of(&d, "db_host"))).map_err(bad)?;
        let _ = url.set_port(d.get("db_port").and_then(Value::as_u64).map(|p| p as u16));
        let _ = url.set_username(str_of(&d, "db_user"));
        let _ = url.set_password(d.get("db_pass").and_then(Value::as_str));
        url.set_path(self.spec.database.as_deref().unwrap_or("postgres"));
        Ok(SecretString::from(url.to_string()))
    }

    async fn status(&self) -> Result<BranchStatus> {
        Ok(status_of(&self.require().await?, false))
    }

    fn teardown(&self) -> Option<&dyn staging_core::teardown::Teardown> {
        Some(self)
    }
}

/// A read-only secret store over a Supabase branch: `database_url`, `anon_key`,
/// `service_role_key`.
#[derive(Debug, Clone)]
pub struct SupabaseSecrets {
    branch: Arc<SupabaseDatabaseBranch>,
}

impl SupabaseSecrets {
    /// The keys this store holds.
    pub const KEYS: [&'static str; 3] = ["database_url", "anon_key", "service_role_key"];

    /// The store of `branch`.
    pub fn new(branch: Arc<SupabaseDatabaseBranch>) -> Self {
        SupabaseSecrets { branch }
    }
}

#[async_trait]
impl SecretStore for SupabaseSecrets {
    fn describe(&self) -> String {
        self.branch.describe()
    }

    fn writable(&self) -> bool {
        false
    }

    async fn get(&self, key: &str) -> Result<Option<SecretString>> {
        match key {
            "database_url" => self.branch.connection_url().await.map(Some),
            "anon_key" => self.branch.api_key("anon").await,
            "service_role_key" => self.branch.api_key("service_role").await,
            _ => Ok(None),
        }
    }

    async fn put(&self, _key: &str, _value: &SecretString) -> Result<()> {
        Err(Error::not_supported(PROVIDER, "writing a branch's keys"))
    }

    async fn list(&self, prefix: Option<&str>) -> Result<Vec<String>> {
        Ok(Self::KEYS
            .iter()
            .filter(|k| prefix.is_none_or(|p| k.starts_with(p)))
            .map(|k| (*k).to_owned())
            .collect())
    }
}
