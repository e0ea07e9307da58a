//! Protected environments on real Postgres: every check that can refuse runs before anything
//! is executed against the protected database, and only declared migrations run there.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use common::PgSchema;
use secrecy::SecretString;
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_migrate::guard::StaticUrls;
use staging_migrate::{EnvMigrations, MigrateOptions};

/// A fake alembic whose "code" is the file `HEAD_REV` next to it: `upgrade head` writes that
/// revision into `alembic_version` and leaves a witness table `ran_<rev>` behind (so a test
/// sees whether it ran against a database at all); `heads` prints `<rev> (head)`.
fn fake_alembic(dir: &Path, head: &str) {
    std::fs::write(dir.join("HEAD_REV"), head).unwrap();
    let path = dir.join("alembic");
    std::fs::write(
        &path,
        r#"#!/bin/sh
rev=$(cat HEAD_REV)
if [ "$1" = "heads" ]; then
  if [ -n "$DATABASE_URL" ]; then echo "heads was given a DATABASE_URL" >&2; exit 9; fi
  echo "$rev (head)"
  exit 0
fi
psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "CREATE TABLE IF NOT EXISTS alembic_version (version_num varchar(32) PRIMARY KEY); DELETE FROM alembic_version; INSERT INTO alembic_version VALUES ('$rev'); CREATE TABLE IF NOT EXISTS ran_$rev (x int);" >/dev/null
echo "INFO  [alembic] Running upgrade -> $rev"
"#,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A fake Django `manage.py`: `flush --no-input` empties `users`, `migrate` records a version.
fn fake_manage_py(dir: &Path) {
    std::fs::write(
        dir.join("manage.py"),
        r#"import os, subprocess, sys
url = os.environ["DATABASE_URL"]
def sql(s):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", s], check=True, stdout=subprocess.DEVNULL)
if sys.argv[1] == "flush":
    sql("TRUNCATE users")
    print("flushed")
elif sys.argv[1] == "migrate":
    sql("CREATE TABLE IF NOT EXISTS django_migrations (version text PRIMARY KEY); INSERT INTO django_migrations VALUES ('0001_initial') ON CONFLICT DO NOTHING")
"#,
    )
    .unwrap();
}

struct Envs {
    staging: PgSchema,
    production: PgSchema,
    dir: tempfile::TempDir,
}

impl Envs {
    async fn new(tag: &str) -> Envs {
        Envs {
            staging: PgSchema::new(&format!("{tag}_stg")).await,
            production: PgSchema::new_database(&format!("{tag}_prd")).await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn spec(&self, databases: &str) -> Arc<LoadedSpec> {
        let source = format!(
            r#"
[project]
name = "t"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[vars.DATABASE_URL]
values = {{ staging = "{}", production = "{}" }}

{databases}
"#,
            self.staging.url_with_password(None),
            self.production.url_with_password(None)
        );
        let path = self.dir.path().join("staging.toml");
        std::fs::write(&path, &source).unwrap();
        Arc::new(LoadedSpec::parse(&path, source, LoadOptions::new(&["local"])).unwrap())
    }

    fn env(&self, spec: &Arc<LoadedSpec>, name: &str, dry_run: bool) -> EnvMigrations {
        let url = |s: &PgSchema| SecretString::from(s.url_with_password(None));
        let own = if name == "staging" {
            &self.staging
        } else {
            &self.production
        };
        let urls = StaticUrls::new().with("staging", "DATABASE_URL", url(&self.staging));
        EnvMigrations::new(
            spec.clone(),
            name,
            BTreeMap::from([("DATABASE_URL".to_owned(), url(own))]),
        )
        .unwrap()
        .with_options(MigrateOptions {
            dry_run,
            ..Default::default()
        })
        .with_url_lookup(Arc::new(urls))
    }
}

async fn alembic_version(db: &PgSchema) -> Option<String> {
    if !db.table_exists("alembic_version").await {
        return None;
    }
    db.connect()
        .await
        .query_opt("SELECT version_num FROM alembic_version", &[])
        .await
        .unwrap()
        .map(|r| r.get(0))
}

const ALEMBIC: &str = r#"[databases.main]
url_var = "DATABASE_URL"
migrations = { command = ["./alembic", "upgrade", "head"], version_table = "alembic_version", versions_command = ["./alembic", "heads"] }
"#;

#[tokio::test]
async fn command_runner_refuses_production_before_running_when_staging_lacks_the_head() {
    let envs = Envs::new("cmdfirst").await;
    fake_alembic(envs.dir.path(), "aaa1");
    let spec = envs.spec(ALEMBIC);
    assert!(envs.env(&spec, "staging", false).apply().await.ok);
    let prod = envs.env(&spec, "production", false).apply().await;
    assert!(prod.ok, "{prod:?}");
    assert_eq!(
        alembic_version(&envs.production).await.as_deref(),
        Some("aaa1")
    );

    // New code with a new head; staging was not migrated with it.
    fake_alembic(envs.dir.path(), "bbb2");
    for dry_run in [true, false] {
        let report = envs.env(&spec, "production", dry_run).apply().await;
        assert!(!report.ok, "{report:?}");
        let err = report.databases[0].error.clone().unwrap();
        assert!(
            err.contains("protected environment `production`") && err.contains("bbb2"),
            "{err}"
        );
    }
    assert_eq!(
        alembic_version(&envs.production).await.as_deref(),
        Some("aaa1"),
        "the command ran on production before the staging-first check"
    );
    assert!(!envs.production.table_exists("ran_bbb2").await);

    // Staging first, then production.
    assert!(envs.env(&spec, "staging", false).apply().await.ok);
    let prod = envs.env(&spec, "production", false).apply().await;
    assert!(prod.ok, "{prod:?}");
    assert_eq!(
        alembic_version(&envs.production).await.as_deref(),
        Some("bbb2")
    );
}

#[tokio::test]
async fn command_runner_without_a_versions_command_is_refused_on_production_untouched() {
    let envs = Envs::new("cmdnolist").await;
    fake_alembic(envs.dir.path(), "aaa1");
    let spec = envs.spec(
        "[databases.main]\nurl_var = \"DATABASE_URL\"\nmigrations = { command = [\"./alembic\", \"upgrade\", \"head\"], version_table = \"alembic_version\" }\n",
    );
    assert!(envs.env(&spec, "staging", false).apply().await.ok);
    let report = envs.env(&spec, "production", false).apply().await;
    let err = report.databases[0].error.clone().unwrap();
    assert!(err.contains("versions_command"), "{err}");
    // A versions command that fails or lists nothing refuses just the same.
    for argv in [r#"["false"]"#, r#"["true"]"#] {
        let spec = envs.spec(&format!(
            "[databases.main]\nurl_var = \"DATABASE_URL\"\nmigrations = {{ command = [\"./alembic\", \"upgrade\", \"head\"], version_table = \"alembic_version\", versions_command = {argv} }}\n",
        ));
        let report = envs.env(&spec, "production", false).apply().await;
        let err = report.databases[0].error.clone().unwrap();
        assert!(err.contains("the versions command"), "{err}");
    }
    assert!(!envs.production.table_exists("alembic_version").await);
    assert!(!envs.production.table_exists("ran_aaa1").await);
}

#[tokio::test]
async fn a_later_database_refused_means_no_database_of_production_is_migrated() {
    let envs = Envs::new("cmdtwo").await;
    fake_alembic(envs.dir.path(), "aaa1");
    let dir = envs.dir.path().join("migrations");
    common::write(&dir, &[("1_a.sql", "CREATE TABLE native_a (id int);")]);
    // `main` (native) would pass its check; `other` (command) is refused: neither runs.
    let spec = envs.spec(&format!(
        "[databases.main]\nurl_var = \"DATABASE_URL\"\nmigrations = {{ dir = \"migrations\" }}\n\n{}",
        ALEMBIC.replace("databases.main", "databases.other")
    ));
    let staging_native = envs
        .env(&spec, "staging", false)
        .runner_for("main", envs.staging.url())
        .unwrap();
    staging_native.apply().await.unwrap();
    let report = envs.env(&spec, "production", false).apply().await;
    assert!(!report.ok, "{report:?}");
    assert!(
        !envs.production.table_exists("native_a").await,
        "database `main` was migrated before database `other` was checked"
    );
}

#[tokio::test]
async fn manage_py_flush_is_refused_on_production_and_empties_nothing() {
    let envs = Envs::new("flush").await;
    fake_manage_py(envs.dir.path());
    for db in [&envs.staging, &envs.production] {
        db.connect()
            .await
            .batch_execute(
                "CREATE TABLE users (id int); INSERT INTO users VALUES (1), (2);
                 CREATE TABLE django_migrations (version text PRIMARY KEY);
                 INSERT INTO django_migrations VALUES ('0001_initial');",
            )
            .await
            .unwrap();
    }
    let users = |db: &PgSchema| {
        let (url, db) = (db.url(), db.name.clone());
        async move {
            let c = staging_postgres::connect(&url).await.unwrap();
            let n: i64 = c
                .query_one(&format!("SELECT count(*) FROM \"{db}\".users"), &[])
                .await
                .unwrap()
                .get(0);
            n
        }
    };

    // Declared as what it is: a reset. Refused on production, whatever it is called.
    let spec = envs.spec(
        "[databases.main]\nurl_var = \"DATABASE_URL\"\nmigrations = { command = [\"python3\", \"manage.py\", \"migrate\"], version_table = \"django_migrations\", versions_command = [\"echo\", \"0001_initial\"] }\nreset = [\"python3\", \"manage.py\", \"flush\", \"--no-input\"]\n",
    );
    let report = envs.env(&spec, "production", false).reset().await;
    assert!(!report.ok, "{report:?}");
    let err = report.databases[0].error.clone().unwrap();
    assert!(
        err.contains("reset") && err.contains("protected environment `production`"),
        "{err}"
    );
    assert_eq!(users(&envs.production).await, 2);
    // Migrating production never runs the reset.
    let report = envs.env(&spec, "production", false).apply().await;
    assert!(report.ok, "{report:?}");
    assert_eq!(users(&envs.production).await, 2);
    // On staging it runs.
    let report = envs.env(&spec, "staging", false).reset().await;
    assert!(report.ok, "{report:?}");
    assert_eq!(users(&envs.staging).await, 0);

    // Passed off as the migration command: refused by the second guard.
    let spec = envs.spec(
        "[databases.main]\nurl_var = \"DATABASE_URL\"\nmigrations = { command = [\"python3\", \"manage.py\", \"flush\", \"--no-input\"], version_table = \"django_migrations\", versions_command = [\"echo\", \"0001_initial\"] }\n",
    );
    let report = envs.env(&spec, "production", false).apply().await;
    assert!(!report.ok, "{report:?}");
    let err = report.databases[0].error.clone().unwrap();
    assert!(err.contains("flush"), "{err}");
    assert_eq!(
        users(&envs.production).await,
        2,
        "production's table was emptied"
    );
}
