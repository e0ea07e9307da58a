//! Many pipelines at once (issue 29), with the real `staging` binary: the environment lease
//! against Render's own API description (`prism proxy --errors`) in front of the team's
//! stateful fake, and on local; the Postgres evidence store as the shared backend (a real
//! server, `STAGING_TEST_POSTGRES_URL`); evidence that a deploy injected during smoke cannot
//! fake; and commands that change an environment stopping cleanly on SIGTERM and SIGINT.
//!
//! A run is held inside its smoke step by a command probe that waits for a file the test
//! creates (`go`), so "while A holds the lease" is a state the test sets up, not a race it
//! hopes to win.

mod common;
#[path = "../../provider-render/tests/support/mod.rs"]
mod render;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::{run_staging, staging_command, text};
use render::{API_KEY, Kind, stand_in};
use secrecy::SecretString;
use staging_evidence::EvidenceStore;

const A: &str = "aaaaaaa1111111122222223333333444444455a1";
const B: &str = "bbbbbbb1111111122222223333333444444455b2";
const OTHER: &str = "ccccccc1111111122222223333333444444455c3";

/// A bound on every wait of these tests for a state to be reached: a hang guard far above
/// anything the runs need, not a timing assertion.
const HANG: Duration = Duration::from_secs(240);

fn render_env() -> Vec<(&'static str, String)> {
    vec![
        ("RENDER_API_KEY", API_KEY.to_owned()),
        ("RENDER_API_URL", stand_in().prism.url()),
    ]
}

