//! The native runner against real SQLite files.

mod common;

use std::sync::Arc;

use common::{sqlite_url, write};
use sqlx::{Connection, SqliteConnection};
use staging_core::{Migration, MigrationState};
use staging_migrate::native::SqlMigrator;

async fn scalar(url: &secrecy::SecretString, sql: &str) -> i64 {
    use secrecy::ExposeSecret;
    let mut c = SqliteConnection::connect(url.expose_secret())
        .await
        .unwrap();
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut c)
        .await
        .unwrap()
}

async fn table_exists(url: &secrecy::SecretString, table: &str) -> bool {
    scalar(
        url,
        &format!("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"),
    )
    .await
        == 1
}

#[tokio::test]
async fn applies_in_numeric_version_order_and_records_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    write(
        &migrations,
        &[
            ("20260201000000_c.sql", "ALTER TABLE b ADD COLUMN c int;"),
            (
                "20260115000000_b.sql",
                "CREATE TABLE b (a_id int REFERENCES a (id));",
            ),
            (
                "20260101000000_a.sql",
                "CREATE TABLE a (id INTEGER PRIMARY KEY);",
            ),
        ],
    );
    // The file and its directory do not exist yet: apply creates them.
    let url = sqlite_url(&dir.path().join("data"), "app.db");
    let m = SqlMigrator::new(url.clone(), &migrations).unwrap();
    let report = m.apply().await.unwrap();
    let applied: Vec<&str> = report.applied.iter().map(|a| a.version.as_str()).collect();
    assert_eq!(
        applied,
        vec!["20260101000000", "20260115000000", "20260201000000"]
    );
    let history = m.history().await.unwrap();
    assert_eq!(history.len(), 3);
    assert!(history[0].applied_by.starts_with("staging-migrate "));
    assert!(
        history[0].applied_at.starts_with("20"),
        "{}",
        history[0].applied_at
    );
    assert!(
        m.status()
            .await
            .unwrap()
            .entries
            .iter()
            .all(|e| e.state == MigrationState::Applied)
    );
    assert!(m.apply().await.unwrap().applied.is_empty());
}

#[tokio::test]
async fn status_and_plan_of_a_database_that_does_not_exist_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("m"),
        &[("1_a.sql", "CREATE TABLE a (id int);")],
    );
    let url = sqlite_url(dir.path(), "absent.db");
    let m = SqlMigrator::new(url, dir.path().join("m")).unwrap();
    assert_eq!(
        m.status().await.unwrap().versions(MigrationState::Pending),
        vec!["1"]
    );
    assert_eq!(m.plan().await.unwrap().to_apply.len(), 1);
    assert!(!dir.path().join("absent.db").exists());
}

#[tokio::test]
async fn modified_and_missing_files_block_apply_until_drift_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mdir = dir.path().join("m");
    write(
        &mdir,
        &[
            ("1_a.sql", "CREATE TABLE a (id int);"),
            ("2_b.sql", "CREATE TABLE b (id int);"),
        ],
    );
    let url = sqlite_url(dir.path(), "app.db");
    let m = SqlMigrator::new(url.clone(), &mdir).unwrap();
    m.apply().await.unwrap();
    write(
        &mdir,
        &[
            ("1_a.sql", "CREATE TABLE a (id int, x int);"),
            ("3_c.sql", "CREATE TABLE c (id int);"),
        ],
    );
    std::fs::remove_file(mdir.join("2_b.sql")).unwrap();
    let status = m.status().await.unwrap();
    assert_eq!(status.versions(MigrationState::Modified), vec!["1"]);
    assert_eq!(status.versions(MigrationState::Missing), vec!["2"]);
    assert_eq!(status.versions(MigrationState::Pending), vec!["3"]);
    let err = m.apply().await.unwrap_err().to_string();
    assert!(
        err.contains("1_a") && err.contains("2_b") && err.contains("--allow-drift"),
        "{err}"
    );
    assert!(!table_exists(&url, "c").await);
    let report = m.allow_drift(true).apply().await.unwrap();
    assert_eq!(report.applied.len(), 1);
    assert_eq!(report.warnings.len(), 1);
    assert!(table_exists(&url, "c").await);
}

