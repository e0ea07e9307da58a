//! The public conformance suite every provider runs against its stand-in (and, when asked,
//! against the real service).
//!
//! ```ignore
//! #[tokio::test]
//! async fn local_provider_passes_the_conformance_suite() {
//!     let provider: DynProvider = Arc::new(my_provider());
//!     staging_core::testkit::run_all(&provider, "staging", "web").await;
//! }
//! ```
//!
//! Each function panics with a message naming the broken expectation, like an assertion.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::error::Error;
use crate::provider::{
    Capability, DeployRequest, DeployStatus, DynProvider, ProviderExt, ServiceHandle,
};

/// How long the suite waits for one deploy.
pub const DEPLOY_TIMEOUT: Duration = Duration::from_secs(60);

/// Two distinct commits the suite deploys.
pub const COMMIT_A: &str = "aaaaaaa1111111111111111111111111111111aa";
/// The second commit.
pub const COMMIT_B: &str = "bbbbbbb2222222222222222222222222222222bb";

async fn locate(p: &DynProvider, env: &str, service: &str) -> ServiceHandle {
    p.locate(env, service)
        .await
        .unwrap_or_else(|e| panic!("locate({env}, {service}) failed: {e}"))
}

async fn deploy_and_wait(p: &DynProvider, svc: &ServiceHandle, commit: &str) {
    let d = p
        .deploy(svc, &DeployRequest::commit(commit))
        .await
        .unwrap_or_else(|e| panic!("deploy {commit} failed: {e}"));
    let live = p
        .wait_until_live(svc, &d.id, DEPLOY_TIMEOUT, &mut |_| {})
        .await
        .unwrap_or_else(|e| panic!("deploy {} of {commit} did not go live: {e}", d.id));
    assert_eq!(
        live.status,
        DeployStatus::Live,
        "wait_until_live returned a deploy that is not live"
    );
}

/// Deploy a commit, wait until live, and see it as the live commit.
pub async fn deploy_roundtrip(p: &DynProvider, env: &str, service: &str) {
    if !p.capabilities().has(Capability::DeployCommit) {
        return;
    }
    let svc = locate(p, env, service).await;
    deploy_and_wait(p, &svc, COMMIT_A).await;
    let state = p.live_state(&svc).await.expect("live_state after deploy");
    assert_eq!(
        state.live_commit(),
        Some(COMMIT_A),
        "the live commit is not the one deployed"
    );
}

/// Set an env var, read it back, delete it, and see it gone; other keys untouched.
pub async fn env_var_roundtrip(p: &DynProvider, env: &str, service: &str) {
    let caps = p.capabilities();
    if !(caps.has(Capability::ReadEnv) && caps.has(Capability::WriteEnv)) {
        return;
    }
    let svc = locate(p, env, service).await;
    let keep = SecretString::from("conformance-keep-value".to_owned());
    let value = SecretString::from("conformance-canary-4f1d".to_owned());
    p.set_env_var(&svc, "STAGING_CONFORMANCE_KEEP", &keep)
        .await
        .expect("set keep var");
    p.set_env_var(&svc, "STAGING_CONFORMANCE", &value)
        .await
        .expect("set var");
    let vars = p.env_vars(&svc).await.expect("read vars");
    assert_eq!(
        vars.get("STAGING_CONFORMANCE")
            .map(|v| v.expose_secret().to_owned())
            .as_deref(),
        Some("conformance-canary-4f1d"),
        "a var that was set does not read back"
    );
    p.delete_env_var(&svc, "STAGING_CONFORMANCE")
        .await
        .expect("delete var");
    let vars = p.env_vars(&svc).await.expect("read vars after delete");
    assert!(
        !vars.contains_key("STAGING_CONFORMANCE"),
        "a deleted var is still there"
    );
    assert!(
        vars.contains_key("STAGING_CONFORMANCE_KEEP"),
        "deleting one var removed another"
    );
    p.delete_env_var(&svc, "STAGING_CONFORMANCE_KEEP")
        .await
        .expect("delete keep var");
}

/// Deploy A then B, roll back, and see A live again.
pub async fn rollback_roundtrip(p: &DynProvider, env: &str, service: &str) {
    let caps = p.capabilities();
    if !(caps.has(Capability::Rollback) && caps.has(Capability::DeployCommit)) {
        return;
    }
    let svc = locate(p, env, service).await;
    deploy_and_wait(p, &svc, COMMIT_A).await;
    deploy_and_wait(p, &svc, COMMIT_B).await;
    assert_eq!(
        p.live_state(&svc).await.expect("state").live_commit(),
        Some(COMMIT_B)
    );
    let d = p.rollback(&svc).await.expect("rollback");
    p.wait_until_live(&svc, &d.id, DEPLOY_TIMEOUT, &mut |_| {})
        .await
        .expect("rollback deploy goes live");
    assert_eq!(
        p.live_state(&svc).await.expect("state").live_commit(),
        Some(COMMIT_A),
        "after rollback the previous commit is not live"
    );
}

