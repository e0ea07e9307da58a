//! State files: a provider in one process announces its live services, a provider in
//! another (here: a second provider value over the same directory, which knows nothing of
//! the first's processes) reports them; stale files are ignored and removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use staging_core::{DeployRequest, DeployStatus, DynProvider, Provider, ProviderExt};
use staging_provider_local::{LocalProvider, LocalServiceSettings};

const SERVER: &str = r#"
import http.server, json, os
commit = os.environ.get("STAGING_COMMIT", "")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"status": "ok", "commit": commit}).encode()
        self.send_response(200 if self.path == "/up" else 404)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

const SECRET: &str = "canary-local-state-5c1e8a7d2b9f4e6a";

fn provider(dir: &Path) -> DynProvider {
    let mut settings =
        LocalServiceSettings::for_command(vec!["python3".into(), "server.py".into()], "/up");
    settings.workdir = dir.to_path_buf();
    settings.stop_timeout = Duration::from_secs(2);
    Arc::new(
        LocalProvider::new(BTreeMap::from([("web".to_owned(), settings)]))
            .with_state_dir(dir.join(".staging/local")),
    )
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join(".staging/local/staging/web.json")
}

fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.py"), SERVER).unwrap();
    dir
}

#[tokio::test]
async fn a_live_service_is_announced_to_another_provider_until_it_stops() {
    let dir = workdir();
    let owner = provider(dir.path());
    let svc = owner.locate("staging", "web").await.unwrap();
    owner
        .set_env_var(
            &staging_core::testkit::target(&svc),
            "JWT_SECRET",
            &SECRET.to_owned().into(),
        )
        .await
        .unwrap();
    let d = owner
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit("0123456789abcdef"),
        )
        .await
        .unwrap();
    owner
        .wait_until_live(&svc, &d.id, Duration::from_secs(30), &mut |_| {})
        .await
        .unwrap();
    let file = std::fs::read_to_string(state_file(dir.path())).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&file).unwrap();
    assert_eq!(doc["commit"], "0123456789abcdef", "{file}");
    assert_eq!(doc["deploy_id"], d.id.as_str(), "{file}");
    assert!(
        doc["pid"].as_u64().is_some() && doc["started_at"].is_string(),
        "{file}"
    );
    assert!(
        !file.contains(SECRET),
        "a variable's value is in the state file"
    );

    let other = provider(dir.path());
    let seen = other
        .live_state(&other.locate("staging", "web").await.unwrap())
        .await
        .unwrap();
    let own_url = owner.live_state(&svc).await.unwrap().url.unwrap();
    assert_eq!(seen.url.as_ref(), Some(&own_url));
    assert_eq!(seen.live_commit(), Some("0123456789abcdef"));
    assert_eq!(seen.live.as_ref().unwrap().status, DeployStatus::Live);
    let body = reqwest::get(format!("{own_url}up")).await.unwrap();
    assert!(body.status().is_success());

    drop(owner);
    assert!(
        !state_file(dir.path()).exists(),
        "the state file outlived its process"
    );
    let after = other
        .live_state(&other.locate("staging", "web").await.unwrap())
        .await
        .unwrap();
    assert_eq!(after.url, None);
    assert_eq!(after.live, None);
}

#[tokio::test]
async fn a_state_file_whose_process_is_gone_is_ignored_and_removed() {
    let dir = workdir();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let path = state_file(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        serde_json::json!({
            "service": "web", "environment": "staging", "pid": pid, "owner_pid": pid,
            "port": 9, "url": "http://127.0.0.1:9/", "commit": "0123456789abcdef",
            "deploy_id": "local-web-1", "started_at": "2026-01-01T00:00:00Z",
        })
        .to_string(),
    )
    .unwrap();
    let p = provider(dir.path());
    let state = p
        .live_state(&p.locate("staging", "web").await.unwrap())
        .await
        .unwrap();
    assert_eq!((state.latest, state.live, state.url), (None, None, None));
    assert!(!path.exists(), "the stale state file was kept");
}

#[tokio::test]
async fn a_superseded_deploy_leaves_the_state_file_to_the_new_one() {
    let dir = workdir();
    let p = provider(dir.path());
    let svc = p.locate("staging", "web").await.unwrap();
    for commit in ["aaaaaaa1111", "bbbbbbb2222"] {
        let d = p
            .deploy(
                &staging_core::testkit::target(&svc),
                &DeployRequest::commit(commit),
            )
            .await
            .unwrap();
        p.wait_until_live(&svc, &d.id, Duration::from_secs(30), &mut |_| {})
            .await
            .unwrap();
    }
    // The old process stops in the background; its file removal must not take the new one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let file = std::fs::read_to_string(state_file(dir.path())).unwrap();
    assert!(file.contains("bbbbbbb2222"), "{file}");
    drop(p);
    assert!(!state_file(dir.path()).exists());
}
