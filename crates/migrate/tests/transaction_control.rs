//! A native migration with `COMMIT` (or any transaction control) of its own is refused before
//! any migration of the batch runs, on real Postgres and real SQLite files.

mod common;

use common::{PgSchema, sqlite_url, write};
use secrecy::ExposeSecret;
use sqlx::{Connection, SqliteConnection};
use staging_core::Migration;
use staging_migrate::native::SqlMigrator;

/// `1_first.sql` is fine; `2_half.sql` commits its first half, then fails.
fn migrations(dir: &std::path::Path, second: &str) -> std::path::PathBuf {
    let migrations = dir.join("migrations");
    write(
        &migrations,
        &[
            ("1_first.sql", "CREATE TABLE first_t (id int);"),
            ("2_half.sql", second),
        ],
    );
    migrations
}

const HALF: &str = "CREATE TABLE half_t (id int);\n-- a comment: COMMIT; here is no statement\nInsert into half_t values (1);\n  commit ;\nINSERT INTO half_t SELECT id FROM no_such_table;\n";

fn assert_names_file_and_line(err: &str) {
    assert!(
        err.contains("2_half.sql:4: `commit`") && err.contains("no migration was run"),
        "{err}"
    );
    assert!(!err.contains(":2:"), "the comment was counted: {err}");
}

#[tokio::test]
async fn postgres_migration_with_its_own_commit_is_refused_and_nothing_is_half_applied() {
    let db = PgSchema::new("txctl").await;
    let dir = tempfile::tempdir().unwrap();
    let m = SqlMigrator::new(db.url(), migrations(dir.path(), HALF)).unwrap();

    let err = m.plan().await.unwrap_err().to_string();
    assert_names_file_and_line(&err);
    let err = m.apply().await.unwrap_err().to_string();
    assert_names_file_and_line(&err);
    assert!(
        !db.table_exists("half_t").await,
        "the first half of 2_half.sql was committed"
    );
    assert!(
        !db.table_exists("first_t").await,
        "a migration of the batch ran before the refusal"
    );
    assert!(m.history().await.unwrap().is_empty());
}

#[tokio::test]
async fn postgres_transaction_control_is_allowed_under_the_no_transaction_marker() {
    let db = PgSchema::new("txctlnt").await;
    let dir = tempfile::tempdir().unwrap();
    let sql = "-- staging:no-transaction\nBEGIN;\nCREATE TABLE own_t (id int);\nSAVEPOINT s;\nINSERT INTO own_t VALUES (1);\nRELEASE s;\nCOMMIT;\n";
    let m = SqlMigrator::new(db.url(), migrations(dir.path(), sql)).unwrap();
    let report = m.apply().await.unwrap();
    assert_eq!(report.applied.len(), 2);
    assert_eq!(db.scalar_i64("SELECT count(*) FROM own_t").await, 1);
}

#[tokio::test]
async fn sqlite_migration_with_its_own_commit_is_refused_and_nothing_is_half_applied() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path(), "app.db");
    let m = SqlMigrator::new(url.clone(), migrations(dir.path(), HALF)).unwrap();

    let err = m.apply().await.unwrap_err().to_string();
    assert_names_file_and_line(&err);
    for sql in [
        "END TRANSACTION;",
        "begin immediate;",
        "ROLLBACK;",
        "SAVEPOINT a;",
    ] {
        let dir2 = tempfile::tempdir().unwrap();
        let m2 = SqlMigrator::new(
            sqlite_url(dir2.path(), "x.db"),
            migrations(dir2.path(), &format!("CREATE TABLE x (id int);\n{sql}\n")),
        )
        .unwrap();
        let err = m2.apply().await.unwrap_err().to_string();
        assert!(err.contains("2_half.sql:2:"), "{sql}: {err}");
    }
    if dir.path().join("app.db").exists() {
        let mut c = SqliteConnection::connect(url.expose_secret())
            .await
            .unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('half_t', 'first_t')",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        assert!(tables.is_empty(), "half-applied: {tables:?}");
    }
}

#[tokio::test]
async fn postgres_plpgsql_bodies_literals_and_comments_with_transaction_words_are_applied() {
    let db = PgSchema::new("txctlok").await;
    let dir = tempfile::tempdir().unwrap();
    let sql = "-- COMMIT; in a comment\n/* BEGIN; /* nested ROLLBACK; */ */\n\
               CREATE TABLE log (msg text);\n\
               INSERT INTO log VALUES ('COMMIT;'), (E'it\\'s END;'), ($$ROLLBACK;$$);\n\
               CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $body$\n\
               BEGIN\n  INSERT INTO log VALUES ('bumped');\n  RETURN NEW;\nEND;\n$body$;\n\
               DO $$ BEGIN PERFORM 1; END $$;\n\
               CREATE TABLE \"begin\" (savepoint int);\n";
    let m = SqlMigrator::new(db.url(), migrations(dir.path(), sql)).unwrap();
    let report = m.apply().await.unwrap();
    assert_eq!(report.applied.len(), 2);
    assert_eq!(db.scalar_i64("SELECT count(*) FROM log").await, 3);
    assert!(db.table_exists("begin").await);
}