#[tokio::test]
async fn failing_migration_is_rolled_back_and_the_error_names_file_and_statement() {
    let dir = tempfile::tempdir().unwrap();
    let mdir = dir.path().join("m");
    write(
        &mdir,
        &[
            ("1_ok.sql", "CREATE TABLE ok (id int);"),
            (
                "2_bad.sql",
                "CREATE TABLE partial (id int);\n-- then\nINSERT INTO nope VALUES (1);\n",
            ),
            ("3_after.sql", "CREATE TABLE after (id int);"),
        ],
    );
    let url = sqlite_url(dir.path(), "app.db");
    let m = SqlMigrator::new(url.clone(), &mdir).unwrap();
    let err = m.apply().await.unwrap_err().to_string();
    assert!(
        err.contains("2_bad.sql") && err.contains("at line 3") && err.contains("statement 2 of 2"),
        "{err}"
    );
    assert!(
        err.contains("INSERT INTO nope VALUES (1)") && err.contains("no such table"),
        "{err}"
    );
    assert!(table_exists(&url, "ok").await);
    assert!(!table_exists(&url, "partial").await, "rolled back");
    assert!(
        !table_exists(&url, "after").await,
        "nothing after a failure runs"
    );
}

#[tokio::test]
async fn no_transaction_marker_lets_vacuum_run() {
    let dir = tempfile::tempdir().unwrap();
    let mdir = dir.path().join("m");
    write(
        &mdir,
        &[
            ("1_t.sql", "CREATE TABLE t (n int);"),
            ("2_vacuum.sql", "-- staging:no-transaction\nVACUUM;\n"),
        ],
    );
    let url = sqlite_url(dir.path(), "app.db");
    let m = SqlMigrator::new(url.clone(), &mdir).unwrap();
    assert_eq!(m.apply().await.unwrap().applied.len(), 2);
    assert_eq!(
        scalar(
            &url,
            "SELECT no_transaction FROM staging_migrations WHERE version = 2"
        )
        .await,
        1
    );

    write(&mdir, &[("3_vacuum.sql", "VACUUM;\n")]);
    let err = m.apply().await.unwrap_err().to_string();
    assert!(
        err.contains("3_vacuum.sql") && err.contains("within a transaction"),
        "{err}"
    );
}

#[tokio::test]
async fn ten_concurrent_runners_apply_each_migration_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mdir = dir.path().join("m");
    let mut files = vec![(
        "0001_log.sql".to_owned(),
        "CREATE TABLE log (version int);".to_owned(),
    )];
    for v in 2..=20 {
        files.push((
            format!("{v:04}_m.sql"),
            format!("CREATE TABLE t{v} (id int);\nINSERT INTO log VALUES ({v});"),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    write(&mdir, &refs);
    let url = sqlite_url(dir.path(), "app.db");
    let runners: Vec<_> = (0..10)
        .map(|_| {
            let m = Arc::new(SqlMigrator::new(url.clone(), &mdir).unwrap());
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
    assert_eq!(total, 20);
    assert_eq!(scalar(&url, "SELECT count(*) FROM log").await, 19);
    assert_eq!(
        scalar(&url, "SELECT count(DISTINCT version) FROM log").await,
        19
    );
    assert_eq!(
        scalar(&url, "SELECT count(*) FROM staging_migrations").await,
        20
    );
}

#[tokio::test]
async fn misnamed_sql_file_is_an_error_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[("1_a.sql", "SELECT 1;"), ("add_b.sql", "SELECT 2;")],
    );
    let m = SqlMigrator::new(sqlite_url(dir.path(), "x.db"), dir.path()).unwrap();
    let err = m.status().await.unwrap_err().to_string();
    assert!(
        err.contains("add_b.sql") && err.contains("<version>_<name>.sql"),
        "{err}"
    );
}
