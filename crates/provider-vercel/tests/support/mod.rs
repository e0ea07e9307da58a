//! Stand-ins for the Vercel tests: Prism (`prism proxy --errors`) serving Vercel's published
//! API description in front of the stateful fake `fake.py`, started once per test binary.
//! The rollback call is not in that description: it goes to the fake directly (the
//! hand-written double). Tests of one binary share the stand-in and take [`lock`] in turn.
#![allow(dead_code, unreachable_pub)]

#[path = "../../../provider-render/tests/support/prism.rs"]
pub mod prism;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use staging_core::{DynProvider, RetryPolicy, RetryProvider};
use staging_provider_vercel::{ProjectRef, Target, VercelBuilder, VercelProvider};

pub use prism::Prism;

pub const TOKEN: &str = "vc_test_token_canary_5e1b";

pub struct Fake {
    pub port: u16,
    child: Child,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Fake {
    fn start() -> Fake {
        let port = prism::free_port();
        // From the workspace root: the CLI's tests include this module too.
        let script = prism::workspace_root().join("crates/provider-vercel/tests/support/fake.py");
        let child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3 fake.py");
        // The fake must not outlive the test binary (held in a static, never dropped).
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {} 2>/dev/null && kill -0 {} 2>/dev/null; do sleep 1; done; kill {} 2>/dev/null",
                std::process::id(),
                child.id(),
                child.id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "fake.py did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Fake { port, child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

pub struct StandIn {
    pub fake: Fake,
    /// Where the tests send: the in-process checking proxy in front of Prism in front of the
    /// fake. Prism silently skips the 40 schemas of `vercel-openapi.json` its validator
    /// cannot compile, which cover every body a Vercel run exchanges, so each body is
    /// validated a second time in-process.
    pub prism: staging_test_support::Checked<Prism>,
}

pub fn stand_in() -> &'static StandIn {
    static STAND_IN: OnceLock<StandIn> = OnceLock::new();
    STAND_IN.get_or_init(|| {
        let fake = Fake::start();
        let contract = staging_core::testkit::contract_path("vercel-openapi.json");
        let prism = Prism::proxy_of(contract.clone(), &fake.url());
        StandIn {
            fake,
            prism: staging_test_support::Checked::new(prism, &contract),
        }
    })
}

/// One test at a time on the shared stand-in.
pub async fn lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
        .lock()
        .await
}

async fn control(path: &str, body: Value) -> Value {
    let url = format!("{}/_fake/{path}", stand_in().fake.url());
    reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("fake control")
        .json()
        .await
        .expect("fake control answer")
}

/// A fresh fake with project `web` (custom environment `staging`); returns its id.
pub async fn reset(auto_assign: bool) -> String {
    let ids = control(
        "reset",
        json!({"projects": [{"name": "web", "autoAssignCustomDomains": auto_assign, "customEnvironments": ["staging"]}]}),
    )
    .await;
    ids["web"].as_str().unwrap().to_owned()
}

/// A fresh fake holding one project named `name`, with these custom environments; its id.
pub async fn reset_project(name: &str, auto_assign: bool, custom_environments: &[&str]) -> String {
    let ids = control(
        "reset",
        json!({"projects": [{"name": name, "autoAssignCustomDomains": auto_assign, "customEnvironments": custom_environments}]}),
    )
    .await;
    ids[name].as_str().unwrap().to_owned()
}

/// How the next deployments go: `ok`, `error`, `slow`, `other-commit`.
pub async fn plan(plans: &[&str]) {
    control("plan", json!({ "plans": plans })).await;
}

/// The next `count` API requests answer `kind` (`429`, `503`, `malformed`).
pub async fn fault(kind: &str, count: u32, retry_after: Option<u64>) {
    control(
        "fault",
        json!({"kind": kind, "count": count, "retryAfter": retry_after}),
    )
    .await;
}

pub async fn state() -> Value {
    control("state", json!({})).await
}

pub async fn set_auto_assign(value: bool) {
    control("set-auto-assign", json!({"project": "web", "value": value})).await;
}

pub fn builder(target: Target) -> VercelBuilder {
    let s = stand_in();
    VercelBuilder::new()
        .with_token(TOKEN.to_owned())
        .with_url(s.prism.url())
        .with_unlisted_url(s.fake.url())
        .with_team_id("team_fake")
        .with_target(target)
        .with_git_branch("main")
        .with_project(
            "web",
            ProjectRef {
                id_or_name: "web".into(),
                repo: Some("acme/web".into()),
            },
        )
        .with_poll_interval(Duration::from_millis(10))
        .with_read_budget(staging_core::ReadBudget::unlimited("the test stand-in"))
        .with_timeout(Duration::from_secs(30))
}

pub fn provider(target: Target) -> VercelProvider {
    builder(target).build().expect("build provider")
}

pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        deadline: Duration::from_secs(60),
        max_attempts: 8,
    }
}

pub fn retrying(target: Target) -> DynProvider {
    Arc::new(RetryProvider::new(provider(target), quick_retries()))
}

/// The next promote or rollback job ends `outcome` (`succeeded`, `failed`) `delay_secs`
/// after the request; a failed one names `failed_aliases` (alias, status) as Vercel does.
pub async fn alias_job(delay_secs: f64, outcome: &str, failed_aliases: &[(&str, &str)]) {
    let failed: Vec<Value> = failed_aliases
        .iter()
        .map(|(alias, status)| json!({"alias": alias, "status": status}))
        .collect();
    control(
        "alias-job",
        json!({"delay": delay_secs, "outcome": outcome, "failedAliases": failed}),
    )
    .await;
}
