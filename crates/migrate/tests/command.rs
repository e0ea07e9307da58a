//! The command runner, with a small shell script standing in for alembic.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::PgSchema;
use secrecy::SecretString;
use staging_core::{Migration, MigrationState, Redactor};
use staging_migrate::command::{CommandMigrator, OutputLine, OutputStream};

const CANARY: &str = "canary-pw-51f0";

/// A fake `alembic upgrade head`: prints the URL it was given (as a careless tool might),
/// writes its head revision into `alembic_version`, and fails when asked to.
fn fake_alembic(dir: &Path) -> String {
    let path = dir.join("alembic");
    std::fs::write(
        &path,
        r#"#!/bin/sh
echo "INFO  [alembic] connecting to $DATABASE_URL"
if [ "$1" = "fail" ]; then
  echo "ERROR [alembic] relation \"users\" already exists" >&2
  exit 3
fi
psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "CREATE TABLE IF NOT EXISTS alembic_version (version_num varchar(32) PRIMARY KEY); DELETE FROM alembic_version; INSERT INTO alembic_version VALUES ('$2');" >/dev/null
echo "INFO  [alembic] Running upgrade -> $2"
"#,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn collect() -> (
    Arc<Mutex<Vec<OutputLine>>>,
    staging_migrate::command::OutputSink,
) {
    let lines = Arc::new(Mutex::new(vec![]));
    let sink_lines = lines.clone();
    (
        lines,
        Arc::new(move |l: &OutputLine| sink_lines.lock().unwrap().push(l.clone())),
    )
}

#[tokio::test]
async fn command_runner_injects_database_url_and_streams_redacted_output() {
    let db = PgSchema::new("cmd").await;
    let dir = tempfile::tempdir().unwrap();
    let alembic = fake_alembic(dir.path());
    let url = SecretString::from(db.url_with_password(Some(CANARY)));
    let (lines, sink) = collect();
    let m = CommandMigrator::new(
        vec![alembic, "upgrade".into(), "ae1027a6acf".into()],
        url,
        dir.path(),
        Redactor::new(),
    )
    .unwrap()
    .with_version_table("alembic_version")
    .unwrap()
    .on_output(sink);

    assert!(
        m.status().await.unwrap().entries.is_empty(),
        "no version table yet"
    );
    let report = m.apply().await.unwrap();
    assert_eq!(report.applied.len(), 1);
    assert_eq!(report.applied[0].version, "ae1027a6acf");

    let lines = lines.lock().unwrap().clone();
    let text: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
    assert!(
        text.iter()
            .any(|l| l.contains("connecting to postgres://postgres:[REDACTED]@")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|l| l.contains("Running upgrade -> ae1027a6acf")),
        "{text:?}"
    );
    assert!(!text.iter().any(|l| l.contains(CANARY)), "{text:?}");
    assert!(lines.iter().all(|l| l.stream == OutputStream::Stdout));
}

#[tokio::test]
async fn command_status_reads_the_current_version_from_the_version_table() {
    let db = PgSchema::new("cmdstatus").await;
    let dir = tempfile::tempdir().unwrap();
    let alembic = fake_alembic(dir.path());
    let m = CommandMigrator::new(
        vec![alembic, "upgrade".into(), "head42".into()],
        db.url(),
        dir.path(),
        Redactor::new(),
    )
    .unwrap()
    .with_version_table("alembic_version")
    .unwrap();
    m.apply().await.unwrap();
    let status = m.status().await.unwrap();
    assert_eq!(status.entries.len(), 1);
    assert_eq!(
        (status.entries[0].version.as_str(), status.entries[0].state),
        ("head42", MigrationState::Applied)
    );
}

#[tokio::test]
async fn command_failure_reports_exit_code_and_last_lines_redacted() {
    let db = PgSchema::new("cmdfail").await;
    let dir = tempfile::tempdir().unwrap();
    let alembic = fake_alembic(dir.path());
    let url = SecretString::from(db.url_with_password(Some(CANARY)));
    let (lines, sink) = collect();
    let m = CommandMigrator::new(
        vec![alembic, "fail".into()],
        url,
        dir.path(),
        Redactor::new(),
    )
    .unwrap()
    .on_output(sink);
    let err = m.apply().await.unwrap_err().to_string();
    assert!(
        err.contains("exit code 3") && err.contains("relation \"users\" already exists"),
        "{err}"
    );
    assert!(!err.contains(CANARY), "{err}");
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.stream == OutputStream::Stderr)
    );
}

#[tokio::test]
async fn command_status_without_version_table_is_not_supported() {
    let m = CommandMigrator::new(
        vec!["true".into()],
        SecretString::from("sqlite::memory:".to_owned()),
        ".",
        Redactor::new(),
    )
    .unwrap();
    let err = m.status().await.unwrap_err();
    assert!(
        matches!(err, staging_core::Error::NotSupported { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn command_that_is_not_installed_is_a_clear_error() {
    let m = CommandMigrator::new(
        vec!["no-such-tool-xyz".into()],
        SecretString::from("sqlite::memory:".to_owned()),
        ".",
        Redactor::new(),
    )
    .unwrap();
    let err = m.apply().await.unwrap_err().to_string();
    assert!(
        err.contains("no-such-tool-xyz") && err.contains("not found"),
        "{err}"
    );
}