fn pg_url() -> String {
    std::env::var("STAGING_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The probe that holds a run inside smoke until the test creates `go`, announcing itself
/// with `in-smoke-<commit>`.
const GATE: &str = r#"
[[probes]]
name = "gate"
timeout = "5m"
command = { run = ["sh", "-c", "touch in-smoke-${commit} && while [ ! -f go ]; do sleep 0.05; done"] }
"#;

/// A Render staging (and production) environment of one worker service, with the gate.
fn render_spec(dir: &Path, staging_id: &str, production_id: &str, project_extra: &str) {
    std::fs::write(
        dir.join("staging.toml"),
        format!(
            r#"[project]
name = "lease"
{project_extra}

[environments.staging]
provider = "render"
promotes_to = "production"
deploy_timeout = "2m"

[environments.production]
provider = "render"
protected = true
deploy_timeout = "2m"

[services.worker]
http = false
settings = {{ service_id = "{staging_id}" }}
overrides.production = {{ service_id = "{production_id}" }}

[vars.RELEASE]
value = "${{commit}}"
{GATE}"#
        ),
    )
    .unwrap();
}

/// A running `staging` whose stdout and stderr are collected as they come.
struct Bg {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Bg {
    fn start(mut cmd: std::process::Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Bg { child, output }
    }

    fn text(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Wait for the exit code (a hang guard kills it after [`HANG`]).
    fn finish(mut self) -> (Option<i32>, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The readers get the last bytes once the pipes close.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.text());
            }
            if started.elapsed() > HANG {
                let _ = self.child.kill();
                panic!("staging did not end: {}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }
}

/// Wait until `ready` holds, failing with `what` after [`HANG`].
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < HANG, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn render_command(dir: &Path, args: &[&str], extra: &[(&str, String)]) -> std::process::Command {
    let mut env = render_env();
    env.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    staging_command(dir, args, &env)
}

fn render_run(dir: &Path, args: &[&str]) -> std::process::Output {
    let env = render_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_staging(dir, args, &env)
}

/// The requests of `requests` that mention `text`.
fn mentioning(requests: &[String], text: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.contains(text))
        .cloned()
        .collect()
}

/// Index of the first and last request of `requests` that mentions `text`.
fn span(requests: &[String], text: &str) -> Option<(usize, usize)> {
    let first = requests.iter().position(|r| r.contains(text))?;
    let last = requests.iter().rposition(|r| r.contains(text))?;
    Some((first, last))
}

/// Whether process `pid` runs (a zombie has ended: it only waits to be reaped).
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| !matches!(state, "Z" | "X")),
        Err(_) => false,
    }
}

#[test]
fn two_ups_of_different_commits_started_together_on_render_one_runs_the_other_exits_3_naming_it() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-pair-staging", Kind::Worker);
    let prod = fake.add_service("lease-pair-production", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let a = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A],
        &[],
    ));
    let b = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", B],
        &[],
    ));
    // One of them takes the lease and waits in smoke; the other cannot take it.
    wait_for("a run in smoke, the other ended", || {
        (dir.path().join(format!("in-smoke-{A}")).exists()
            || dir.path().join(format!("in-smoke-{B}")).exists())
            && (a.text().contains("is busy") || b.text().contains("is busy"))
    });
    let (winner, winner_commit, loser, loser_commit) = if a.text().contains("is busy") {
        (b, B, a, A)
    } else {
        (a, A, b, B)
    };
    let (code, out) = loser.finish();
    assert_eq!(code, Some(3), "{out}");
    for part in [
        format!("`up` of commit {}", &winner_commit[..12]),
        format!("on host {}", staging_evidence::lease::this_host()),
        " since ".to_owned(),
        "run ".to_owned(),
        "--wait-lock".to_owned(),
    ] {
        assert!(out.contains(&part), "{part} missing: {out}");
    }
    // The loser wrote nothing: no request about the service carries its commit.
    assert_eq!(
        mentioning(&fake.requests_for(&id), loser_commit),
        Vec::<String>::new()
    );

    std::fs::write(dir.path().join("go"), "").unwrap();
    let (code, out) = winner.finish();
    assert_eq!(code, Some(0), "{out}");
    let deploys: Vec<String> = fake
        .requests_for(&id)
        .into_iter()
        .filter(|r| r.starts_with("POST ") && r.contains("/deploys"))
        .collect();
    assert_eq!(deploys.len(), 1, "{deploys:?}");
    assert!(deploys[0].contains(winner_commit), "{deploys:?}");
    // Released: the next run goes ahead at once.
    let out = render_run(
        dir.path(),
        &["lock", "status", "--env", "staging", "--json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["lease"], serde_json::Value::Null, "{doc}");
}

#[test]
fn with_wait_lock_two_ups_on_render_complete_in_turn_and_their_writes_never_interleave() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-turns-staging", Kind::Worker);
    let prod = fake.add_service("lease-turns-production", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let a = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A, "--wait-lock", "5m"],
        &[],
    ));
    wait_for("A in smoke", || {
        dir.path().join(format!("in-smoke-{A}")).exists()
    });
    let b = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", B, "--wait-lock", "5m"],
        &[],
    ));
    wait_for("B waiting for A's lease", || {
        b.text().contains("waiting up to 5m")
    });
    assert!(
        b.text().contains(&A[..12]),
        "B names the holder: {}",
        b.text()
    );
    // While A holds the environment, B has not written anything to it.
    assert_eq!(mentioning(&fake.requests_for(&id), B), Vec::<String>::new());
    let out = render_run(dir.path(), &["lock", "status", "--env", "staging"]);
    assert!(text(&out).contains(&A[..12]), "{}", text(&out));

    std::fs::write(dir.path().join("go"), "").unwrap();
    let (code, out) = a.finish();
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = b.finish();
    assert_eq!(code, Some(0), "{out}");

    // Each run's writes (its RELEASE variable, its deploy) form one block, A's before B's.
    let requests = fake.requests_for(&id);
    let (a_first, a_last) = span(&requests, A).expect("A wrote");
    let (b_first, b_last) = span(&requests, B).expect("B wrote");
    assert!(
        a_first <= a_last && a_last < b_first && b_first <= b_last,
        "{requests:#?}"
    );
    let writes: Vec<&String> = requests.iter().filter(|r| !r.starts_with("GET ")).collect();
    assert!(
        writes.len() >= 4,
        "variables and deploys of both: {writes:#?}"
    );
    assert_eq!(fake.live_commit(&id).as_deref(), Some(B));
}

