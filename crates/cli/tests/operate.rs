//! Operating an environment from the CLI (issue 16): a worker without HTTP passes `up` on
//! the local provider once it has stayed up for its settle time (and one that dies at boot
//! fails), `validate` names services without a health check, `rollback` on a provider that
//! cannot is "not supported" (exit 3) before any request or record, and `plan --json`
//! changes nothing.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::{SERVER, text};

const COMMIT: &str = "1111111aaaaaaaabbbbbbbbccccccccddddddddd";

fn staging(dir: &Path, args: &[&str]) -> std::process::Output {
    common::run_staging(dir, args, &[])
}

fn worker_spec(script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        r#"[project]
name = "jobs"

[environments.staging]
provider = "local"
deploy_timeout = "60s"

[services.worker]
http = false
settings = { command = ["python3", "worker.py"], settle = "1s", stop_timeout = "2s" }
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("worker.py"), script).unwrap();
    dir
}

#[test]
fn a_worker_without_a_health_path_passes_up_on_local_once_it_stayed_up() {
    let dir = worker_spec("import time\nwhile True:\n    time.sleep(1)\n");
    let out = staging(dir.path(), &["up", "--env", "staging", "--commit", COMMIT]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_worker_that_dies_at_boot_fails_up_on_local() {
    let dir = worker_spec("import sys\nprint('QUEUE_URL is not set')\nsys.exit(1)\n");
    let out = staging(dir.path(), &["up", "--env", "staging", "--commit", COMMIT]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn validate_names_the_services_without_a_health_check() {
    let dir = worker_spec("import time\ntime.sleep(60)\n");
    let out = staging(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("no health check") && text(&out).contains("worker"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_health_path_on_a_service_without_http_is_refused_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        r#"[project]
name = "jobs"

[environments.staging]
provider = "local"

[services.worker]
http = false
health_path = "/up"
settings = { command = ["python3", "worker.py"] }
"#,
    )
    .unwrap();
    let out = staging(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("health_path"), "{}", text(&out));
}

#[test]
fn rollback_on_a_netlify_branch_context_is_not_supported_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        r#"[project]
name = "site"

[environments.staging]
provider = "netlify"
settings = { site_name = "shop", context = "branch:develop" }

[services.web]
settings = { site_name = "shop" }
"#,
    )
    .unwrap();
    // A port nothing listens on: any request would fail with a connection error instead.
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args(["rollback", "--env", "staging"])
        .arg("-f")
        .arg(dir.path().join("staging.toml"))
        .env("NETLIFY_AUTH_TOKEN", "tok-not-used")
        .env("NETLIFY_API_URL", "http://127.0.0.1:9/api/v1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("does not support rolling back"),
        "{}",
        text(&out)
    );
    assert!(
        !dir.path().join(".staging").join("evidence").exists(),
        "a refused rollback was recorded"
    );
}

#[test]
fn plan_json_reads_and_starts_nothing_on_local() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        r#"[project]
name = "shop"

[environments.staging]
provider = "local"

[services.web]
health_path = "/up"
settings = { command = ["python3", "-c", "open('started','w')"] }
"#,
    )
    .unwrap();
    let out = staging(
        dir.path(),
        &["plan", "--env", "staging", "--commit", COMMIT, "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)));
    assert!(doc.to_string().contains(COMMIT), "{doc}");
    assert!(doc.to_string().contains("\"web\""), "{doc}");
    assert!(
        !dir.path().join("started").exists(),
        "plan started a service"
    );
    assert!(
        !dir.path().join(".staging").join("evidence").exists(),
        "plan recorded evidence"
    );
}

const PROMOTE_SPEC: &str = r#"[project]
name = "promo"

[environments.staging]
provider = "local"
promotes_to = "production"
deploy_timeout = "60s"

[environments.production]
provider = "local"
protected = true
deploy_timeout = "60s"

[services.web]
health_path = "/up"
settings = { command = ["python3", "server.py"], stop_timeout = "2s" }

[[probes]]
name = "health"
http = { url = "${services.web.url}/up", expect = { json = { "$.commit" = "${commit}" } } }

[[probes]]
name = "production-only"
environments = ["production"]
http = { url = "${services.web.url}/up", expect = { status = 418 } }
"#;

/// A promote whose smoke fails after the deploy went live runs the automatic rollback step
/// (here nothing was live before in this process, and it says so), exit 1;
/// `--no-rollback` leaves it out.
#[test]
fn a_promote_whose_smoke_fails_runs_the_rollback_step_unless_no_rollback() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), PROMOTE_SPEC).unwrap();
    std::fs::write(dir.path().join("server.py"), SERVER).unwrap();
    let out = staging(dir.path(), &["up", "--env", "staging", "--commit", COMMIT]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = staging(
        dir.path(),
        &[
            "promote",
            "--to",
            "production",
            "--commit",
            COMMIT,
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)));
    let steps: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {doc}"))
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"rollback"), "{doc}");
    assert!(
        doc.to_string()
            .contains("nothing was live before this run's deploy"),
        "{doc}"
    );

    let out = staging(
        dir.path(),
        &[
            "promote",
            "--to",
            "production",
            "--commit",
            COMMIT,
            "--no-rollback",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["step"] != "rollback"),
        "--no-rollback still rolled back: {doc}"
    );
}

#[test]
fn logs_of_a_local_service_not_running_here_cannot_proceed_and_an_unknown_service_is_a_usage_error()
{
    let dir = worker_spec("import time\ntime.sleep(60)\n");
    let out = staging(
        dir.path(),
        &["logs", "--env", "staging", "--service", "worker"],
    );
    // Nothing to read: exit 3, as `smoke` with nothing running.
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("nothing is running"), "{}", text(&out));
    let out = staging(
        dir.path(),
        &["logs", "--env", "staging", "--service", "wroker"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no service `wroker` in the spec; did you mean `worker`?"),
        "{}",
        text(&out)
    );
}
