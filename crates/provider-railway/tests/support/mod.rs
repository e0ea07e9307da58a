//! The schema-validating Railway stand-in (`standin.py`, graphql-core in `.tools/venv`)
//! started once per test, and helpers to drive and read it. The CLI's Railway tests include
//! this module too (`#[path]`), so there is one stand-in and one way to start it.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{DynProvider, RetryPolicy, RetryProvider};
use staging_provider_railway::{RailwayBuilder, RailwayProvider, Ref};

/// The account token the tests use: a canary, so outputs can be checked for it.
pub const TOKEN: &str = "rw-canary-token-5e1f";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The committed copy of Railway's schema (the one the compile-time check reads too).
pub fn schema_path() -> PathBuf {
    crate_dir().join("schema/railway-schema.json")
}

/// `crates/provider-railway`, also when this module is included by the CLI's tests.
fn crate_dir() -> PathBuf {
    workspace().join("crates/provider-railway")
}

/// The published schema where the contracts convention finds it
/// ([`staging_core::testkit::contract_path`]).
pub fn published_schema() -> PathBuf {
    staging_core::testkit::contract_path("railway-schema.json")
}

/// A running stand-in; killed when dropped.
pub struct StandIn {
    child: Child,
    /// The GraphQL endpoint.
    pub url: String,
    base: String,
    http: reqwest::Client,
    /// The fake project's id.
    pub project_id: String,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StandIn {
    /// Starts the stand-in with the default state: project `shop`, environments
    /// `production` and `staging`, services `web` and `Postgres`, `web` live at commit 000….
    pub async fn start() -> StandIn {
        let python = workspace().join(".tools/venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run `bash scripts/test-tools.sh` (installs graphql-core for the Railway stand-in)",
            python.display()
        );
        let script = crate_dir().join("tests/support/standin.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(schema_path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the stand-in says where it listens");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line from the stand-in: {line:?}"))
            .to_owned();
        let base = format!("http://127.0.0.1:{port}");
        let mut s = StandIn {
            child,
            url: format!("{base}/graphql/v2"),
            base,
            http: reqwest::Client::new(),
            project_id: String::new(),
        };
        s.project_id = s.state().await["project"]["id"]
            .as_str()
            .expect("project id")
            .to_owned();
        s
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}/control/{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("control request")
            .json()
            .await
            .expect("control answer")
    }

    /// A fresh state with these environments and services.
    pub async fn reset(&mut self, environments: &[&str], services: &[&str]) {
        let v = self
            .control(
                "reset",
                json!({"environments": environments, "services": services}),
            )
            .await;
        self.project_id = v["project_id"].as_str().expect("project id").to_owned();
    }

    /// A fresh state with these environments and services in the project with this id (an
    /// example spec's own `project_id`).
    pub async fn reset_project(
        &mut self,
        project_id: &str,
        environments: &[&str],
        services: &[&str],
    ) {
        let v = self
            .control(
                "reset",
                json!({"environments": environments, "services": services, "project_id": project_id}),
            )
            .await;
        self.project_id = v["project_id"].as_str().expect("project id").to_owned();
    }

    /// Sets the variables of `service` in `environment` as they are on the platform before a
    /// test (not a logged write).
    pub async fn set_variables(&self, environment: &str, service: &str, variables: Value) {
        self.control(
            "variables",
            json!({"environment": environment, "service": service, "variables": variables}),
        )
        .await;
    }

    /// The variables of `service` in `environment`, as the fake holds them.
    pub async fn variables_of(&self, environment: &str, service: &str) -> Value {
        let state = self.state().await;
        let id_of = |map: &str, name: &str| {
            state[map]
                .as_object()
                .expect(map)
                .iter()
                .find(|(_, n)| n.as_str() == Some(name))
                .map(|(id, _)| id.clone())
                .unwrap_or_else(|| panic!("no {map} named {name}"))
        };
        let key = format!(
            "{}/{}",
            id_of("environments", environment),
            id_of("services", service)
        );
        state["variables"][&key].clone()
    }

    /// How the next deploys of `service` behave: `ok`, `stale`, `fail_build`, `crash`, `slow`.
    pub async fn behaviour(&self, service: &str, mode: &str) {
        self.control("behaviour", json!({"service": service, "mode": mode}))
            .await;
    }

    /// The next `count` GraphQL requests answer with `kind`: `rate_limit` (429 with
    /// `Retry-After: retry_after`), `server_error` (503), `malformed` (200, broken JSON).
    pub async fn fault(&self, kind: &str, count: u32, retry_after: u32) {
        self.control(
            "fault",
            json!({"kind": kind, "count": count, "retry_after": retry_after}),
        )
        .await;
    }

    /// Like [`StandIn::fault`], only for requests of GraphQL operation `operation`
    /// (`Deployment`); `slow` answers normally after `retry_after` seconds; `hold` executes
    /// the request at once (what it does is in [`StandIn::state`] right away) and sends its
    /// answer only after `retry_after` seconds.
    pub async fn fault_on(&self, operation: &str, kind: &str, count: u32, retry_after: u32) {
        self.control(
            "fault",
            json!({"kind": kind, "count": count, "retry_after": retry_after, "operation": operation}),
        )
        .await;
    }

    /// The schema's verdict on one document, validation only.
    pub async fn validate(&self, query: &str) -> Vec<String> {
        let v = self.control("validate", json!({"query": query})).await;
        v["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Everything the fake holds and saw.
    pub async fn state(&self) -> Value {
        self.http
            .get(format!("{}/control/state", self.base))
            .send()
            .await
            .expect("state request")
            .json()
            .await
            .expect("state answer")
    }

    /// Fails the test when any request broke the schema.
    pub async fn assert_no_rejected(&self) {
        let state = self.state().await;
        assert_eq!(
            state["rejected"],
            json!([]),
            "documents or variables the schema refuses were sent"
        );
    }

    /// The mutations the fake executed, in order.
    pub async fn mutations(&self) -> Vec<String> {
        self.state().await["mutations"]
            .as_array()
            .expect("mutations")
            .iter()
            .map(|m| m.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The service instances the fake's mutations wrote, in order, as
    /// `(mutation, environment, service)` by name.
    pub async fn writes(&self) -> Vec<(String, String, String)> {
        self.state().await["writes"]
            .as_array()
            .expect("writes")
            .iter()
            .map(|w| {
                let field = |k: &str| w[k].as_str().unwrap_or_default().to_owned();
                (field("mutation"), field("environment"), field("service"))
            })
            .collect()
    }

    /// A builder for environment `staging` of the fake project, polling fast.
    pub fn builder(&self) -> RailwayBuilder {
        RailwayBuilder::new()
            .with_api_token(SecretString::from(TOKEN.to_owned()))
            .with_url(self.url.clone())
            .with_project(Ref::Id(self.project_id.clone()))
            .with_environment(Ref::Name("staging".into()))
            .with_poll_interval(Duration::from_millis(5))
            .with_read_budget(staging_core::ReadBudget::unlimited("the fake"))
            .with_timeout(Duration::from_secs(10))
    }

    /// The provider for `staging`, without the retry decorator.
    pub fn provider(&self) -> RailwayProvider {
        self.builder().build().expect("provider")
    }

    /// The provider for `staging` behind core's retry decorator with short delays.
    pub fn retrying(&self) -> DynProvider {
        Arc::new(RetryProvider::new(self.provider(), fast_retries()))
    }
}

/// Core's retry policy with delays short enough for tests.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        deadline: Duration::from_secs(20),
        max_attempts: 8,
    }
}

/// A spec on the Railway provider: `staging` promoting to protected `production`, service
/// `web`, plus `extra` TOML.
pub fn spec(project_id: &str, extra: &str) -> LoadedSpec {
    let dir = std::env::temp_dir().join(format!(
        "staging-railway-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let source = format!(
        r#"[project]
name = "shop"
evidence_dir = {dir:?}

[environments.staging]
provider = "railway"
promotes_to = "production"
deploy_timeout = "60s"
settings = {{ project_id = "{project_id}" }}

[environments.production]
provider = "railway"
protected = true
settings = {{ project_id = "{project_id}" }}

[services.web]
{extra}
"#,
        dir = dir.display().to_string()
    );
    let names = ["railway"];
    LoadedSpec::parse(dir.join("staging.toml"), source, LoadOptions::new(&names))
        .unwrap_or_else(|e| panic!("the test spec does not load: {e}"))
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
