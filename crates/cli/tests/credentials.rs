//! `validate --online` (and the start of `up`) ask every provider whether it accepts the
//! credentials: missing, refused or unreachable exits 3 for Render and Netlify as for AWS
//! (`ecosystem.rs`), an accepted key passes, and plain `validate` asks nobody.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use assert_cmd::Command;

/// Prism serving Render's own API description (the Render provider tests' stand-in).
#[allow(dead_code, unreachable_pub)]
#[path = "../../provider-render/tests/support/prism.rs"]
mod render_prism;

const C1: &str = "1111111111111111111111111111111111111111";

const RENDER: &str = r#"[project]
name = "online"

[environments.staging]
provider = "render"
deploy_timeout = "30s"

[services.web]
health_path = "/up"
settings = { service_name = "web-staging" }
"#;

const NETLIFY: &str = r#"[project]
name = "online"

[environments.staging]
provider = "netlify"
deploy_timeout = "30s"
settings = { site_name = "online-site", context = "branch:develop" }

[services.site]
health_path = "/"
"#;

/// A platform that refuses every credential: each request is answered 401 and counted.
struct Refusing {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl Refusing {
    fn start() -> Refusing {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                seen.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut buf = [0u8; 8192];
                let _ = stream.read(&mut buf);
                let body = r#"{"id":"unauthorized","message":"invalid API key"}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Refusing { url, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// `staging ARGS` in `dir` with exactly the credentials and endpoints of `env`.
fn staging(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::cargo_bin("staging").unwrap();
    cmd.current_dir(dir)
        .env_remove("RENDER_API_KEY")
        .env_remove("RENDER_API_URL")
        .env_remove("NETLIFY_AUTH_TOKEN")
        .env_remove("NETLIFY_API_URL")
        .env_remove("STAGING_FILE")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        .args(args)
        .timeout(std::time::Duration::from_secs(120));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn spec_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), text).unwrap();
    dir
}

fn said(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Missing, refused and unreachable credentials each exit 3 from `validate --online` and
/// from `up`, and the key is never printed; plain `validate` contacts nobody.
fn cannot_proceed_without_accepted_credentials(
    spec: &str,
    key_var: &str,
    url_var: &str,
    canary: &str,
) {
    let dir = spec_dir(spec);
    let d = dir.path();
    let refusing = Refusing::start();
    let cases: [(&str, Vec<(&str, &str)>); 3] = [
        ("missing", vec![(url_var, refusing.url.as_str())]),
        (
            "refused",
            vec![(key_var, canary), (url_var, refusing.url.as_str())],
        ),
        (
            "unreachable",
            vec![(key_var, canary), (url_var, "http://127.0.0.1:9")],
        ),
    ];
    for (case, env) in &cases {
        for args in [
            &["validate", "--online"][..],
            &["up", "--env", "staging", "--commit", C1],
        ] {
            let out = staging(d, env, args);
            assert_eq!(
                out.status.code(),
                Some(3),
                "{key_var} {case}, {args:?}:\n{}",
                said(&out)
            );
            assert!(
                !said(&out).contains(canary),
                "the key is printed:\n{}",
                said(&out)
            );
        }
    }
    assert!(
        refusing.requests() > 0,
        "the refused key was never sent to the platform"
    );
    // Offline validation asks nobody, whatever the credentials.
    let before = refusing.requests();
    let out = staging(
        d,
        &[(key_var, canary), (url_var, refusing.url.as_str())],
        &["validate"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(refusing.requests(), before, "plain validate called the API");
}

#[test]
fn render_credentials_missing_refused_or_unreachable_cannot_proceed_exit_3() {
    cannot_proceed_without_accepted_credentials(
        RENDER,
        "RENDER_API_KEY",
        "RENDER_API_URL",
        "rnd_canary_0d9c8b7a6f5e",
    );
}

#[test]
fn netlify_credentials_missing_refused_or_unreachable_cannot_proceed_exit_3() {
    cannot_proceed_without_accepted_credentials(
        NETLIFY,
        "NETLIFY_AUTH_TOKEN",
        "NETLIFY_API_URL",
        "nfp_canary_1e2d3c4b5a69",
    );
}

#[test]
fn validate_online_passes_when_render_accepts_the_key() {
    let prism = render_prism::Prism::mock();
    let dir = spec_dir(RENDER);
    let out = staging(
        dir.path(),
        &[
            ("RENDER_API_KEY", "rnd_accepted_by_prism"),
            ("RENDER_API_URL", &prism.url()),
        ],
        &["validate", "--online"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("every provider answered"),
        "{}",
        said(&out)
    );
    assert!(prism.violations().is_empty(), "{:?}", prism.violations());
}
