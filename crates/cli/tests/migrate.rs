//! `staging migrate` end to end: a silent database fails within its connect bound (issue
//! 15), and a declared `reset` never runs on a protected environment (issue 13, event 3).

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;

fn workspace(databases: &str, staging_url: &str, production_url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        format!(
            r#"[project]
name = "t"

[environments.staging]
provider = "local"
promotes_to = "production"
secrets = {{ dotenv = "staging.env" }}

[environments.production]
provider = "local"
protected = true
secrets = {{ dotenv = "production.env" }}

[vars.DATABASE_URL]
secret = true

{databases}"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        format!("DATABASE_URL={staging_url}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("production.env"),
        format!("DATABASE_URL={production_url}\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/1_a.sql"),
        "CREATE TABLE a (id int);",
    )
    .unwrap();
    dir
}

fn staging(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("-f")
        .arg(dir.join("staging.toml"))
        .args(args)
        .env_remove("STAGING_ENV")
        .env_remove("DATABASE_URL")
        // A hang guard far above every bound under test, not a timing assertion.
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn migrate_apply_against_a_silent_database_fails_naming_host_and_phase() {
    let peer = staging_core::testkit::SilentPeer::start();
    let dir = workspace(
        "[databases.main]\nurl_var = \"DATABASE_URL\"\nmigrations = { dir = \"migrations\" }\n",
        &format!(
            "postgres://app:canary-pw@{}/db?connect_timeout=1",
            peer.addr()
        ),
        "postgres://app:other@127.0.0.1:1/prod",
    );
    let (code, all) = staging(dir.path(), &["migrate", "apply", "--env", "staging"]);
    assert!(code.is_some_and(|c| c != 0), "{all}");
    assert!(
        all.contains(&peer.addr().to_string()) && all.contains("never answered"),
        "{all}"
    );
    assert!(!all.contains("canary-pw"), "{all}");
    assert!(peer.accepted() >= 1);
}

#[test]
fn a_declared_reset_is_refused_on_production_and_runs_on_staging() {
    let dir = workspace(
        "[databases.main]\nurl_var = \"DATABASE_URL\"\nreset = [\"sh\", \"-c\", \"touch reset-ran\"]\n",
        "postgres://app:s@127.0.0.1:1/staging_db",
        "postgres://app:p@127.0.0.1:1/production_db",
    );
    let witness = dir.path().join("reset-ran");
    let (code, all) = staging(dir.path(), &["migrate", "reset", "--env", "production"]);
    assert_eq!(code, Some(1), "{all}");
    assert!(
        all.contains("protected environment `production`") && all.contains("reset"),
        "{all}"
    );
    assert!(!witness.exists(), "the reset ran on production");
    let (code, all) = staging(dir.path(), &["migrate", "reset", "--env", "staging"]);
    assert_eq!(code, Some(0), "{all}");
    assert!(witness.exists(), "the reset did not run on staging: {all}");
}
