//! The `railway` provider through the binary, against the schema-validating stand-in of
//! `crates/provider-railway/tests/support`: `plan` shows that a missing staging environment
//! will be created from production, and `up` creates it, sets staging's own variables, then
//! deploys the commit; then the staging Postgres service's URL is a secret source.

#[path = "../../provider-railway/tests/support/mod.rs"]
mod railway;

use assert_cmd::Command;

const COMMIT: &str = "aaaaaaa1111111111111111111111111111111aa";

fn spec(project_id: &str, evidence: &std::path::Path) -> String {
    format!(
        r#"[project]
name = "shop"
evidence_dir = {evidence:?}

[environments.staging]
provider = "railway"
promotes_to = "production"
deploy_timeout = "60s"
settings = {{ project_id = "{project_id}", create_if_missing = true, plan = "pro" }}

[environments.production]
provider = "railway"
protected = true
settings = {{ project_id = "{project_id}", plan = "pro" }}

[services.web]
http = false

[vars.APP_ENV]
values = {{ staging = "staging", production = "production" }}
"#,
        evidence = evidence.display().to_string()
    )
}

fn staging(url: &str, spec: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("-f")
        .arg(spec)
        .args(["--env", "staging"])
        .args(args)
        .env_remove("STAGING_ENV")
        .env_remove("RAILWAY_TOKEN")
        .env("RAILWAY_API_TOKEN", railway::TOKEN)
        .env("RAILWAY_API_URL", url)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), all)
}

