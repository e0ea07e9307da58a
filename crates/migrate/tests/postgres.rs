//! The native runner against a real Postgres (one schema per test).

mod common;

use std::sync::Arc;

use common::{PgSchema, write};
use sha2::{Digest, Sha256};
use staging_core::{Migration, MigrationState};
use staging_migrate::native::SqlMigrator;

fn states(s: &staging_core::MigrationStatus) -> Vec<(String, MigrationState)> {
    s.entries
        .iter()
        .map(|e| (e.version.clone(), e.state))
        .collect()
}

#[tokio::test]
async fn applies_in_numeric_version_order_and_records_metadata() {
    let db = PgSchema::new("order").await;
    let dir = tempfile::tempdir().unwrap();
    // 10 sorts before 2 as text; each file depends on the one before it.
    write(
        dir.path(),
        &[
            ("10_c.sql", "ALTER TABLE b ADD COLUMN c int;"),
            ("2_b.sql", "CREATE TABLE b (a_id int REFERENCES a (id));"),
            ("1_a.sql", "CREATE TABLE a (id int PRIMARY KEY);"),
            ("1_a.down.sql", "DROP TABLE a;"),
            ("notes.txt", "not a migration"),
        ],
    );
    let m = SqlMigrator::new(db.url(), dir.path()).unwrap();
    let report = m.apply().await.unwrap();
    let applied: Vec<&str> = report.applied.iter().map(|a| a.version.as_str()).collect();
    assert_eq!(applied, vec!["1", "2", "10"]);

    let history = m.history().await.unwrap();
    assert_eq!(history.len(), 3);
    let want = hex::encode(Sha256::digest(b"CREATE TABLE a (id int PRIMARY KEY);"));
    assert_eq!(history[0].checksum, want);
    assert!(
        history[0].applied_by.starts_with("staging-migrate "),
        "{}",
        history[0].applied_by
    );
    assert!(history[0].applied_by.contains(" on "));
    assert!(history[0].applied_at.ends_with('Z'));
    assert!(history.iter().all(|h| h.duration_ms >= 0));

    let status = m.status().await.unwrap();
    assert!(
        status
            .entries
            .iter()
            .all(|e| e.state == MigrationState::Applied)
    );
    assert!(
        m.apply().await.unwrap().applied.is_empty(),
        "a second run applies nothing"
    );
}

#[tokio::test]
async fn dry_run_plan_lists_pending_and_changes_nothing() {
    let db = PgSchema::new("plan").await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("1_a.sql", "CREATE TABLE a (id int);"),
            ("2_b.sql", "CREATE TABLE b (id int);"),
        ],
    );
    let m = SqlMigrator::new(db.url(), dir.path()).unwrap();
    let plan = m.plan().await.unwrap();
    assert_eq!(
        plan.to_apply
            .iter()
            .map(|e| e.version.as_str())
            .collect::<Vec<_>>(),
        vec!["1", "2"]
    );
    assert!(
        !db.table_exists("staging_migrations").await,
        "plan must not create the metadata table"
    );
    assert!(!db.table_exists("a").await);
}

#[tokio::test]
async fn modified_file_is_reported_and_blocks_apply_until_drift_is_allowed() {
    let db = PgSchema::new("drift").await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("1_a.sql", "CREATE TABLE a (id int);")]);
    let m = SqlMigrator::new(db.url(), dir.path()).unwrap();
    m.apply().await.unwrap();
    write(
        dir.path(),
        &[
            ("1_a.sql", "CREATE TABLE a (id bigint);"),
            ("2_b.sql", "CREATE TABLE b (id int);"),
        ],
    );

    let status = m.status().await.unwrap();
    assert_eq!(
        states(&status),
        vec![
            ("1".into(), MigrationState::Modified),
            ("2".into(), MigrationState::Pending)
        ]
    );
    let err = m.apply().await.unwrap_err().to_string();
    assert!(
        err.contains("modified since applied")
            && err.contains("1_a")
            && err.contains("--allow-drift"),
        "{err}"
    );
    assert!(
        m.plan().await.is_err(),
        "the dry run refuses as apply would"
    );
    assert!(
        !db.table_exists("b").await,
        "nothing applied while refusing"
    );

    let report = m.clone().allow_drift(true).apply().await.unwrap();
    assert_eq!(report.applied.len(), 1);
    assert!(
        report.warnings.iter().any(|w| w.contains("1_a")),
        "{:?}",
        report.warnings
    );
    assert!(db.table_exists("b").await);
}

