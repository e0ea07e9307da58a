//! The local provider against core's conformance suite, and its failure modes, with real
//! child processes (a small Python HTTP server stands in for a service).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use staging_core::{DeployRequest, DeployStatus, DynProvider, Error, Provider, ProviderExt};
use staging_provider_local::{LocalProvider, LocalServiceSettings};

const SERVER: &str = r#"
import http.server, json, os, sys
commit = os.environ.get("STAGING_COMMIT", "")
print("booting commit", commit, flush=True)
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

fn provider_with(command: Vec<&str>) -> (DynProvider, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.py"), SERVER).unwrap();
    let mut settings =
        LocalServiceSettings::for_command(command.into_iter().map(String::from).collect(), "/up");
    settings.workdir = dir.path().to_path_buf();
    settings.stop_timeout = Duration::from_secs(2);
    // State files on, as in the CLI: the suite must not notice them.
    let provider = LocalProvider::new(BTreeMap::from([("web".to_owned(), settings)]))
        .with_state_dir(dir.path().join(".staging/local"));
    (Arc::new(provider), dir)
}

#[tokio::test]
async fn local_provider_passes_the_conformance_suite() {
    let (p, _dir) = provider_with(vec!["python3", "server.py"]);
    staging_core::testkit::run_all(&p, "staging", "web").await;
}

#[tokio::test]
async fn a_service_that_exits_fails_its_deploy_and_keeps_its_last_lines() {
    let (p, _dir) = provider_with(vec!["sh", "-c", "echo 'missing JWT_SECRET'; exit 3"]);
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit("abc1234"),
        )
        .await
        .unwrap();
    let err = p
        .wait_until_live(&svc, &d.id, Duration::from_secs(30), &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Failed { .. }), "{err}");
    assert!(err.to_string().contains("exited"), "{err}");
    // The reader task may still be draining the pipe right after the exit.
    let mut lines = vec![];
    for _ in 0..50 {
        lines = p.recent_logs(&svc, Some(&d.id), 10).await.unwrap();
        if !lines.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lines, vec!["missing JWT_SECRET".to_owned()]);
}

#[tokio::test]
async fn a_service_that_never_becomes_healthy_times_out() {
    let (p, _dir) = provider_with(vec!["sh", "-c", "echo still booting; sleep 30"]);
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit("abc1234"),
        )
        .await
        .unwrap();
    let err = p
        .wait_until_live(&svc, &d.id, Duration::from_millis(800), &mut |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert_eq!(
        p.deploy_status(&svc, &d.id).await.unwrap().status,
        DeployStatus::InProgress
    );
}

#[tokio::test]
async fn env_vars_reach_the_next_deploy() {
    let (p, _dir) = provider_with(vec![
        "sh",
        "-c",
        "echo \"greeting=$GREETING\"; exec python3 server.py",
    ]);
    let svc = p.locate("staging", "web").await.unwrap();
    p.set_env_var(
        &staging_core::testkit::target(&svc),
        "GREETING",
        &"hello-there".to_owned().into(),
    )
    .await
    .unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit("abc1234"),
        )
        .await
        .unwrap();
    p.wait_until_live(&svc, &d.id, Duration::from_secs(30), &mut |_| {})
        .await
        .unwrap();
    let lines = p.recent_logs(&svc, Some(&d.id), 10).await.unwrap();
    assert!(
        lines.contains(&"greeting=hello-there".to_owned()),
        "{lines:?}"
    );
}

#[tokio::test]
async fn dropping_the_provider_stops_its_processes() {
    let (p, _dir) = provider_with(vec!["python3", "server.py"]);
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit("abc1234"),
        )
        .await
        .unwrap();
    p.wait_until_live(&svc, &d.id, Duration::from_secs(30), &mut |_| {})
        .await
        .unwrap();
    let url = p.live_state(&svc).await.unwrap().url.unwrap();
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    assert!(std::net::TcpStream::connect(&addr).is_ok());
    drop(p);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the service still answers after the provider was dropped"
    );
}

#[tokio::test]
async fn logs_of_a_live_service_are_its_output_lines_and_a_deploy_names_its_own() {
    let (p, _dir) = provider_with(vec!["python3", "server.py"]);
    let svc = p.locate("staging", "web").await.unwrap();
    let commit = staging_core::testkit::COMMIT_A;
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
    let query = staging_core::LogQuery {
        deploy_id: Some(d.id.clone()),
        ..staging_core::LogQuery::last(5)
    };
    let mut lines = vec![];
    for _ in 0..50 {
        lines = p.logs(&svc, &query).await.unwrap();
        if !lines.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, [format!("booting commit {commit}")], "{lines:?}");
    assert!(
        p.logs(
            &svc,
            &staging_core::LogQuery {
                deploy_id: Some("no-such-deploy".into()),
                ..staging_core::LogQuery::last(5)
            }
        )
        .await
        .is_err(),
        "an unknown deploy's logs are not an error"
    );
}