#[tokio::test]
async fn plan_shows_and_up_creates_a_missing_staging_environment_from_production() {
    let mut s = railway::StandIn::start().await;
    s.reset(&["production"], &["web", "Postgres"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, spec(&s.project_id, &dir.path().join("evidence"))).unwrap();

    let (code, out) = staging(&s.url, &path, &["plan", "--commit", COMMIT]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("environment: create Railway environment `staging` from `production`"),
        "{out}"
    );
    assert!(s.mutations().await.is_empty(), "plan wrote: {out}");

    let (code, out) = staging(&s.url, &path, &["up", "--commit", COMMIT]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        s.mutations().await,
        [
            "environmentCreate",
            "environmentPatchCommitStaged",
            "variableCollectionUpsert",
            "serviceInstanceDeployV2"
        ],
        "{out}"
    );
    let state = s.state().await;
    assert_eq!(state["created_environments"][0]["source"], "production");
    assert_eq!(state["upserts"][0]["names"], serde_json::json!(["APP_ENV"]));

    // Now that staging exists, its Postgres (a database of its own) is a secret source: the
    // URL is read, checked to differ from production's, never shown.
    let with_db = format!(
        "{}\n[vars.DATABASE_URL]\nsecret = true\nservices = []\nsource = {{ provider = \"service:Postgres\" }}\nrules = {{ kind = \"url\", differs_from = \"production\" }}\n",
        std::fs::read_to_string(&path).unwrap()
    );
    std::fs::write(&path, with_db).unwrap();
    let (code, out) = staging(&s.url, &path, &["secrets", "check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("DATABASE_URL"), "{out}");
    assert!(!out.contains("canary-public"), "{out}");
    s.assert_no_rejected().await;
}

/// The example's own project id: the stand-in is reset into that project, so the copy keeps it.
const EXAMPLE_PROJECT: &str = "4f6c1d2e-8a3b-4c5d-9e7f-0a1b2c3d4e5f";
/// The JWT signing keys CI would hold (canaries: never in any output).
const STAGING_JWT: &str = "stg-canary-jwt-9f3c1d7e8a4b6c3d5e7f9a1b3c5d7e9f2a4b6c8d0e1f";
const PRODUCTION_JWT: &str = "prd-canary-jwt-1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b";

/// `examples/railway/staging.toml`, copied into `dir` with only what the stand-in cannot
/// give substituted; each substitution must match the example exactly once, so the test
/// breaks loudly when the example changes instead of silently testing something else:
/// - `DATABASE_URL` from `service:Postgres`: the stand-in's Postgres URLs point nowhere, so
///   each environment's URL comes from CI's environment instead, naming a real database of
///   its own on the local Postgres (the rules stay the example's);
/// - `alembic upgrade head` / `alembic heads`: a stand-in script that keeps alembic's
///   `alembic_version` table on that database the way alembic does (the table stays the
///   example's);
/// - the health probe's `${services.web.url}`: the stand-in's `*.up.railway.app` domain
///   serves nothing, so the probe asks a local server answering as the app does (the path
///   and what is expected stay the example's).
///
/// The environments, the project layout, the service and every other variable are the
/// example's own.
fn example_copy(dir: &std::path::Path, health: &str) -> std::path::PathBuf {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/railway/staging.toml");
    let mut text = std::fs::read_to_string(&example).unwrap();
    let alembic = dir.join("fake-alembic.sh");
    std::fs::write(
        &alembic,
        "#!/bin/sh\n# alembic's two commands the example uses, on alembic's own version table.\nset -e\ncase \"$1\" in\n  heads) echo '0001_init (head)' ;;\n  upgrade) psql -qX -v ON_ERROR_STOP=1 \"$DATABASE_URL\" -c 'CREATE TABLE IF NOT EXISTS alembic_version (version_num varchar(32) PRIMARY KEY)' -c \"INSERT INTO alembic_version VALUES ('0001_init') ON CONFLICT DO NOTHING\" ;;\n  *) echo \"unexpected: $*\" >&2; exit 2 ;;\nesac\n",
    )
    .unwrap();
    let alembic = alembic.display().to_string();
    for (from, to) in [
        (
            r#"source = { provider = "service:Postgres" }"#.to_owned(),
            r#"sources = { staging = { env = "STAGING_DATABASE_URL" }, production = { env = "PRODUCTION_DATABASE_URL" } }"#.to_owned(),
        ),
        (
            r#"migrations = { command = ["alembic", "upgrade", "head"], versions_command = ["alembic", "heads"], version_table = "alembic_version" }"#.to_owned(),
            format!(
                r#"migrations = {{ command = ["sh", "{alembic}", "upgrade", "head"], versions_command = ["sh", "{alembic}", "heads"], version_table = "alembic_version" }}"#
            ),
        ),
        (
            r#"url = "${services.web.url}/health""#.to_owned(),
            format!(r#"url = "{health}/health""#),
        ),
    ] {
        assert_eq!(
            text.matches(&from).count(),
            1,
            "the example no longer has `{from}`: update this test's substitutions"
        );
        text = text.replace(&from, &to);
    }
    let path = dir.join("staging.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A fresh database on the local Postgres, its URL.
fn database(name: &str) -> String {
    let admin = "postgres://postgres@127.0.0.1:5432/test";
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        let ok = std::process::Command::new("psql")
            .args(["-qX", admin, "-c", &sql])
            .env("PGOPTIONS", "--client-min-messages=warning")
            .status()
            .unwrap()
            .success();
        assert!(ok, "{sql}");
    }
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

/// The app's health endpoint as the example expects it: `{"version": COMMIT}` on every GET.
fn health_server() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = format!(r#"{{"status":"ok","version":"{COMMIT}"}}"#);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// Runs the binary on the example copy with what CI would hold for it.
fn run_example(
    url: &str,
    path: &std::path::Path,
    dbs: &(String, String),
    args: &[&str],
) -> (i32, String) {
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("-f")
        .arg(path)
        .args(args)
        .env_remove("STAGING_ENV")
        .env_remove("RAILWAY_TOKEN")
        .env("RAILWAY_API_TOKEN", railway::TOKEN)
        .env("RAILWAY_API_URL", url)
        .env("STAGING_AUTH_JWT_SECRET_KEY", STAGING_JWT)
        .env("PRODUCTION_AUTH_JWT_SECRET_KEY", PRODUCTION_JWT)
        .env("STAGING_DATABASE_URL", &dbs.0)
        .env("PRODUCTION_DATABASE_URL", &dbs.1)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for canary in [STAGING_JWT, PRODUCTION_JWT, railway::TOKEN] {
        assert!(!all.contains(canary), "a secret in the output: {all}");
    }
    (out.status.code().unwrap_or(-1), all)
}

/// The stand-in in the example's project, laid out as the example says: one project, the
/// environments `staging` and `production`, the same services (`api`, `Postgres`) in both.
async fn example_stand_in(tag: &str) -> (railway::StandIn, (String, String)) {
    let mut s = railway::StandIn::start().await;
    s.reset_project(
        EXAMPLE_PROJECT,
        &["production", "staging"],
        &["api", "Postgres"],
    )
    .await;
    let pid = std::process::id();
    let dbs = (
        database(&format!("rw_example_{tag}_staging_{pid}")),
        database(&format!("rw_example_{tag}_production_{pid}")),
    );
    (s, dbs)
}

fn only_to(writes: &[(String, String, String)], environment: &str, out: &str) -> Vec<String> {
    for (mutation, env, service) in writes {
        assert_eq!(
            (env.as_str(), service.as_str()),
            (environment, "api"),
            "{mutation} wrote ({service}, {env}), not (api, {environment}): {out}"
        );
    }
    writes.iter().map(|w| w.0.clone()).collect()
}

/// Railway's usual layout is safe, and `examples/railway/staging.toml` runs on it: `up
/// --env staging` then `promote --to production` both exit 0; every write of `up` went to
/// the (api, staging) service instance and every write of `promote` to (api, production),
/// although both environments hold the same service id.
#[tokio::test]
async fn the_railway_example_stands_up_staging_and_promotes_to_production_in_one_project() {
    let (s, dbs) = example_stand_in("ok").await;
    let dir = tempfile::tempdir().unwrap();
    let path = example_copy(dir.path(), &health_server());

    let (code, out) = run_example(
        &s.url,
        &path,
        &dbs,
        &["up", "--env", "staging", "--commit", COMMIT],
    );
    assert_eq!(code, 0, "{out}");
    let up = s.writes().await;
    let kinds = only_to(&up, "staging", &out);
    assert!(
        kinds.contains(&"variableCollectionUpsert".to_owned()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"serviceInstanceDeployV2".to_owned()),
        "{kinds:?}"
    );
    assert_eq!(
        s.variables_of("staging", "api").await["ENVIRONMENT"],
        "staging"
    );

    let (code, out) = run_example(
        &s.url,
        &path,
        &dbs,
        &["promote", "--to", "production", "--commit", COMMIT],
    );
    assert_eq!(code, 0, "{out}");
    let promote = s.writes().await[up.len()..].to_vec();
    let kinds = only_to(&promote, "production", &out);
    assert!(
        kinds.contains(&"serviceInstanceDeployV2".to_owned()),
        "{kinds:?}"
    );
    assert_eq!(
        s.variables_of("production", "api").await["ENVIRONMENT"],
        "production"
    );
    assert_eq!(
        s.variables_of("staging", "api").await["ENVIRONMENT"],
        "staging",
        "promote changed staging"
    );
    s.assert_no_rejected().await;
}

/// A promote whose production deploy fails leaves production as it was: its variables
/// byte-equal to before (the value the run changed set back, the one it added removed), and
/// no rollback sent — the deploy live before never stopped serving, nothing to roll back.
#[tokio::test]
async fn a_failed_promote_on_railway_restores_productions_variables_and_sends_no_rollback() {
    let (s, dbs) = example_stand_in("fail").await;
    let dir = tempfile::tempdir().unwrap();
    let path = example_copy(dir.path(), &health_server());
    let (code, out) = run_example(
        &s.url,
        &path,
        &dbs,
        &["up", "--env", "staging", "--commit", COMMIT],
    );
    assert_eq!(code, 0, "{out}");

    // Production as its team left it: a value the promote changes, none of the others yet.
    s.set_variables(
        "production",
        "api",
        serde_json::json!({"PORT": "8080", "ENVIRONMENT": "prod-legacy", "SENTRY_DSN": "https://k@o1.ingest.sentry.io/1"}),
    )
    .await;
    let before = s.variables_of("production", "api").await;
    let live_before = s.state().await["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "SUCCESS")
        .count();
    let writes_before = s.writes().await.len();
    s.behaviour("api", "fail_build").await;

    let (code, out) = run_example(
        &s.url,
        &path,
        &dbs,
        &["promote", "--to", "production", "--commit", COMMIT],
    );
    assert_ne!(code, 0, "{out}");
    assert_eq!(
        s.variables_of("production", "api").await,
        before,
        "production's variables changed: {out}"
    );
    let during = s.writes().await[writes_before..].to_vec();
    let kinds = only_to(&during, "production", &out);
    // The run did write them (so the restore is what set them back: the changed value
    // written again, the added ones deleted) ...
    assert!(
        kinds.contains(&"variableCollectionUpsert".to_owned()),
        "{kinds:?}"
    );
    assert!(kinds.contains(&"variableDelete".to_owned()), "{kinds:?}");
    assert!(
        kinds.contains(&"serviceInstanceDeployV2".to_owned()),
        "{kinds:?}"
    );
    // ... and sent no rollback and no cancel to what it did not change.
    assert!(
        !kinds
            .iter()
            .any(|k| k == "deploymentRollback" || k == "deploymentCancel"),
        "{kinds:?}: {out}"
    );
    let live_after = s.state().await["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "SUCCESS")
        .count();
    assert_eq!(live_after, live_before, "{out}");
    assert!(out.contains("still serving"), "{out}");
    s.assert_no_rejected().await;
}

/// `staging up --env staging ARGS` on `path`, started (not waited for), its output going to
/// files in `dir`.
fn spawn_up(
    url: &str,
    path: &std::path::Path,
    dir: &std::path::Path,
    args: &[&str],
) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("staging"))
        .arg("-f")
        .arg(path)
        .args(["--env", "staging", "up", "--commit", COMMIT])
        .args(args)
        .env_remove("STAGING_ENV")
        .env_remove("RAILWAY_TOKEN")
        .env("RAILWAY_API_TOKEN", railway::TOKEN)
        .env("RAILWAY_API_URL", url)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .unwrap()
}

/// Waits (bounded) until the stand-in has executed mutation `mutation`, then 50 ms more, then
/// sends SIGTERM to `child`; returns its exit code and output once it exited (bounded).
async fn sigterm_after(
    s: &railway::StandIn,
    mutation: &str,
    mut child: std::process::Child,
    dir: &std::path::Path,
) -> (i32, String) {
    use std::time::{Duration, Instant};
    let started = Instant::now();
    while !s.mutations().await.iter().any(|m| m == mutation) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "staging exited ({status}) before sending {mutation}: {}{}",
                std::fs::read_to_string(dir.join("stdout")).unwrap(),
                std::fs::read_to_string(dir.join("stderr")).unwrap()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{mutation} never reached the stand-in"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if stopped.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("staging did not exit within 90s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let out = format!(
        "{}{}",
        std::fs::read_to_string(dir.join("stdout")).unwrap(),
        std::fs::read_to_string(dir.join("stderr")).unwrap()
    );
    assert!(
        !out.contains(railway::TOKEN),
        "the token in the output: {out}"
    );
    (status.code().unwrap_or(-1), out)
}

/// The deployments of (web, staging) of commit `COMMIT`, as the fake holds them.
async fn new_deployments(s: &railway::StandIn) -> Vec<serde_json::Value> {
    let state = s.state().await;
    let staging = state["environments"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, n)| n.as_str() == Some("staging"))
        .map(|(id, _)| id.clone())
        .unwrap();
    state["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["environmentId"] == staging.as_str() && d["meta"]["commitHash"] == COMMIT)
        .cloned()
        .collect()
}

/// Railway received the deploy mutation and started the deployment, but its answer (the
/// deployment's id) is held: SIGTERM 50 ms later stops `up --cancel-on-interrupt`, which
/// knew the request was sent, reads the deployment of its commit back from Railway and
/// cancels it. Exit 143, the output names the deployment canceled, and no deployment of the
/// commit is left queued, building or deploying.
#[tokio::test]
async fn sigterm_50ms_after_the_deploy_request_leaves_no_running_deployment() {
    let mut s = railway::StandIn::start().await;
    s.reset(&["production", "staging"], &["web"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, spec(&s.project_id, &dir.path().join("evidence"))).unwrap();
    // Railway executes the mutation at once; its answer leaves 30 s later.
    s.fault_on("DeployCommit", "hold", 1, 30).await;

    let child = spawn_up(&s.url, &path, dir.path(), &["--cancel-on-interrupt"]);
    let (code, out) = sigterm_after(&s, "serviceInstanceDeployV2", child, dir.path()).await;

    assert_eq!(code, 143, "{out}");
    let deployments = new_deployments(&s).await;
    assert_eq!(deployments.len(), 1, "one deployment was started: {out}");
    let d = &deployments[0];
    for running in ["QUEUED", "INITIALIZING", "BUILDING", "DEPLOYING", "WAITING"] {
        assert_ne!(d["status"], running, "left running: {d}\n{out}");
    }
    assert_eq!(d["status"], "REMOVED", "{d}\n{out}");
    assert!(
        s.mutations().await.contains(&"deploymentCancel".to_owned()),
        "{out}"
    );
    let id = d["id"].as_str().unwrap();
    assert!(
        out.contains(&format!("web: deploy {id} is canceled")),
        "the output says what was canceled: {out}"
    );
    assert!(
        out.contains("its answer had not arrived: found on the platform by its commit"),
        "{out}"
    );
    assert!(out.contains("interrupted by SIGTERM"), "{out}");
    s.assert_no_rejected().await;
}

/// The attack: SIGTERM while the write right before the deploy request (the variables) is
/// held: no deploy was requested, so nothing is read back, no cancel is sent and no
/// deployment exists.
#[tokio::test]
async fn sigterm_before_the_deploy_request_sends_no_cancel_and_creates_nothing() {
    let mut s = railway::StandIn::start().await;
    s.reset(&["production", "staging"], &["web"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, spec(&s.project_id, &dir.path().join("evidence"))).unwrap();
    s.fault_on("UpsertVariables", "hold", 1, 30).await;

    let child = spawn_up(&s.url, &path, dir.path(), &["--cancel-on-interrupt"]);
    let (code, out) = sigterm_after(&s, "variableCollectionUpsert", child, dir.path()).await;

    assert_eq!(code, 143, "{out}");
    assert_eq!(
        s.mutations().await,
        ["variableCollectionUpsert"],
        "only the variables were written: {out}"
    );
    assert!(new_deployments(&s).await.is_empty(), "{out}");
    assert!(!out.contains("cancel"), "{out}");
    s.assert_no_rejected().await;
}

/// Without `--cancel-on-interrupt` nothing is canceled, and the output says which deploy
/// may still be running on Railway (the one whose answer was held too) and how to cancel.
#[tokio::test]
async fn sigterm_without_cancel_on_interrupt_names_the_deploy_left_running() {
    let mut s = railway::StandIn::start().await;
    s.reset(&["production", "staging"], &["web"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, spec(&s.project_id, &dir.path().join("evidence"))).unwrap();
    s.fault_on("DeployCommit", "hold", 1, 30).await;

    let child = spawn_up(&s.url, &path, dir.path(), &[]);
    let (code, out) = sigterm_after(&s, "serviceInstanceDeployV2", child, dir.path()).await;

    assert_eq!(code, 143, "{out}");
    assert!(
        !s.mutations().await.contains(&"deploymentCancel".to_owned()),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "web: the deploy of {} (requested, its answer not in) may still be running on railway",
            &COMMIT[..12]
        )),
        "{out}"
    );
    assert!(out.contains("--cancel-on-interrupt"), "{out}");
    s.assert_no_rejected().await;
}
