//! A runner killed with SIGKILL in the middle of a migration, then a clean rerun.
//!
//! The test re-invokes its own binary as the child runner (`child_runner_for_kill_test`,
//! which does nothing unless `STAGING_MIGRATE_CHILD_DIR` is set). The "slow" migration
//! blocks on an advisory lock the test holds, so the test knows — without timing — that the
//! child is inside the migration's transaction when it kills it.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{PgSchema, write};
use secrecy::SecretString;
use staging_core::{Migration, MigrationState};
use staging_migrate::native::SqlMigrator;

const CHILD_DIR: &str = "STAGING_MIGRATE_CHILD_DIR";
const CHILD_URL: &str = "STAGING_MIGRATE_CHILD_URL";

#[tokio::test]
async fn child_runner_for_kill_test() {
    let (Ok(dir), Ok(url)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_URL)) else {
        return; // Not the child: nothing to do.
    };
    let m = SqlMigrator::new(SecretString::from(url), dir).unwrap();
    m.apply().await.unwrap();
}

async fn poll<F, Fut>(what: &str, mut f: F) -> i64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<i64>>,
{
    // A safety net so a broken run fails instead of hanging; not a timed assertion.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn runner_killed_mid_migration_leaves_nothing_half_applied_and_a_rerun_finishes_cleanly() {
    let db = PgSchema::new("kill").await;
    let dir = tempfile::tempdir().unwrap();
    let gate: i64 = 0x5EED_0000 + i64::from(std::process::id());
    write(
        dir.path(),
        &[
            ("1_first.sql", "CREATE TABLE first (id int);"),
            (
                "2_slow.sql",
                &format!(
                    "CREATE TABLE before_gate (id int);\nSELECT pg_sleep(0.01), pg_advisory_xact_lock({gate});\nCREATE TABLE after_gate (id int);\n"
                ),
            ),
            ("3_last.sql", "CREATE TABLE last (id int);"),
        ],
    );

    // Hold the gate so the child stops inside migration 2.
    let gate_conn = db.connect().await;
    gate_conn
        .execute("SELECT pg_advisory_lock($1)", &[&gate])
        .await
        .unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_runner_for_kill_test",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .env(CHILD_URL, db.url_with_password(None))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    // The child's backend, waiting for the gate inside migration 2's transaction.
    let backend = poll("the child to block inside migration 2", || {
        let db = &db;
        async move {
            let c = db.connect().await;
            c.query_opt(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock(' || $1::text || ')%' AND pid <> pg_backend_pid()",
                &[&gate.to_string()],
            )
            .await
            .unwrap()
            .map(|row| i64::from(row.get::<_, i32>(0)))
        }
    })
    .await;

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // The server notices the dead client and ends its backend, rolling back.
    poll("the killed runner's backend to end", || {
        let db = &db;
        async move {
            let c = db.connect().await;
            let alive: i64 = c
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    &[&(backend as i32)],
                )
                .await
                .unwrap()
                .get(0);
            (alive == 0).then_some(0)
        }
    })
    .await;
    assert!(
        db.table_exists("first").await,
        "migration 1 committed before the kill"
    );
    assert!(
        !db.table_exists("before_gate").await,
        "migration 2 was rolled back, not half applied"
    );
    let m = SqlMigrator::new(db.url(), dir.path()).unwrap();
    let status = m.status().await.unwrap();
    assert_eq!(status.versions(MigrationState::Applied), vec!["1"]);
    assert_eq!(status.versions(MigrationState::Pending), vec!["2", "3"]);

    // Open the gate and rerun: the rest applies, each once.
    gate_conn
        .execute("SELECT pg_advisory_unlock($1)", &[&gate])
        .await
        .unwrap();
    let report = m.apply().await.unwrap();
    assert_eq!(
        report
            .applied
            .iter()
            .map(|a| a.version.as_str())
            .collect::<Vec<_>>(),
        vec!["2", "3"]
    );
    for t in ["before_gate", "after_gate", "last"] {
        assert!(db.table_exists(t).await, "{t}");
    }
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM staging_migrations")
            .await,
        3
    );
}