/// Every operation `capabilities()` declares unsupported answers `NotSupported`.
pub async fn unsupported_is_declared(p: &DynProvider, env: &str, service: &str) {
    let caps = p.capabilities();
    let svc = locate(p, env, service).await;
    let value = SecretString::from("x-unsupported".to_owned());
    let check = |what: &str, r: Result<(), Error>| {
        assert!(
            matches!(r, Err(Error::NotSupported { .. })),
            "{what} is declared unsupported but did not return NotSupported: {r:?}"
        );
    };
    if !caps.has(Capability::DeployCommit) {
        check(
            "deploy a commit",
            p.deploy(&svc, &DeployRequest::commit(COMMIT_A))
                .await
                .map(drop),
        );
    }
    if !caps.has(Capability::DeployImage) {
        let req = DeployRequest {
            target: crate::DeployTarget::Image("example/image:1".into()),
            commit: None,
            clear_cache: false,
        };
        check("deploy an image", p.deploy(&svc, &req).await.map(drop));
    }
    if !caps.has(Capability::Rollback) {
        check("rollback", p.rollback(&svc).await.map(drop));
    }
    if !caps.has(Capability::ReadEnv) {
        check("read env vars", p.env_vars(&svc).await.map(drop));
    }
    if !caps.has(Capability::WriteEnv) {
        check("write env vars", p.set_env_var(&svc, "X", &value).await);
    }
    if !caps.has(Capability::Logs) {
        check("logs", p.recent_logs(&svc, None, 5).await.map(drop));
    }
    if !caps.has(Capability::Cancel) {
        check(
            "cancel a deploy",
            p.cancel_deploy(&svc, "no-such-deploy").await.map(drop),
        );
    }
}

/// Cancel a deploy before it is live and see it end as canceled, with the live commit
/// unchanged.
pub async fn cancel_roundtrip(p: &DynProvider, env: &str, service: &str) {
    let caps = p.capabilities();
    if !(caps.has(Capability::Cancel) && caps.has(Capability::DeployCommit)) {
        return;
    }
    let svc = locate(p, env, service).await;
    deploy_and_wait(p, &svc, COMMIT_A).await;
    let d = p
        .deploy(&svc, &DeployRequest::commit(COMMIT_B))
        .await
        .expect("deploy to cancel");
    if d.status.is_terminal() {
        // Went live (or failed) before we could cancel: nothing to check on this stand-in.
        return;
    }
    let canceled = p.cancel_deploy(&svc, &d.id).await.expect("cancel");
    assert!(
        matches!(canceled.status, DeployStatus::Canceled | DeployStatus::Live),
        "a canceled deploy is {:?}",
        canceled.status
    );
    if canceled.status == DeployStatus::Canceled {
        assert_eq!(
            p.live_state(&svc).await.expect("state").live_commit(),
            Some(COMMIT_A),
            "canceling a deploy changed the live commit"
        );
    }
}

/// The whole suite, in order.
pub async fn run_all(p: &DynProvider, env: &str, service: &str) {
    deploy_roundtrip(p, env, service).await;
    env_var_roundtrip(p, env, service).await;
    rollback_roundtrip(p, env, service).await;
    cancel_roundtrip(p, env, service).await;
    unsupported_is_declared(p, env, service).await;
}

/// A loopback listener that accepts every connection and never sends a byte: the silent
/// peer every network wait must survive (a firewall that drops replies, a hung server, a
/// port-forward to nowhere). Runs on a thread of its own, so it works under any runtime;
/// the connections are held open until it is dropped.
#[derive(Debug)]
pub struct SilentPeer {
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SilentPeer {
    /// Listen on `127.0.0.1` on a free port.
    pub fn start() -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("a local address");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (s, a) = (stop.clone(), accepted.clone());
        std::thread::spawn(move || {
            let mut held = vec![];
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    a.fetch_add(1, Ordering::SeqCst);
                    held.push(c);
                }
            }
        });
        SilentPeer {
            addr,
            stop,
            accepted,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// How many connections it has accepted (and left unanswered).
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for SilentPeer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so that it sees `stop` and drops what it holds.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}
