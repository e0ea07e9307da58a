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
        // Two real databases of the local server: a reset writes, so the server must say
        // what staging's database is and that it is not production's.
        "postgres://postgres@127.0.0.1:5432/test",
        "postgres://postgres@127.0.0.1:5432/postgres",
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
    std::fs::remove_file(&witness).unwrap();
    // A staging database whose server cannot say what it is: refused, nothing runs.
    std::fs::write(
        dir.path().join("staging.env"),
        "DATABASE_URL=postgres://app:s@127.0.0.1:1/staging_db\n",
    )
    .unwrap();
    let (code, all) = staging(dir.path(), &["migrate", "reset", "--env", "staging"]);
    assert_eq!(code, Some(3), "{all}");
    assert!(
        all.contains("cannot read what database `main` of environment `staging` is"),
        "{all}"
    );
    assert!(
        !witness.exists(),
        "the reset ran on an unidentified database"
    );
}

const PG: &str = "postgres://postgres@127.0.0.1:5432";

fn psql(db: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([
            "-qtA",
            "-v",
            "ON_ERROR_STOP=1",
            &format!("{PG}/{db}"),
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A fake alembic whose head is the file `HEAD_REV`: `upgrade head` records it in
/// `alembic_version` and leaves a table `ran_<rev>` (proof it ran against that database);
/// `heads` prints it without touching a database.
fn fake_alembic(dir: &Path, head: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(dir.join("HEAD_REV"), head).unwrap();
    let path = dir.join("alembic");
    std::fs::write(
        &path,
        r#"#!/bin/sh
rev=$(cat HEAD_REV)
if [ "$1" = "heads" ]; then echo "$rev (head)"; exit 0; fi
psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "CREATE TABLE IF NOT EXISTS alembic_version (version_num varchar(32) PRIMARY KEY); DELETE FROM alembic_version; INSERT INTO alembic_version VALUES ('$rev'); CREATE TABLE IF NOT EXISTS ran_$rev (x int);" >/dev/null
"#,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Issue 13, event 3, through the CLI on real Postgres: with a command runner, `migrate
/// apply --env production` checks staging's versions BEFORE the command runs; production
/// is untouched while staging lacks the new head.
#[test]
fn a_command_runner_never_runs_on_production_before_staging_has_the_head() {
    // Two databases (isolation refuses two environments on one database).
    let tag = format!("cli_first_{}", std::process::id());
    let (stg, prd) = (format!("{tag}_stg"), format!("{tag}_prd"));
    for db in [&stg, &prd] {
        psql("test", &format!("DROP DATABASE IF EXISTS {db}"));
        psql("test", &format!("CREATE DATABASE {db}"));
    }
    let url = |db: &str| format!("{PG}/{db}");
    let dir = workspace(
        "[databases.main]\nurl_var = \"DATABASE_URL\"\nmigrations = { command = [\"./alembic\", \"upgrade\", \"head\"], version_table = \"alembic_version\", versions_command = [\"./alembic\", \"heads\"] }\n",
        &url(&stg),
        &url(&prd),
    );
    let version = |db: &str| psql(db, "SELECT version_num FROM alembic_version");
    let ran = |db: &str, rev: &str| {
        psql(
            db,
            &format!(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'ran_{rev}'"
            ),
        ) == "1"
    };

    fake_alembic(dir.path(), "aaa1");
    for env in ["staging", "production"] {
        let (code, all) = staging(dir.path(), &["migrate", "apply", "--env", env]);
        assert_eq!(code, Some(0), "{env}: {all}");
    }
    assert_eq!(version(&prd), "aaa1");

    // New code with a new head; staging was not migrated with it.
    fake_alembic(dir.path(), "bbb2");
    let (code, all) = staging(dir.path(), &["migrate", "apply", "--env", "production"]);
    assert_eq!(code, Some(1), "{all}");
    assert!(
        all.contains("protected environment `production`") && all.contains("bbb2"),
        "{all}"
    );
    assert_eq!(version(&prd), "aaa1", "the command ran on production first");
    assert!(!ran(&prd, "bbb2"), "the command ran against production");

    // Staging first, then production.
    let (code, all) = staging(dir.path(), &["migrate", "apply", "--env", "staging"]);
    assert_eq!(code, Some(0), "{all}");
    let (code, all) = staging(dir.path(), &["migrate", "apply", "--env", "production"]);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(version(&prd), "bbb2");
    for db in [&stg, &prd] {
        psql("test", &format!("DROP DATABASE {db}"));
    }
}
