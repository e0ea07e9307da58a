//! Databases are identified by what the server says, never by the text of their URLs: on the
//! real local Postgres, staging's `DATABASE_URL` names production's database in another
//! spelling (another host name for the same server, the other scheme, the default port
//! written out or left off, another user, query parameters, `?host=` pointing at the Unix
//! socket, a percent-encoded socket path or database name), and `staging refresh` and
//! `staging migrate apply` refuse before writing anything — production's data digest is
//! unchanged, the exit code is 2 and the message names both environments and what the server
//! said the database is. Two different databases on the same server still pass.

use std::path::Path;
use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use assert_cmd::Command;

fn psql(db: &str, sql: &str) -> String {
    let out = StdCommand::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db])
        .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Production's and staging's databases on the local server, dropped at the end.
struct Databases {
    production: String,
    staging: String,
}

impl Databases {
    fn new(tag: &str) -> Databases {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{tag}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let d = Databases {
            production: format!("dbid_production_{id}"),
            staging: format!("dbid_staging_{id}"),
        };
        for db in [&d.production, &d.staging] {
            psql(
                "test",
                &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            );
            psql("test", &format!("CREATE DATABASE {db}"));
            psql(
                db,
                "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);
                 CREATE TABLE audit (id int);
                 INSERT INTO users (email) VALUES ('alice@wonderland.example'), ('bob@builder.example');
                 INSERT INTO audit VALUES (1), (2), (3);",
            );
        }
        d
    }

    /// Everything a refresh, a migration or a scrub could change in production: its tables
    /// with their columns, and every row of them.
    fn production_digest(&self) -> String {
        psql(
            &self.production,
            "SELECT md5(
               (SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, column_name)
                  FROM information_schema.columns WHERE table_schema = 'public')
               || (SELECT coalesce(string_agg(id || email, ',' ORDER BY id), '') FROM users)
               || (SELECT count(*) FROM audit)::text)",
        )
    }
}