#[test]
fn a_run_waiting_for_the_lease_stops_on_sigterm_without_taking_it() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-waitsig-staging", Kind::Worker);
    let prod = fake.add_service("lease-waitsig-production", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let a = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A],
        &[],
    ));
    wait_for("A in smoke", || {
        dir.path().join(format!("in-smoke-{A}")).exists()
    });
    let b = Bg::start(render_command(
        dir.path(),
        &[
            "up",
            "--env",
            "staging",
            "--commit",
            B,
            "--wait-lock",
            "10m",
        ],
        &[],
    ));
    wait_for("B waiting", || b.text().contains("waiting up to 10m"));
    b.signal(nix::sys::signal::Signal::SIGTERM);
    let (code, out) = b.finish();
    assert_eq!(code, Some(143), "{out}");
    assert_eq!(mentioning(&fake.requests_for(&id), B), Vec::<String>::new());
    // A still holds it, untouched.
    let out = render_run(
        dir.path(),
        &["lock", "status", "--env", "staging", "--json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["lease"]["commit"], A, "{doc}");
    std::fs::write(dir.path().join("go"), "").unwrap();
    let (code, out) = a.finish();
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn lease_options_that_are_no_durations_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), "srv-none", "srv-none2", "");
    for args in [
        vec![
            "up",
            "--env",
            "staging",
            "--commit",
            A,
            "--wait-lock",
            "5 minutes please",
        ],
        vec![
            "up",
            "--env",
            "staging",
            "--commit",
            A,
            "--lease-ttl",
            "-1s",
        ],
        vec!["up", "--env", "staging", "--commit", A, "--lease-ttl", "0s"],
    ] {
        let out = render_run(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
}

#[test]
fn a_deploy_of_another_commit_during_smoke_fails_the_run_and_the_gate_refuses_the_commit() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-inject-staging", Kind::Worker);
    let prod = fake.add_service("lease-inject-production", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let a = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A, "--json"],
        &[],
    ));
    wait_for("A in smoke", || {
        dir.path().join(format!("in-smoke-{A}")).exists()
    });
    // Another deploy goes live (a dashboard click, a push's auto-deploy) while A's probes run.
    let injected = fake.add_live_deploy(&id, OTHER);
    std::fs::write(dir.path().join("go"), "").unwrap();
    let (code, out) = a.finish();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("another deploy replaced"), "{out}");
    assert!(out.contains(&injected), "names the deploy now live: {out}");
    assert!(out.contains(&OTHER[..12]), "names its commit: {out}");

    // The record says the run failed, and which deploy it had verified.
    let out = render_run(
        dir.path(),
        &["evidence", "list", "--env", "staging", "--json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{doc}");
    assert_eq!(runs[0]["ok"], false, "{doc}");
    assert_eq!(runs[0]["failed_step"], "reverify", "{doc}");
    let shown = render_run(
        dir.path(),
        &[
            "evidence",
            "show",
            runs[0]["id"].as_str().unwrap(),
            "--json",
        ],
    );
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let verified = shown["evidence"]["deploys"]["worker"]
        .as_str()
        .unwrap_or_else(|| panic!("no deploy ids recorded: {shown}"));
    assert!(
        verified.starts_with("dep-") && verified != injected,
        "the record names the deploy the run verified, not the one injected: {shown}"
    );

    let out = render_run(
        dir.path(),
        &["promote", "--to", "production", "--commit", A],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("REFUSED") && all.contains("reverify"), "{all}");
    let deploys: Vec<String> = fake
        .requests_for(&prod)
        .into_iter()
        .filter(|r| r.starts_with("POST "))
        .collect();
    assert_eq!(deploys, Vec::<String>::new(), "production was not touched");
}