#[tokio::test]
async fn missing_file_is_reported_and_blocks_apply() {
    let db = PgSchema::new("missing").await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("1_a.sql", "CREATE TABLE a (id int);"),
            ("2_b.sql", "CREATE TABLE b (id int);"),
        ],
    );
    let m = SqlMigrator::new(db.url(), dir.path()).unwrap();
    m.apply().await.unwrap();
    std::fs::remove_file(dir.path().join("2_b.sql")).unwrap();
    write(dir.path(), &[("3_c.sql", "CREATE TABLE c (id int);")]);

    let status = m.status().await.unwrap();
    assert_eq!(
        states(&status),
        vec![
            ("1".into(), MigrationState::Applied),
            ("2".into(), MigrationState::Missing),
            ("3".into(), MigrationState::Pending)
        ]
    );
    let err = m.apply().await.unwrap_err().to_string();
    assert!(
        err.contains("the file is gone") && err.contains("2_b"),
        "{err}"
    );
    assert!(!db.table_exists("c").await);
}

#[tokio::test]
async fn failing_migration_is_rolled_back_and_the_error_names_file_statement_and_line() {
    let db = PgSchema::new("fail").await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("1_ok.sql", "CREATE TABLE ok (id int);"),
            (
                "2_bad.sql",
                "-- a comment\nCREATE TABLE partial (id int);\n\nINSERT INTO partial\n  SELECT id FROM nope;\n",
            ),
            ("3_after.sql", "CREATE TABLE after (id int);"),
        ],
    );
    let m = SqlMigrator::new(db.url(), dir.path()).unwrap();
    let err = m.apply().await.unwrap_err().to_string();
    assert!(err.contains("2_bad.sql"), "{err}");
    assert!(
        err.contains("at line 5"),
        "the line of `nope` in the file: {err}"
    );
    assert!(
        err.contains("statement 2 of 2") && err.contains("INSERT INTO partial SELECT id FROM nope"),
        "{err}"
    );
    assert!(
        err.contains("\"nope\" does not exist") && err.contains("42P01"),
        "{err}"
    );
    assert!(
        err.contains("rolled back") && err.contains("1 later migration(s) were not run"),
        "{err}"
    );

    assert!(db.table_exists("ok").await);
    assert!(
        !db.table_exists("partial").await,
        "the failing migration's first statement is rolled back"
    );
    assert!(
        !db.table_exists("after").await,
        "nothing after a failure runs"
    );
    let status = m.status().await.unwrap();
    assert_eq!(status.versions(MigrationState::Applied), vec!["1"]);
    assert_eq!(status.versions(MigrationState::Pending), vec!["2", "3"]);
}

#[tokio::test]
async fn runtime_error_without_a_position_still_names_the_statement() {
    let db = PgSchema::new("runtime").await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "1_div.sql",
            "CREATE TABLE t (n int);\nINSERT INTO t VALUES (1);\nSELECT 1 / (n - 1) FROM t;\n",
        )],
    );
    let err = SqlMigrator::new(db.url(), dir.path())
        .unwrap()
        .apply()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("statement 3 of 3")
            && err.contains("at line 3")
            && err.contains("division by zero"),
        "{err}"
    );
    assert!(!db.table_exists("t").await);
}

