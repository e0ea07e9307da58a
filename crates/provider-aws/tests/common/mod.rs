//! moto on a free loopback port, one server per test binary, and clients pointed at it.
//!
//! The server is started by the first test that asks and stopped when the test binary
//! exits: it runs under a small shell that kills it once its stdin (held by this process)
//! closes, since a `static` is never dropped. Tests isolate themselves by unique names.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use staging_provider_aws::AwsContext;

pub struct Moto {
    pub url: String,
    _child: Mutex<Child>,
}

fn moto_server() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = root.join(".tools/venv/bin/moto_server");
    assert!(
        bin.exists(),
        "moto is not installed at {}: run `bash scripts/test-tools.sh` from the workspace root first",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read(&mut buf).map(|n| n > 0).unwrap_or(false)
}

fn post(port: u16, path: &str, body: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let req = format!(
        "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 2") || answer.starts_with("HTTP/1.0 2"),
        "moto {path}: {answer}"
    );
}

/// The shared moto server of this test binary.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let bin = moto_server();
        let port = free_port();
        let script = format!(
            "'{}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill $pid",
            bin.display()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("MOTO_ECS_SERVICE_RUNNING", "1")
            .env("MOTO_ACM_VALIDATION_WAIT", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let started = Instant::now();
        while !answers(port) {
            assert!(started.elapsed() < Duration::from_secs(30), "moto_server did not answer on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        // moto moves a task through its whole life (to STOPPED) on every read by default;
        // keep tasks where run_task/stop_task put them, as ECS would between two polls.
        post(port, "/moto-api/state-manager/set-transition", r#"{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}"#);
        Moto { url: format!("http://127.0.0.1:{port}"), _child: Mutex::new(child) }
    })
}

/// An SdkConfig for `endpoint` with moto's test credentials, set on the builder (never in
/// the process environment, so tests do not race).
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}

/// A context for the shared moto server.
pub async fn ctx() -> AwsContext {
    AwsContext::from_sdk_config(sdk_config_for(&moto().url).await)
}

/// A name no other test of this run uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Call moto's EC2 query API (the EC2 SDK crate is too big to compile for test fixtures).
pub async fn ec2(params: &[(&str, &str)]) -> String {
    let client = reqwest::Client::new();
    let mut form: Vec<(&str, &str)> = vec![("Version", "2016-11-15")];
    form.extend_from_slice(params);
    let res = client
        .post(&moto().url)
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .form(&form)
        .send()
        .await
        .expect("moto ec2 call");
    let status = res.status();
    let body = res.text().await.unwrap();
    assert!(status.is_success(), "ec2 {params:?}: {status} {body}");
    body
}

/// The text of the first `<tag>...</tag>` in an XML answer.
pub fn xml_text(body: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = body
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {body}"))
        + open.len();
    let end = body[start..].find(&format!("</{tag}>")).unwrap() + start;
    body[start..end].to_owned()
}