#[test]
fn plan_status_diff_and_logs_run_while_another_run_holds_the_lease() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-readers-staging", Kind::Worker);
    let prod = fake.add_service("lease-readers-production", Kind::Worker);
    fake.add_live_deploy(&prod, OTHER);
    fake.set_logs(&id, &["hello from the worker"]);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let a = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A],
        &[],
    ));
    wait_for("A in smoke", || {
        dir.path().join(format!("in-smoke-{A}")).exists()
    });
    for args in [
        vec!["plan", "--env", "staging", "--commit", B],
        vec!["status", "--env", "staging"],
        vec!["diff", "staging", "production"],
        vec!["logs", "--env", "staging", "--service", "worker"],
        vec!["lock", "status", "--env", "staging"],
    ] {
        let out = render_run(dir.path(), &args);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {all}");
        assert!(!all.contains("is busy"), "{args:?}: {all}");
    }
    // Every command that changes the environment, though, is refused at once, naming A.
    for args in [
        vec!["up", "--env", "staging", "--commit", B],
        vec!["secrets", "sync", "--env", "staging", "--apply"],
        vec!["secrets", "rotate", "RELEASE", "--env", "staging"],
        vec!["migrate", "apply", "--env", "staging"],
        vec!["migrate", "reset", "--env", "staging"],
        vec!["rollback", "--env", "staging"],
    ] {
        let out = render_run(dir.path(), &args);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {all}");
        assert!(
            all.contains("is busy") && all.contains(&A[..12]),
            "{args:?}: {all}"
        );
    }
    // With --json, the envelope names the kind.
    let out = render_run(
        dir.path(),
        &["up", "--env", "staging", "--commit", B, "--json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "locked", "{doc}");
    // Their dry runs only read: they go ahead.
    for args in [
        vec!["secrets", "sync", "--env", "staging"],
        vec!["migrate", "apply", "--env", "staging", "--dry-run"],
    ] {
        let out = render_run(dir.path(), &args);
        assert!(!text(&out).contains("is busy"), "{args:?}: {}", text(&out));
    }
    std::fs::write(dir.path().join("go"), "").unwrap();
    let (code, out) = a.finish();
    assert_eq!(code, Some(0), "{out}");
}

/// Local services for the lease tests: a Python server answering its commit.
fn local_workspace(project_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.py"), common::SERVER).unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        format!(
            r#"[project]
name = "lease-local"
{project_extra}

[environments.staging]
provider = "local"
deploy_timeout = "60s"

[services.web]
health_path = "/up"
settings = {{ command = ["python3", "server.py"], stop_timeout = "2s" }}
{GATE}"#
        ),
    )
    .unwrap();
    dir
}

#[test]
fn two_ups_started_together_on_local_one_runs_the_other_exits_3_naming_it() {
    let dir = local_workspace("");
    let a = Bg::start(staging_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A],
        &[],
    ));
    let b = Bg::start(staging_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", B],
        &[],
    ));
    wait_for("one run busy", || {
        a.text().contains("is busy") || b.text().contains("is busy")
    });
    let (winner, winner_commit, loser) = if a.text().contains("is busy") {
        (b, B, a)
    } else {
        (a, A, b)
    };
    let (code, out) = loser.finish();
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains(&format!("`up` of commit {}", &winner_commit[..12])),
        "{out}"
    );
    std::fs::write(dir.path().join("go"), "").unwrap();
    let (code, out) = winner.finish();
    assert_eq!(code, Some(0), "{out}");
    // Only the winner's run is on record.
    let out = staging_command(
        dir.path(),
        &["evidence", "list", "--env", "staging", "--json"],
        &[],
    )
    .output()
    .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{doc}");
    assert_eq!(runs[0]["commit"], winner_commit, "{doc}");
    assert_eq!(runs[0]["ok"], true, "{doc}");
}

/// A schema of its own in the test database, dropped at the end.
struct PgSchema(String);