#[tokio::test]
async fn syntax_error_is_located_by_line() {
    let db = PgSchema::new("syntax").await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[("1_typo.sql", "CREATE TABLE t (n int);\n\nSELEC n FROM t;\n")],
    );
    let err = SqlMigrator::new(db.url(), dir.path())
        .unwrap()
        .apply()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("at line 3") && err.contains("SELEC n FROM t") && err.contains("syntax error"),
        "{err}"
    );
}

#[tokio::test]
async fn no_transaction_marker_lets_create_index_concurrently_run() {
    let db = PgSchema::new("notx").await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("1_t.sql", "CREATE TABLE t (n int);"),
            (
                "2_idx.sql",
                "-- staging:no-transaction\nCREATE INDEX CONCURRENTLY t_n ON t (n);\n",
            ),
        ],
    );
    let m = SqlMigrator::new(db.url(), dir.path()).unwrap();
    assert_eq!(m.apply().await.unwrap().applied.len(), 2);
    let n = db
        .scalar_i64(&format!(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = '{}' AND indexname = 't_n'",
            db.name
        ))
        .await;
    assert_eq!(n, 1);

    // The same statement inside the default transaction is refused by Postgres.
    write(
        dir.path(),
        &[("3_idx.sql", "CREATE INDEX CONCURRENTLY t_n2 ON t (n);\n")],
    );
    let err = m.apply().await.unwrap_err().to_string();
    assert!(
        err.contains("3_idx.sql") && err.contains("cannot run inside a transaction block"),
        "{err}"
    );
}

#[tokio::test]
async fn ten_concurrent_runners_apply_each_migration_exactly_once() {
    let db = PgSchema::new("conc").await;
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![(
        "0001_log.sql".to_owned(),
        "CREATE TABLE log (version int);".to_owned(),
    )];
    for v in 2..=20 {
        // CREATE TABLE without IF NOT EXISTS: a second application would fail loudly.
        files.push((
            format!("{v:04}_m.sql"),
            format!("CREATE TABLE t{v} (id int);\nINSERT INTO log VALUES ({v});"),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    write(dir.path(), &refs);
    let m = Arc::new(SqlMigrator::new(db.url(), dir.path()).unwrap());
    let runners: Vec<_> = (0..10)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.apply().await })
        })
        .collect();
    let mut total = 0;
    for r in runners {
        total += r
            .await
            .unwrap()
            .expect("every runner succeeds")
            .applied
            .len();
    }
    assert_eq!(total, 20, "each migration applied by exactly one runner");
    assert_eq!(db.scalar_i64("SELECT count(*) FROM log").await, 19);
    assert_eq!(
        db.scalar_i64("SELECT count(DISTINCT version) FROM log")
            .await,
        19
    );
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM staging_migrations")
            .await,
        20
    );
}

#[tokio::test]
async fn custom_metadata_table_in_its_own_schema() {
    let db = PgSchema::new("table").await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("1_a.sql", "CREATE TABLE a (id int);")]);
    let table = format!("{}_meta.versions", db.name);
    let m = SqlMigrator::new(db.url(), dir.path())
        .unwrap()
        .with_table(&table)
        .unwrap();
    m.apply().await.unwrap();
    assert_eq!(
        db.scalar_i64(&format!(
            "SELECT count(*) FROM \"{}_meta\".versions",
            db.name
        ))
        .await,
        1
    );
    db.connect()
        .await
        .batch_execute(&format!("DROP SCHEMA \"{}_meta\" CASCADE", db.name))
        .await
        .unwrap();
}

#[tokio::test]
async fn errors_never_show_the_url_password() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("1_a.sql", "SELECT 1;")]);
    let url = secrecy::SecretString::from("postgres://u:canary-pw-9f2@127.0.0.1:1/none".to_owned());
    let m = SqlMigrator::new(url, dir.path()).unwrap();
    let err = m.apply().await.unwrap_err();
    let text = format!("{err} {err:?} {m:?}");
    assert!(!text.contains("canary-pw-9f2"), "{text}");
}
