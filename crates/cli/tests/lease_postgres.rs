//! The Postgres evidence store as the shared backend of many runs (issue 29), against a real
//! server (`STAGING_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`),
//! each test in a schema of its own: ten concurrent `up` hold the lease one at a time by
//! the lease log, a SIGKILLed holder's lease expires and SIGTERM releases it at once.

mod common;
#[path = "../../provider-render/tests/support/mod.rs"]
mod render;
#[path = "common/runs.rs"]
mod runs;

use std::time::SystemTime;

use common::staging_command;
use render::{Kind, stand_in};
use runs::*;
use secrecy::SecretString;
use staging_evidence::EvidenceStore;

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