impl PgSchema {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        PgSchema(format!("lease_cli_{tag}_{}_{nanos}", std::process::id()))
    }

    fn project_lines(&self) -> String {
        format!(
            "evidence_postgres_url = {{ env = \"EVIDENCE_DATABASE_URL\" }}\nevidence_table = \"{}.runs\"",
            self.0
        )
    }

    fn store(&self) -> staging_evidence::PgStore {
        runtime()
            .block_on(staging_evidence::PgStore::connect(
                &SecretString::from(pg_url()),
                Some(&format!("{}.runs", self.0)),
            ))
            .unwrap()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.0.clone();
        runtime().block_on(async move {
            if let Ok(c) = staging_postgres::connect(&SecretString::from(pg_url())).await {
                let _ = c
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .await;
            }
        });
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn pg_env() -> Vec<(&'static str, String)> {
    vec![("EVIDENCE_DATABASE_URL", pg_url())]
}

/// The lease log of `env` must alternate `acquired` by a run and that run's end.
fn assert_one_holder_at_a_time(log: &[staging_evidence::LeaseEvent]) {
    let mut holder: Option<&str> = None;
    for e in log {
        match (e.event.as_str(), holder) {
            ("acquired", None) => holder = Some(&e.run_id),
            ("released" | "expired" | "forced", Some(h)) if h == e.run_id => holder = None,
            _ => panic!("two holders at once at event {}: {log:#?}", e.id),
        }
    }
}

#[test]
fn ten_concurrent_ups_on_the_postgres_store_hold_the_lease_one_at_a_time_and_all_record() {
    let schema = PgSchema::new("ten");
    let dir = local_workspace(&schema.project_lines());
    std::fs::write(dir.path().join("go"), "").unwrap();
    let env = pg_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let commits: Vec<String> = (0..10).map(|i| format!("{i:x}").repeat(40)).collect();
    let runs: Vec<Bg> = commits
        .iter()
        .map(|c| {
            Bg::start(staging_command(
                dir.path(),
                &["up", "--env", "staging", "--commit", c, "--wait-lock", "5m"],
                &env,
            ))
        })
        .collect();
    for run in runs {
        let (code, out) = run.finish();
        assert_eq!(code, Some(0), "{out}");
    }
    let store = schema.store();
    let log = runtime()
        .block_on(store.lease_log("lease-local", "staging"))
        .unwrap();
    assert_eq!(log.len(), 20, "{log:#?}");
    assert_one_holder_at_a_time(&log);
    let listing = runtime()
        .block_on(store.list(&staging_evidence::EvidenceFilter::new().environment("staging")))
        .unwrap();
    assert_eq!(listing.entries.len(), 10, "no run's evidence is lost");
    assert!(listing.entries.iter().all(|e| e.intact && e.evidence.ok));
    assert!(listing.unreadable.is_empty());
    let mut recorded: Vec<String> = listing
        .entries
        .iter()
        .map(|e| e.evidence.commit.clone())
        .collect();
    recorded.sort();
    assert_eq!(recorded, commits);
}

#[test]
fn a_holder_killed_by_sigkill_keeps_the_lease_until_it_expires_and_sigterm_releases_it_at_once() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-kill-staging", Kind::Worker);
    let prod = fake.add_service("lease-kill-production", Kind::Worker);
    let schema = PgSchema::new("kill");
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, &schema.project_lines());
    let extra = pg_env();

    // SIGKILL: nothing releases the lease; it expires after its time to live, and the
    // next run (waiting for it) then takes it over.
    let killed = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A, "--lease-ttl", "4s"],
        &extra,
    ));
    wait_for("A in smoke", || {
        dir.path().join(format!("in-smoke-{A}")).exists()
    });
    killed.signal(nix::sys::signal::Signal::SIGKILL);
    let (code, _) = killed.finish();
    assert_eq!(code, None, "killed by a signal");
    std::fs::write(dir.path().join("go"), "").unwrap();
    let next = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", B, "--wait-lock", "2m"],
        &extra,
    ));
    let (code, out) = next.finish();
    assert_eq!(code, Some(0), "{out}");
    let store = schema.store();
    let log = runtime()
        .block_on(store.lease_log("lease", "staging"))
        .unwrap();
    let events: Vec<(&str, Option<&str>)> = log
        .iter()
        .map(|e| (e.event.as_str(), e.commit.as_deref()))
        .collect();
    assert_eq!(
        events,
        vec![
            ("acquired", Some(A)),
            ("expired", Some(A)),
            ("acquired", Some(B)),
            ("released", Some(B)),
        ],
        "{log:#?}"
    );
    assert_one_holder_at_a_time(&log);

    // SIGTERM: the run stops and releases the lease on its way out; with a time to live of
    // ten minutes, the next run going ahead at once shows it was released, not expired.
    std::fs::remove_file(dir.path().join("go")).unwrap();
    std::fs::remove_file(dir.path().join(format!("in-smoke-{A}"))).unwrap();
    let termed = Bg::start(render_command(
        dir.path(),
        &[
            "up",
            "--env",
            "staging",
            "--commit",
            A,
            "--lease-ttl",
            "10m",
        ],
        &extra,
    ));
    wait_for("A in smoke again", || {
        log_len(&store) == 5 && dir.path().join(format!("in-smoke-{A}")).exists()
    });
    termed.signal(nix::sys::signal::Signal::SIGTERM);
    let (code, out) = termed.finish();
    assert_eq!(code, Some(143), "{out}");
    let out = render_command(
        dir.path(),
        &["lock", "status", "--env", "staging", "--json"],
        &extra,
    )
    .output()
    .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["lease"], serde_json::Value::Null, "{doc}");
    let log = runtime()
        .block_on(store.lease_log("lease", "staging"))
        .unwrap();
    assert_eq!(log.last().unwrap().event, "released", "{log:#?}");
    assert_one_holder_at_a_time(&log);
}