impl Drop for Databases {
    fn drop(&mut self) {
        for db in [&self.production, &self.staging] {
            let _ = StdCommand::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c"])
                .arg(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .output();
        }
    }
}

/// Production's database as production's own secrets spell it.
fn production_url(db: &str) -> String {
    format!("postgres://postgres@127.0.0.1:5432/{db}")
}

/// The same database, spelt otherwise (each one connects to it with `psql` too).
fn other_spellings(db: &str) -> Vec<(&'static str, String)> {
    let encoded = db.replace('_', "%5F");
    vec![
        (
            "localhost, the other scheme, no port",
            format!("postgresql://postgres@localhost/{db}"),
        ),
        (
            "another user, an upper-case host, query parameters",
            format!("postgres://root@LOCALHOST:5432/{db}?sslmode=disable&application_name=staging"),
        ),
        (
            "the Unix socket through `?host=`, the user in the query",
            format!("postgres:///{db}?host=/var/run/postgresql&user=postgres"),
        ),
        (
            "a percent-encoded socket path and database name",
            format!("postgres://postgres@%2Fvar%2Frun%2Fpostgresql:5432/{encoded}"),
        ),
        (
            "the database in `?dbname=`",
            format!("postgres://postgres@127.0.0.1:5432/?dbname={db}&connect_timeout=5"),
        ),
    ]
}

fn project(dbs: &Databases, staging_url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        r#"[project]
name = "dbid"

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
migrations = { dir = "migrations" }
scrub = { sql = ["scrub.sql"] }
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        format!("DATABASE_URL={staging_url}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("production.env"),
        format!("DATABASE_URL={}\n", production_url(&dbs.production)),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/20260101000000_add_phone.sql"),
        "ALTER TABLE users ADD COLUMN phone text;",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("scrub.sql"),
        "UPDATE users SET email = 'user' || id || '@example.invalid';\nTRUNCATE audit;\n",
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

fn assert_refused_naming_both(out: &str, dbs: &Databases) {
    assert!(
        out.contains("database `main` of environment `staging`")
            && out.contains("protected environment `production`"),
        "{out}"
    );
    // The shared identity, as the server said it.
    assert!(
        out.contains(&format!("postgres database `{}`", dbs.production)) && out.contains("oid"),
        "{out}"
    );
    assert!(out.contains("before any write"), "{out}");
    assert!(
        !out.contains("postgres://") && !out.contains("postgresql://"),
        "{out}"
    );
}

#[test]
fn every_spelling_of_productions_database_is_psql_reachable() {
    // The attack is only an attack if each spelling really reaches production's database.
    let dbs = Databases::new("reach");
    for (how, url) in other_spellings(&dbs.production) {
        let out = StdCommand::new("psql")
            .arg(&url)
            .args(["-Atc", "SELECT current_database()"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            dbs.production,
            "{how}: {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn refresh_is_refused_when_staging_names_productions_database_in_another_spelling() {
    let dbs = Databases::new("refresh");
    let before = dbs.production_digest();
    for (how, url) in other_spellings(&dbs.production) {
        let dir = project(&dbs, &url);
        let (code, out) = staging(dir.path(), &["refresh", "--env", "staging"]);
        assert_eq!(code, Some(2), "{how}: {out}");
        assert_refused_naming_both(&out, &dbs);
        assert_eq!(
            dbs.production_digest(),
            before,
            "{how}: production was changed: {out}"
        );
    }
}

#[test]
fn migrate_apply_is_refused_when_staging_names_productions_database_in_another_spelling() {
    let dbs = Databases::new("migrate");
    let before = dbs.production_digest();
    for (how, url) in other_spellings(&dbs.production) {
        let dir = project(&dbs, &url);
        // A dry run reaches the identity check alone (the offline comparison of URL text
        // runs before a real apply, and catches a spelling that names the database alike).
        let (code, out) = staging(
            dir.path(),
            &["migrate", "apply", "--env", "staging", "--dry-run"],
        );
        assert_eq!(code, Some(2), "{how} --dry-run: {out}");
        assert_refused_naming_both(&out, &dbs);
        let (code, out) = staging(dir.path(), &["migrate", "apply", "--env", "staging"]);
        assert_eq!(code, Some(2), "{how}: {out}");
        assert!(
            out.contains("environment `staging`")
                && out.contains("protected environment `production`")
                && out.contains(&dbs.production),
            "{how}: {out}"
        );
        assert_eq!(dbs.production_digest(), before, "{how}: {out}");
    }
    assert_eq!(
        psql(
            &dbs.production,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'staging_migrations'"
        ),
        "0"
    );
}

#[test]
fn two_databases_on_one_server_are_two_databases() {
    // No false refusal: staging's own database, on the same server, spelt like production's.
    let dbs = Databases::new("distinct");
    let before = dbs.production_digest();
    let dir = project(
        &dbs,
        &format!("postgresql://postgres@localhost/{}", dbs.staging),
    );
    let (code, out) = staging(dir.path(), &["migrate", "apply", "--env", "staging"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        psql(
            &dbs.staging,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'phone'"
        ),
        "1"
    );
    let (code, out) = staging(dir.path(), &["refresh", "--env", "staging"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        psql(
            &dbs.staging,
            "SELECT count(*) FROM users WHERE email LIKE '%@example.invalid'"
        ),
        "2",
        "{out}"
    );
    assert_eq!(psql(&dbs.staging, "SELECT count(*) FROM audit"), "0");
    assert_eq!(dbs.production_digest(), before);
}

#[test]
fn a_staging_database_whose_identity_cannot_be_read_is_refused_with_exit_3() {
    let dbs = Databases::new("unread");
    let before = dbs.production_digest();
    // Nothing listens on port 1; and a database the server says does not exist.
    for url in [
        format!(
            "postgres://postgres@127.0.0.1:1/{}?connect_timeout=2",
            dbs.staging
        ),
        "postgres://postgres@127.0.0.1:5432/dbid_no_such_database".to_owned(),
    ] {
        let dir = project(&dbs, &url);
        for args in [
            &["migrate", "apply", "--env", "staging"][..],
            &["refresh", "--env", "staging"][..],
        ] {
            let (code, out) = staging(dir.path(), args);
            assert_eq!(code, Some(3), "{args:?}: {out}");
            assert!(
                out.contains("cannot read what database `main` of environment `staging` is"),
                "{out}"
            );
            assert!(!out.contains("postgres://"), "{out}");
        }
    }
    assert_eq!(dbs.production_digest(), before);
}

#[test]
fn productions_database_whose_url_is_read_but_whose_server_is_silent_refuses_with_exit_3() {
    // Production's URL names a server that cannot be reached from here: it might be
    // staging's own database under a name only production resolves, so nothing is written.
    let dbs = Databases::new("silent");
    let dir = project(&dbs, &production_url(&dbs.staging));
    std::fs::write(
        dir.path().join("production.env"),
        "DATABASE_URL=postgres://postgres@127.0.0.1:1/prod?connect_timeout=2\n",
    )
    .unwrap();
    let (code, out) = staging(dir.path(), &["migrate", "apply", "--env", "staging"]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("cannot read what database `main` of environment `production` is"),
        "{out}"
    );
    assert_eq!(
        psql(
            &dbs.staging,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'staging_migrations'"
        ),
        "0",
        "staging was migrated although production could not be compared"
    );
}

#[test]
fn a_database_shared_on_purpose_with_an_unprotected_environment_passes() {
    // `shared_with` between two unprotected environments: declared, so not refused.
    let dbs = Databases::new("shared");
    let dir = project(&dbs, &production_url(&dbs.staging));
    let spec = dir.path().join("staging.toml");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("protected = true\n", "")
        .replace(
            "url_var = \"DATABASE_URL\"\n",
            "url_var = \"DATABASE_URL\"\nshared_with = [\"production\"]\n",
        );
    std::fs::write(&spec, text).unwrap();
    std::fs::write(
        dir.path().join("production.env"),
        format!(
            "DATABASE_URL=postgresql://postgres@localhost/{}\n",
            dbs.staging
        ),
    )
    .unwrap();
    let (code, out) = staging(dir.path(), &["migrate", "apply", "--env", "staging"]);
    assert_eq!(code, Some(0), "{out}");
    // Undeclared, the same layout is refused.
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("shared_with = [\"production\"]\n", "");
    std::fs::write(&spec, text).unwrap();
    let (code, out) = staging(dir.path(), &["migrate", "apply", "--env", "staging"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("shared_with"), "{out}");
}

#[test]
fn up_is_refused_at_the_migrate_step_when_staging_names_productions_database() {
    // The migrate step of `up` takes the same target: production's database in another
    // spelling is refused before any migration, exit 2, production unchanged.
    let dbs = Databases::new("up");
    let before = dbs.production_digest();
    let dir = project(
        &dbs,
        &format!("postgresql://postgres@localhost/{}", dbs.production),
    );
    let (code, out) = staging(
        dir.path(),
        &[
            "up",
            "--env",
            "staging",
            "--commit",
            "1111111aaaaaaaabbbbbbbbccccccccddddddddd",
        ],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("database `main` of environment `staging`")
            && out.contains("protected environment `production`"),
        "{out}"
    );
    assert_eq!(dbs.production_digest(), before, "{out}");
}