fn log_len(store: &staging_evidence::PgStore) -> usize {
    runtime()
        .block_on(store.lease_log("lease", "staging"))
        .map(|l| l.len())
        .unwrap_or_default()
}

#[test]
fn on_the_directory_store_a_holder_killed_by_sigkill_is_taken_over_at_once() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-dirkill-staging", Kind::Worker);
    let prod = fake.add_service("lease-dirkill-production", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let killed = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A],
        &[],
    ));
    wait_for("A in smoke", || {
        dir.path().join(format!("in-smoke-{A}")).exists()
    });
    killed.signal(nix::sys::signal::Signal::SIGKILL);
    let (code, _) = killed.finish();
    assert_eq!(code, None);
    // Its process is gone from this host: the lock is stale at once, an hour of TTL or not.
    let out = render_run(dir.path(), &["lock", "status", "--env", "staging"]);
    assert!(text(&out).contains("stale"), "{}", text(&out));
    std::fs::write(dir.path().join("go"), "").unwrap();
    let out = render_run(dir.path(), &["up", "--env", "staging", "--commit", B]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn lock_release_force_frees_the_environment_records_it_and_the_holder_stops() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-force-staging", Kind::Worker);
    let prod = fake.add_service("lease-force-production", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let held = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A, "--lease-ttl", "2s"],
        &[],
    ));
    wait_for("A in smoke", || {
        dir.path().join(format!("in-smoke-{A}")).exists()
    });
    let out = render_run(dir.path(), &["lock", "release", "--env", "staging"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "without --force: {}",
        text(&out)
    );
    let out = render_run(
        dir.path(),
        &["lock", "release", "--force", "--env", "staging"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(&A[..12]), "{}", text(&out));
    // The holder finds out at its next renewal and stops: exit 3, nothing recorded as passed.
    let (code, out) = held.finish();
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("no longer this run's"), "{out}");
    let out = render_run(
        dir.path(),
        &["evidence", "list", "--env", "staging", "--json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "only the forced release is on record: {doc}");
    assert_eq!(runs[0]["failed_step"], "lock", "{doc}");
    assert_eq!(runs[0]["commit"], A, "{doc}");
}

/// A workspace whose staging database's migrations are a command that starts a child of
/// its own and writes to a file every 50 ms, announcing both pids in `pids`.
fn migrating_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        r#"[project]
name = "lease-migrate"

[environments.staging]
provider = "local"
secrets = { dotenv = "staging.env" }

[vars.DATABASE_URL]
secret = true

[databases.main]
url_var = "DATABASE_URL"
migrations = { command = ["sh", "migrate.sh"] }
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        format!(
            "DATABASE_URL=sqlite://{}\n",
            dir.path().join("app.db").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("migrate.sh"),
        "sleep 300 &\necho $$ $! > pids.tmp && mv pids.tmp pids\nwhile :; do echo write >> writes; sleep 0.05; done\n",
    )
    .unwrap();
    dir
}

/// Stop `staging ARGS` with `sig` once its child processes announced themselves in `pids`;
/// then no process it started runs, and nothing is written after its exit.
fn stopped_leaves_nothing_running(
    dir: &Path,
    args: &[&str],
    env: &[(&str, String)],
    sig: nix::sys::signal::Signal,
    pids_file: PathBuf,
    writes_file: Option<PathBuf>,
) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = Bg::start(staging_command(dir, args, &env));
    wait_for("the child processes started", || pids_file.exists());
    if let Some(w) = &writes_file {
        wait_for("the first write", || w.exists());
    }
    run.signal(sig);
    let (code, out) = run.finish();
    let expected = if sig == nix::sys::signal::Signal::SIGINT {
        130
    } else {
        143
    };
    assert_eq!(code, Some(expected), "{out}");
    assert!(out.contains("interrupted by"), "{out}");
    let pids: Vec<i32> = std::fs::read_to_string(&pids_file)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(!pids.is_empty());
    for pid in &pids {
        assert!(
            !running(*pid),
            "process {pid} still runs after the exit: {out}"
        );
    }
    if let Some(w) = writes_file {
        let size = std::fs::metadata(&w).unwrap().len();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            std::fs::metadata(&w).unwrap().len(),
            size,
            "written after the exit"
        );
    }
}

#[test]
fn sigterm_and_sigint_to_migrate_apply_stop_the_migration_command_and_its_children() {
    for sig in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let dir = migrating_workspace();
        stopped_leaves_nothing_running(
            dir.path(),
            &["migrate", "apply", "--env", "staging"],
            &[],
            sig,
            dir.path().join("pids"),
            Some(dir.path().join("writes")),
        );
        // And the lease went with it.
        let out = run_staging(
            dir.path(),
            &["lock", "status", "--env", "staging", "--json"],
            &[],
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["lease"], serde_json::Value::Null, "{doc}");
    }
}

#[test]
fn sigterm_and_sigint_to_refresh_stop_pg_dump_and_its_children() {
    for sig in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let pids = dir.path().join("pids");
        let writes = dir.path().join("writes");
        // Stand-ins for the PostgreSQL client tools: a dump that runs until stopped.
        let dump = format!(
            "#!/bin/sh\nsleep 300 &\necho $$ $! > {p}.tmp && mv {p}.tmp {p}\nwhile :; do echo dump >> {w}; sleep 0.05; done\n",
            p = pids.display(),
            w = writes.display()
        );
        for tool in ["pg_dump", "pg_restore"] {
            let path = bin.join(tool);
            std::fs::write(&path, &dump).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(
            dir.path().join("staging.toml"),
            r#"[project]
name = "lease-refresh"

[environments.staging]
provider = "local"
promotes_to = "production"
secrets = { dotenv = "staging.env" }

[environments.production]
provider = "local"
protected = true
secrets = { dotenv = "production.env" }

[vars.DATABASE_URL]
secret = true

[databases.main]
url_var = "DATABASE_URL"
"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("staging.env"),
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/lease_refresh_staging\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("production.env"),
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/lease_refresh_production\n",
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        stopped_leaves_nothing_running(
            dir.path(),
            &["refresh", "--env", "staging"],
            &[("PATH", path)],
            sig,
            pids,
            Some(writes),
        );
    }
}

#[test]
fn sigterm_and_sigint_to_secrets_sync_and_check_stop_the_store_command_and_write_nothing() {
    let cases = [
        ("sync", nix::sys::signal::Signal::SIGTERM),
        ("sync", nix::sys::signal::Signal::SIGINT),
        // A read-only command too: the store's command is in a group of its own, which a
        // terminal's Ctrl-C does not reach, so `staging` stops it.
        ("check", nix::sys::signal::Signal::SIGINT),
    ];
    for (n, (command, sig)) in cases.into_iter().enumerate() {
        let fake = &stand_in().fake;
        let id = fake.add_service(&format!("lease-sync-{n}"), Kind::Worker);
        let prod = fake.add_service(&format!("lease-sync-prod-{n}"), Kind::Worker);
        let dir = tempfile::tempdir().unwrap();
        render_spec(dir.path(), &id, &prod, "");
        // A secret read by a command that hangs (a vault CLI waiting on the network).
        let mut spec = std::fs::read_to_string(dir.path().join("staging.toml")).unwrap();
        spec.push_str(
            "\n[vars.API_TOKEN]\nsecret = true\nsource = { command = [\"sh\", \"vault.sh\"] }\n",
        );
        std::fs::write(dir.path().join("staging.toml"), spec).unwrap();
        std::fs::write(
            dir.path().join("vault.sh"),
            "sleep 300 &\necho $$ $! > pids.tmp && mv pids.tmp pids\nwait\n",
        )
        .unwrap();
        let before = fake.requests_for(&id).len();
        let args: &[&str] = if command == "sync" {
            &["secrets", "sync", "--env", "staging", "--apply"]
        } else {
            &["secrets", "check", "--env", "staging"]
        };
        stopped_leaves_nothing_running(
            dir.path(),
            args,
            &render_env(),
            sig,
            dir.path().join("pids"),
            None,
        );
        std::thread::sleep(Duration::from_millis(300));
        let writes: Vec<String> = fake.requests_for(&id)[before..]
            .iter()
            .filter(|r| !r.starts_with("GET "))
            .cloned()
            .collect();
        assert_eq!(writes, Vec::<String>::new(), "nothing written");
    }
}
