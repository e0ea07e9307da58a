//! `staging refresh` on plain Postgres: two real local databases stand in for production and
//! staging; pg_dump/pg_restore copy one into the other, staging's migrations run, then the
//! scrub; the refreshed database is queried to show the planted personal data is gone.

use std::path::Path;
use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use assert_cmd::Command;

#[path = "../../provider-neon/tests/support/mod.rs"]
mod neon;
#[path = "../../provider-supabase/tests/support/mod.rs"]
mod supabase;

const PERSONAL: &str = "alice.liddell@wonderland.example";

fn psql(db: &str, sql: &str) -> String {
    let out = StdCommand::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Two fresh databases, dropped when the test ends.
struct Databases {
    production: String,
    staging: String,
}

impl Databases {
    fn new(tag: &str) -> Databases {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let id = format!("{tag}_{}_{n}", std::process::id());
        Databases::named(
            format!("refresh_production_{id}"),
            format!("refresh_staging_{id}"),
        )
    }

    /// Production's database with planted personal data, and staging's with a stale row.
    fn named(production: String, staging: String) -> Databases {
        let d = Databases {
            production,
            staging,
        };
        for db in [&d.production, &d.staging] {
            psql("test", &format!("DROP DATABASE IF EXISTS {db}"));
            psql("test", &format!("CREATE DATABASE {db}"));
        }
        psql(
            &d.production,
            &format!(
                "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, name text NOT NULL);
                 INSERT INTO users (email, name) VALUES ('{PERSONAL}', 'Alice Liddell'),
                   ('bob@builder.example', 'Bob Builder'), ('carol@example.org', 'Carol Danvers');"
            ),
        );
        psql(
            &d.staging,
            "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, name text NOT NULL);
             INSERT INTO users (email, name) VALUES ('stale@staging.example', 'Stale');",
        );
        d
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

fn project(dbs: &Databases, scrub_sql: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let url = |db: &str| format!("postgres://postgres@127.0.0.1:5432/{db}");
    std::fs::write(
        dir.path().join("staging.toml"),
        r#"[project]
name = "refresh"

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
scrub = { sql = ["scrub/users.sql"] }

# Re-run by refresh on the copy: nothing personal may be left.
[[probes]]
name = "no-personal-data"
postgres = { url_var = "DATABASE_URL", round_trip = false, query = "SELECT count(*) FROM users WHERE email NOT LIKE '%@example.invalid'", expect_rows = [["0"]] }
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        format!("DATABASE_URL={}\n", url(&dbs.staging)),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("production.env"),
        format!("DATABASE_URL={}\n", url(&dbs.production)),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/20260101000000_add_phone.sql"),
        "ALTER TABLE users ADD COLUMN phone text;",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("scrub")).unwrap();
    std::fs::write(dir.path().join("scrub/users.sql"), scrub_sql).unwrap();
    dir
}

/// A project whose staging database is the branch `branch` names (`{ neon = {..} }`); its
/// own `DATABASE_URL` source names a database that does not exist, so only the branch's URL
/// can work.
fn branch_project(dbs: &Databases, branch: &str) -> tempfile::TempDir {
    let dir = project(dbs, SCRUB);
    let path = dir.path().join("staging.toml");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "url_var = \"DATABASE_URL\"\n",
        &format!("url_var = \"DATABASE_URL\"\nbranch = {branch}\n"),
        1,
    );
    std::fs::write(&path, text).unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        "DATABASE_URL=postgres://postgres@127.0.0.1:5432/no_such_database_not_the_branch\n",
    )
    .unwrap();
    dir
}

/// What a branch refresh must leave: production's rows in the branch, migrated, with
/// nothing personal left, production untouched, and evidence that says so.
fn assert_refreshed_and_scrubbed(dbs: &Databases, dir: &Path, out: &str, method: &str) {
    assert_eq!(
        psql(&dbs.staging, "SELECT count(*) FROM users"),
        "3",
        "{out}"
    );
    assert_eq!(
        psql(
            &dbs.staging,
            &format!(
                "SELECT count(*) FROM users WHERE email = '{PERSONAL}' OR name LIKE '%Liddell%' OR email NOT LIKE '%@example.invalid'"
            )
        ),
        "0",
        "personal data survived the refresh: {out}"
    );
    assert_eq!(
        psql(
            &dbs.staging,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'phone'"
        ),
        "1",
        "staging's migrations ran on the copy"
    );
    assert_eq!(
        psql(
            &dbs.production,
            &format!("SELECT count(*) FROM users WHERE email = '{PERSONAL}'")
        ),
        "1",
        "production keeps its data"
    );
    let ev = evidence_text(dir);
    assert!(ev.contains(method), "{ev}");
    assert!(ev.contains("scrub applied (scrub/users.sql)"), "{ev}");
    assert!(ev.contains("users: 3 rows before, 3 after"), "{ev}");
    assert!(ev.contains("no-personal-data"), "{ev}");
    assert!(!ev.contains(PERSONAL) && !out.contains(PERSONAL));
    assert!(!ev.contains("postgres://") && !out.contains("postgres://"));
    assert!(!ev.contains("postgresql://") && !out.contains("postgresql://"));
}

fn staging(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    staging_with(dir, args, &[])
}

fn staging_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("-f")
        .arg(dir.join("staging.toml"))
        .args(args)
        .envs(env.iter().copied())
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

fn evidence_text(dir: &Path) -> String {
    let mut all = String::new();
    let mut stack = vec![dir.join(".staging")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    all
}

const SCRUB: &str =
    "UPDATE users SET email = 'user' || id || '@example.invalid', name = 'User ' || id;\n";

#[test]
fn refresh_copies_production_migrates_and_scrubs_the_planted_personal_data() {
    let dbs = Databases::new("ok");
    let dir = project(&dbs, SCRUB);
    let (code, out) = staging(dir.path(), &["refresh", "--env", "staging"]);
    assert_eq!(code, Some(0), "{out}");
    // The refreshed database holds production's rows, migrated, with nothing personal left.
    assert_eq!(psql(&dbs.staging, "SELECT count(*) FROM users"), "3");
    assert_eq!(
        psql(
            &dbs.staging,
            &format!(
                "SELECT count(*) FROM users WHERE email = '{PERSONAL}' OR name LIKE '%Liddell%' OR email LIKE '%@%.example' OR email LIKE '%example.org'"
            )
        ),
        "0",
        "personal data survived the refresh"
    );
    assert_eq!(
        psql(&dbs.staging, "SELECT email FROM users ORDER BY id LIMIT 1"),
        "user1@example.invalid"
    );
    assert_eq!(
        psql(
            &dbs.staging,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'phone'"
        ),
        "1",
        "staging's migrations ran on the copy"
    );
    assert_eq!(
        psql(
            &dbs.staging,
            "SELECT count(*) FROM users WHERE email LIKE 'stale%'"
        ),
        "0"
    );
    // Production is untouched.
    assert_eq!(
        psql(
            &dbs.production,
            &format!("SELECT count(*) FROM users WHERE email = '{PERSONAL}'")
        ),
        "1"
    );
    // The evidence says what was copied, from where, and what the scrub did.
    let ev = evidence_text(dir.path());
    assert!(
        ev.contains("staging <- production by pg_dump | pg_restore"),
        "{ev}"
    );
    assert!(ev.contains("scrub applied (scrub/users.sql)"), "{ev}");
    assert!(ev.contains("users: 3 rows before, 3 after"), "{ev}");
    assert!(ev.contains("20260101000000_add_phone"), "{ev}");
    // The database probes ran on the refreshed data, and passed.
    assert!(ev.contains("no-personal-data"), "{ev}");
    assert!(!ev.contains(PERSONAL) && !out.contains(PERSONAL));
    assert!(!ev.contains("postgres://") && !out.contains("postgres://"));
}

#[test]
fn refresh_is_refused_on_a_protected_environment_before_anything_is_written() {
    let dbs = Databases::new("protected");
    let dir = project(&dbs, SCRUB);
    let (code, out) = staging(
        dir.path(),
        &["refresh", "--env", "production", "--from", "staging"],
    );
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("protected"), "{out}");
    assert_eq!(
        psql(
            &dbs.production,
            &format!("SELECT count(*) FROM users WHERE email = '{PERSONAL}'")
        ),
        "1",
        "production was not touched"
    );
    assert_eq!(psql(&dbs.production, "SELECT count(*) FROM users"), "3");
}

#[test]
fn a_failing_scrub_fails_the_run_and_says_the_environment_holds_unscrubbed_data() {
    let dbs = Databases::new("badscrub");
    let dir = project(
        &dbs,
        "UPDATE users SET email = 'x';\nUPDATE no_such_table SET a = 1;\n",
    );
    let (code, out) = staging(dir.path(), &["refresh", "--env", "staging"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAILED") && out.contains("unscrubbed"),
        "{out}"
    );
    assert!(out.contains("no_such_table"), "{out}");
    let ev = evidence_text(dir.path());
    assert!(ev.contains("scrub NOT applied"), "{ev}");
    assert!(ev.contains("\"failed\"") || ev.contains("failed"), "{ev}");
}

#[test]
fn refresh_says_when_pg_dump_is_missing() {
    let dbs = Databases::new("nopgdump");
    let dir = project(&dbs, SCRUB);
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("-f")
        .arg(dir.path().join("staging.toml"))
        .args(["refresh", "--env", "staging"])
        .env("PATH", "/nonexistent")
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("pg_dump") && text.contains("PATH"), "{text}");
    assert_eq!(
        psql(
            &dbs.staging,
            "SELECT count(*) FROM users WHERE email LIKE 'stale%'"
        ),
        "1",
        "nothing was written"
    );
}

#[test]
fn the_neon_and_supabase_examples_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for example in ["examples/neon", "examples/supabase"] {
        let (code, out) = staging(&root.join(example), &["validate", "--env", "staging"]);
        assert_eq!(code, Some(0), "{example}: {out}");
    }
}

#[test]
fn plan_shows_what_a_refresh_would_do_and_that_production_is_never_refreshed() {
    let dbs = Databases::new("plan");
    let dir = project(&dbs, SCRUB);
    let (_, out) = staging(
        dir.path(),
        &[
            "plan",
            "--env",
            "staging",
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
        ],
    );
    assert!(
        out.contains("refresh: `staging refresh` copies from `production`: pg_dump of `production`'s database, pg_restore into this one, then migrations, then scrub scrub/users.sql"),
        "{out}"
    );
    let (_, out) = staging(
        dir.path(),
        &[
            "plan",
            "--env",
            "production",
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
        ],
    );
    assert!(
        out.contains("never refreshed: the environment is protected"),
        "{out}"
    );
    assert_eq!(
        psql(
            &dbs.staging,
            "SELECT count(*) FROM users WHERE email LIKE 'stale%'"
        ),
        "1",
        "plan wrote nothing"
    );
}

#[test]
fn refresh_of_a_supabase_branch_resets_it_from_production_and_scrubs_the_planted_personal_data() {
    let s = supabase::stand_in();
    let id = format!("{}", std::process::id());
    let dbs = Databases::named(
        format!("sbrefresh_production_{id}"),
        format!("sbrefresh_staging_{id}"),
    );
    let project_ref = supabase::fake::parent("clirefresh");
    s.fake.existing_branch(&project_ref, "staging");
    s.fake.state().postgres.insert(
        project_ref.clone(),
        supabase::fake::LocalDatabases {
            parent: dbs.production.clone(),
            branch: dbs.staging.clone(),
        },
    );
    let dir = branch_project(
        &dbs,
        &format!(
            "{{ supabase = {{ project_ref = \"{project_ref}\", branch = \"staging\", database = \"{}\" }} }}",
            dbs.staging
        ),
    );
    let url = s.prism.url();
    let (code, out) = staging_with(
        dir.path(),
        &["refresh", "--env", "staging"],
        &[
            ("SUPABASE_ACCESS_TOKEN", supabase::TOKEN),
            ("SUPABASE_API_URL", &url),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        s.fake.branch(&project_ref, "staging").unwrap().resets,
        1,
        "{out}"
    );
    assert_refreshed_and_scrubbed(&dbs, dir.path(), &out, "supabase branch `staging`");
    assert!(!out.contains(supabase::fake::DB_PASS), "{out}");
    assert!(!evidence_text(dir.path()).contains(supabase::fake::DB_PASS));
    s.prism.assert_no_violations();
}

#[test]
fn refresh_of_a_neon_branch_resets_it_from_production_and_scrubs_the_planted_personal_data() {
    let s = neon::stand_in();
    let prefix = format!("neoncli_{}", std::process::id());
    let project_id = format!("proj-cli-{}", std::process::id());
    // The fake's branches are the local databases `<prefix>_<branch name>`.
    let dbs = Databases::named(format!("{prefix}_main"), format!("{prefix}_staging"));
    s.fake.project(&project_id);
    s.fake.existing_branch(&project_id, "staging");
    s.fake
        .with(&project_id, |p| p.postgres_prefix = Some(prefix.clone()));
    let dir = branch_project(
        &dbs,
        &format!(
            "{{ neon = {{ project_id = \"{project_id}\", branch = \"staging\", parent = \"main\" }} }}"
        ),
    );
    let url = s.prism.url();
    let (code, out) = staging_with(
        dir.path(),
        &["refresh", "--env", "staging"],
        &[("NEON_API_KEY", neon::API_KEY), ("NEON_API_URL", &url)],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_refreshed_and_scrubbed(&dbs, dir.path(), &out, "neon branch `staging`");
    s.prism.assert_no_violations();
}

/// Production's rows as they must be found in staging after every refresh.
fn assert_production_rows_scrubbed_with_the_migrations(dbs: &Databases, out: &str) {
    assert_eq!(
        psql(&dbs.staging, "SELECT count(*) FROM users"),
        "3",
        "{out}"
    );
    assert_eq!(
        psql(
            &dbs.staging,
            "SELECT count(*) FROM users WHERE email NOT LIKE '%@example.invalid'"
        ),
        "0",
        "personal data survived the refresh: {out}"
    );
    assert_eq!(
        psql(
            &dbs.staging,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'phone'"
        ),
        "1",
        "{out}"
    );
    assert_eq!(
        psql(
            &dbs.staging,
            "SELECT to_regclass('public.orders') IS NOT NULL"
        ),
        "t",
        "the staging-only migration is applied again on the copy: {out}"
    );
    assert_eq!(psql(&dbs.staging, "SELECT count(*) FROM orders"), "0");
}

#[test]
fn refresh_passes_again_and_again_when_staging_is_ahead_of_production() {
    let dbs = Databases::new("ahead");
    let dir = project(&dbs, SCRUB);
    let (code, out) = staging(dir.path(), &["refresh", "--env", "staging"]);
    assert_eq!(code, Some(0), "first refresh: {out}");
    // A migration only staging has: a table whose foreign key depends on production's
    // primary key (what `pg_restore --clean` cannot drop).
    std::fs::write(
        dir.path().join("migrations/20260102000000_orders.sql"),
        "CREATE TABLE orders (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES users (id));\nCREATE SCHEMA reporting;\nCREATE VIEW reporting.user_orders AS SELECT u.id, count(o.id) AS n FROM users u LEFT JOIN orders o ON o.user_id = u.id GROUP BY u.id;",
    )
    .unwrap();
    let (code, out) = staging(dir.path(), &["migrate", "apply", "--env", "staging"]);
    assert_eq!(code, Some(0), "the staging-only migration: {out}");
    assert_eq!(
        psql(
            &dbs.staging,
            "SELECT to_regclass('public.orders') IS NOT NULL"
        ),
        "t"
    );
    for round in ["second", "third"] {
        let (code, out) = staging(dir.path(), &["refresh", "--env", "staging"]);
        assert_eq!(code, Some(0), "{round} refresh: {out}");
        assert_production_rows_scrubbed_with_the_migrations(&dbs, &out);
        assert!(out.contains("20260102000000_orders"), "{round}: {out}");
    }
    // What each table held before and after the copy, and what production's dump had.
    let ev = evidence_text(dir.path());
    assert!(
        ev.contains("rows before -> after the copy: ")
            && ev.contains("users 3 -> 3 (3 in production)"),
        "{ev}"
    );
    assert!(ev.contains("staging <- production by pg_dump"), "{ev}");
    assert!(!ev.contains(PERSONAL) && !out.contains(PERSONAL));
    assert_eq!(
        psql(
            &dbs.production,
            "SELECT to_regclass('public.orders') IS NULL"
        ),
        "t",
        "production never gets staging's migration"
    );
}

#[test]
fn a_refresh_that_cannot_replay_the_dump_leaves_staging_as_it_was() {
    let dbs = Databases::new("atomic");
    // A schema the connecting role may not drop holds a table the dump creates too: the
    // replay fails, and its one transaction leaves staging untouched.
    psql(
        "test",
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'refresh_other') THEN CREATE ROLE refresh_other; END IF; END $$",
    );
    psql(
        &dbs.production,
        "CREATE SCHEMA audit; CREATE TABLE audit.log (id int); INSERT INTO audit.log VALUES (1);",
    );
    let dir = project(&dbs, SCRUB);
    // Staging connects as a role that owns `public` but not `audit`.
    let role = format!("refresh_staging_role_{}", std::process::id());
    psql(
        "test",
        &format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN"),
    );
    psql(
        &dbs.staging,
        &format!(
            "CREATE SCHEMA audit AUTHORIZATION refresh_other; CREATE TABLE audit.log (id int); ALTER TABLE audit.log OWNER TO refresh_other;
             ALTER SCHEMA public OWNER TO {role}; ALTER TABLE users OWNER TO {role};"
        ),
    );
    std::fs::write(
        dir.path().join("staging.env"),
        format!(
            "DATABASE_URL=postgres://{role}@127.0.0.1:5432/{}\n",
            dbs.staging
        ),
    )
    .unwrap();
    let (code, out) = staging(dir.path(), &["refresh", "--env", "staging"]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("nothing was changed"), "{out}");
    assert_eq!(
        psql(
            &dbs.staging,
            "SELECT count(*) FROM users WHERE email LIKE 'stale%'"
        ),
        "1",
        "staging keeps its rows: {out}"
    );
    assert!(!out.contains(PERSONAL), "{out}");
    psql(
        &dbs.staging,
        &format!("REASSIGN OWNED BY {role} TO postgres"),
    );
    psql(&dbs.staging, &format!("DROP OWNED BY {role}"));
    psql("test", &format!("DROP ROLE IF EXISTS {role}"));
}

#[test]
fn a_supabase_reset_that_brings_no_data_is_reported_as_data_less_and_runs_the_seed() {
    let s = supabase::stand_in();
    let id = format!("{}", std::process::id());
    let dbs = Databases::named(
        format!("sbdataless_production_{id}"),
        format!("sbdataless_staging_{id}"),
    );
    let project_ref = supabase::fake::parent("clidataless");
    s.fake.existing_branch(&project_ref, "staging");
    {
        let mut st = s.fake.state();
        st.postgres.insert(
            project_ref.clone(),
            supabase::fake::LocalDatabases {
                parent: dbs.production.clone(),
                branch: dbs.staging.clone(),
            },
        );
        // What Supabase documents: the branch is rebuilt from its migrations, with no data.
        st.data_less_resets.insert(
            project_ref.clone(),
            "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, name text NOT NULL);"
                .to_owned(),
        );
    }
    let dir = branch_project(
        &dbs,
        &format!(
            "{{ supabase = {{ project_ref = \"{project_ref}\", branch = \"staging\", database = \"{}\" }} }}",
            dbs.staging
        ),
    );
    let path = dir.path().join("staging.toml");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "scrub = {",
        "seed = [\"sh\", \"-c\", \"psql \\\"$DATABASE_URL\\\" -qc \\\"INSERT INTO users (email, name) VALUES ('seed@example.invalid', 'Seed')\\\"\"]\nscrub = {",
        1,
    );
    std::fs::write(&path, text).unwrap();
    let url = s.prism.url();
    let (code, out) = staging_with(
        dir.path(),
        &["refresh", "--env", "staging"],
        &[
            ("SUPABASE_ACCESS_TOKEN", supabase::TOKEN),
            ("SUPABASE_API_URL", &url),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    // The seed's one row (then scrubbed like any other), not production's three.
    assert_eq!(
        psql(&dbs.staging, "SELECT count(*) FROM users"),
        "1",
        "{out}"
    );
    let ev = evidence_text(dir.path());
    assert!(
        ev.contains("data-less branch reset") && ev.contains("no data of production arrived"),
        "{ev}"
    );
    assert!(ev.contains("seed: ran `sh -c"), "{ev}");
    assert!(
        ev.contains("rows before -> after the copy: users 1 -> 0"),
        "{ev}"
    );
    assert!(
        !ev.contains("staging <- production") && !out.contains("staging <- production"),
        "evidence never says production's data arrived: {ev}"
    );
    assert!(!out.contains(supabase::fake::DB_PASS), "{out}");
    assert!(!ev.contains(supabase::fake::DB_PASS));
    s.prism.assert_no_violations();
}

/// A project whose production `users` has a `notes` column the scrub does not name, with an
/// e-mail address and a phone number planted in one row.
fn planted_notes_project(dbs: &Databases, verify: &str) -> tempfile::TempDir {
    psql(
        &dbs.production,
        "ALTER TABLE users ADD COLUMN notes text;
         UPDATE users SET notes = 'reach me at dave.planted@mailbox.org or +44 20 7946 0958' WHERE id = 2;
         UPDATE users SET notes = 'order 2026-01-01, ticket 12345678' WHERE id = 3;",
    );
    let dir = project(dbs, SCRUB);
    let path = dir.path().join("staging.toml");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "scrub = { sql = [\"scrub/users.sql\"] }",
        &format!("scrub = {{ sql = [\"scrub/users.sql\"]{verify} }}"),
        1,
    );
    std::fs::write(&path, text).unwrap();
    dir
}

#[test]
fn a_planted_email_in_a_column_the_scrub_does_not_name_is_reported_and_fails_with_strict() {
    let dbs = Databases::new("pii");
    let dir = planted_notes_project(&dbs, "");
    let (code, out) = staging(dir.path(), &["refresh", "--env", "staging"]);
    assert_eq!(
        code,
        Some(0),
        "reported, not failed, without --strict: {out}"
    );
    let ev = evidence_text(dir.path());
    for text in [&out, &ev] {
        assert!(
            text.contains("users.notes: 1 row(s) with an e-mail address"),
            "{text}"
        );
        assert!(
            text.contains("users.notes: 1 row(s) with a phone number"),
            "{text}"
        );
        // The scrubbed columns and the date and ticket number are not reported.
        assert!(!text.contains("users.email:"), "{text}");
        assert!(!text.contains("2 row(s)"), "{text}");
        // Never the values.
        assert!(
            !text.contains("dave.planted") && !text.contains("7946"),
            "{text}"
        );
    }
    let (code, out) = staging(dir.path(), &["refresh", "--env", "staging", "--strict"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("personal data is left after the scrub (--strict)")
            && out.contains("users.notes: 1 row(s) with an e-mail address")
            && out.contains("unscrubbed"),
        "{out}"
    );
    assert!(!out.contains("dave.planted"), "{out}");
}

#[test]
fn a_scrub_verify_check_that_matches_fails_the_refresh_without_strict() {
    let dbs = Databases::new("verify");
    let dir = planted_notes_project(
        &dbs,
        ", verify = [{ table = \"users\", column = \"notes\", pattern = \"@\" }]",
    );
    let (code, out) = staging(dir.path(), &["refresh", "--env", "staging"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("users.notes: 1 row(s) with a value matching its scrub.verify pattern"),
        "{out}"
    );
    assert!(!out.contains("dave.planted"), "{out}");
}

#[test]
fn a_scrub_verify_entry_that_names_no_column_is_refused_at_its_line() {
    let dbs = Databases::new("verifybad");
    let dir = planted_notes_project(
        &dbs,
        ", verify = [{ table = \"users\", column = \"e mail\", pattern = \"@\" }]",
    );
    let (code, out) = staging(dir.path(), &["validate", "--env", "staging"]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("staging.toml:") && out.contains("`e mail` is not a column name"),
        "{out}"
    );
}

/// `up` on `dir`'s staging: its exit code and output.
fn up(dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "up",
        "--env",
        "staging",
        "--commit",
        "0123456789abcdef0123456789abcdef01234567",
    ];
    args.extend_from_slice(extra);
    staging(dir, &args)
}

#[test]
fn up_and_smoke_refuse_after_a_failed_scrub_until_a_refresh_passes() {
    let dbs = Databases::new("unscrubbed");
    let dir = project(
        &dbs,
        "UPDATE users SET email = 'x';\nUPDATE no_such_table SET a = 1;\n",
    );
    let (code, out) = staging(dir.path(), &["refresh", "--env", "staging"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("marked as holding UNSCRUBBED data"), "{out}");
    let (code, out) = up(dir.path(), &[]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("holds UNSCRUBBED production data in database `main`"),
        "{out}"
    );
    let (code, out) = staging(
        dir.path(),
        &[
            "smoke",
            "--env",
            "staging",
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
        ],
    );
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("UNSCRUBBED"), "{out}");
    // The override runs, and is on record.
    let (_, out) = up(dir.path(), &["--allow-unscrubbed"]);
    assert!(!out.contains("holds UNSCRUBBED"), "{out}");
    assert!(
        evidence_text(dir.path()).contains("ran with --allow-unscrubbed on unscrubbed data"),
        "{out}"
    );
    // A refresh whose scrub passes clears the state.
    std::fs::write(dir.path().join("scrub/users.sql"), SCRUB).unwrap();
    let (code, out) = staging(dir.path(), &["refresh", "--env", "staging"]);
    assert_eq!(code, Some(0), "{out}");
    let (_, out) = up(dir.path(), &[]);
    assert!(!out.contains("UNSCRUBBED"), "{out}");
}

#[test]
fn a_refresh_stopped_by_sigterm_mid_restore_leaves_the_environment_marked_unscrubbed() {
    let dbs = Databases::new("sigterm");
    let dir = project(&dbs, SCRUB);
    // A `psql` first on PATH that says it started, then waits: the refresh is stopped while
    // its restore runs.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let started = dir.path().join("restore-started");
    let real = String::from_utf8(
        StdCommand::new("sh")
            .args(["-c", "command -v psql"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::write(
        bin.join("psql"),
        format!(
            "#!/bin/sh\ntouch '{}'\nsleep 60\nexec '{}' \"$@\"\n",
            started.display(),
            real.trim()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("psql"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("staging"))
        .arg("-f")
        .arg(dir.path().join("staging.toml"))
        .args(["refresh", "--env", "staging"])
        .env("PATH", &path)
        .env_remove("STAGING_ENV")
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) for the restore to start, then stop the run as CI cancels a job.
    let mut waited = 0;
    while !started.exists() {
        assert!(waited < 1200, "the restore never started");
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    let (code, out) = up(dir.path(), &[]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("holds UNSCRUBBED production data in database `main`"),
        "{out}"
    );
    let (code, out) = staging(dir.path(), &["refresh", "--env", "staging"]);
    assert_eq!(code, Some(0), "{out}");
    let (_, out) = up(dir.path(), &[]);
    assert!(!out.contains("UNSCRUBBED"), "{out}");
}

/// `up` of `dir`'s staging with `env` (a branch provider's credentials).
fn up_with(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut args = vec![
        "up",
        "--env",
        "staging",
        "--commit",
        "0123456789abcdef0123456789abcdef01234567",
    ];
    args.extend_from_slice(extra);
    staging_with(dir, &args, env)
}

/// A fresh Neon project of the stand-in whose branches are local databases `<prefix>_<name>`
/// (`main` holds production's planted rows), and a spec whose staging database is its
/// branch `staging`, not created yet.
fn fresh_neon_project(tag: &str) -> (Databases, tempfile::TempDir, String) {
    let s = neon::stand_in();
    let prefix = format!("{tag}_{}", std::process::id());
    let project_id = format!("proj-{tag}-{}", std::process::id());
    let dbs = Databases::named(format!("{prefix}_main"), format!("{prefix}_staging"));
    s.fake.project(&project_id);
    s.fake
        .with(&project_id, |p| p.postgres_prefix = Some(prefix.clone()));
    let dir = branch_project(
        &dbs,
        &format!(
            "{{ neon = {{ project_id = \"{project_id}\", branch = \"staging\", parent = \"main\" }} }}"
        ),
    );
    (dbs, dir, project_id)
}

const REFUSED: &str = "holds UNSCRUBBED production data in database `main`";

#[test]
fn up_on_a_fresh_neon_project_creates_the_branch_with_an_endpoint_then_refuses_the_fork_until_a_refresh()
 {
    let s = neon::stand_in();
    let (dbs, dir, project_id) = fresh_neon_project("neonup");
    let url = s.prism.url();
    let creds = [
        ("NEON_API_KEY", neon::API_KEY),
        ("NEON_API_URL", url.as_str()),
    ];
    let posts = || {
        s.fake
            .requests(&project_id)
            .into_iter()
            .filter(|r| r.starts_with("POST"))
            .collect::<Vec<_>>()
    };
    // `plan` lists the branch as a creation and creates nothing.
    let (code, out) = staging_with(
        dir.path(),
        &[
            "plan",
            "--env",
            "staging",
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
        ],
        &creds,
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("create neon branch `staging` (database main)"),
        "{out}"
    );
    let (code, out) = staging_with(
        dir.path(),
        &[
            "plan",
            "--env",
            "staging",
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
            "--json",
        ],
        &creds,
    );
    assert_eq!(code, Some(0), "{out}");
    let json_start = out.find('{').unwrap_or_else(|| panic!("no JSON: {out}"));
    let doc: serde_json::Value = serde_json::Deserializer::from_str(&out[json_start..])
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    let create = &doc["create"][0];
    assert_eq!(create["kind"], "neon branch", "{doc}");
    assert_eq!(create["name"], "staging", "{doc}");
    assert_eq!(create["settings"]["parent"], "main", "{doc}");
    assert_eq!(create["settings"]["endpoint"], "read_write", "{doc}");
    assert!(
        doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "branches"),
        "{doc}"
    );
    assert!(posts().is_empty(), "plan wrote: {:?}", posts());

    let (code, out) = up_with(dir.path(), &[], &creds);
    assert_ne!(code, Some(0), "{out}");
    let made = s
        .fake
        .branch(&project_id, "staging")
        .expect("up created the branch");
    assert!(made.has_endpoint, "with a compute endpoint");
    assert_eq!(made.data_of, "main", "forked from production");
    assert_eq!(posts().len(), 1, "{:?}", posts());
    // The fork holds production's data: the same run refuses, naming the state and the way out.
    assert!(out.contains(REFUSED), "{out}");
    assert!(out.contains("staging refresh --env staging"), "{out}");
    assert!(
        evidence_text(dir.path()).contains("`staging up` created the branch from it"),
        "the fork is on record"
    );

    // A second `up` creates nothing, and still refuses.
    let (code, out) = up_with(dir.path(), &[], &creds);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains(REFUSED), "{out}");
    assert_eq!(posts().len(), 1, "nothing created again: {:?}", posts());

    // A refresh whose scrub passes clears it; then `up` runs.
    let (code, out) = staging_with(dir.path(), &["refresh", "--env", "staging"], &creds);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = up_with(dir.path(), &[], &creds);
    assert!(!out.contains("UNSCRUBBED"), "{out}");
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains(PERSONAL), "{out}");
    drop(dbs);
    s.prism.assert_no_violations();
}

#[test]
fn up_on_a_fresh_supabase_project_creates_the_branch_once_and_refuses_the_fork_until_a_refresh() {
    let s = supabase::stand_in();
    let id = format!("{}", std::process::id());
    let dbs = Databases::named(
        format!("sbup_production_{id}"),
        format!("sbup_staging_{id}"),
    );
    let project_ref = supabase::fake::parent("cliup");
    s.fake.state().postgres.insert(
        project_ref.clone(),
        supabase::fake::LocalDatabases {
            parent: dbs.production.clone(),
            branch: dbs.staging.clone(),
        },
    );
    let dir = branch_project(
        &dbs,
        &format!(
            "{{ supabase = {{ project_ref = \"{project_ref}\", branch = \"staging\", database = \"{}\" }} }}",
            dbs.staging
        ),
    );
    let url = s.prism.url();
    let creds = [
        ("SUPABASE_ACCESS_TOKEN", supabase::TOKEN),
        ("SUPABASE_API_URL", url.as_str()),
    ];
    // Every create request makes a branch of the project: counted per project, since the
    // stand-in is shared by the tests of this binary.
    let creates = || {
        s.fake
            .state()
            .branches
            .iter()
            .filter(|b| b.parent_ref == project_ref)
            .count()
    };
    let before = creates();
    let (code, out) = up_with(dir.path(), &[], &creds);
    assert_ne!(code, Some(0), "{out}");
    assert!(s.fake.branch(&project_ref, "staging").is_some(), "{out}");
    assert_eq!(creates(), before + 1, "{out}");
    assert!(out.contains(REFUSED), "{out}");
    let (code, out) = up_with(dir.path(), &[], &creds);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains(REFUSED), "{out}");
    assert_eq!(creates(), before + 1, "a second up creates nothing: {out}");
    let (code, out) = staging_with(dir.path(), &["refresh", "--env", "staging"], &creds);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = up_with(dir.path(), &[], &creds);
    assert!(!out.contains("UNSCRUBBED"), "{out}");
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains(supabase::fake::DB_PASS), "{out}");
    s.prism.assert_no_violations();
}

#[test]
fn a_neon_refresh_stopped_by_sigterm_mid_restore_leaves_the_branch_marked_unscrubbed() {
    let s = neon::stand_in();
    let (dbs, dir, project_id) = fresh_neon_project("neonterm");
    s.fake.existing_branch(&project_id, "staging");
    let url = s.prism.url();
    let creds = [
        ("NEON_API_KEY", neon::API_KEY),
        ("NEON_API_URL", url.as_str()),
    ];
    // The restore is accepted (Neon finishes it anyway) and its operation keeps running.
    s.fake.with(&project_id, |p| p.op_reads = Some(1_000_000));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("staging"))
        .arg("-f")
        .arg(dir.path().join("staging.toml"))
        .args(["refresh", "--env", "staging"])
        .envs(creds)
        .env_remove("STAGING_ENV")
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while !s
        .fake
        .requests(&project_id)
        .iter()
        .any(|r| r.starts_with("GET") && r.contains("/operations/"))
    {
        assert!(waited < 1200, "the restore never started");
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(!child.wait().unwrap().success());
    s.fake.with(&project_id, |p| p.op_reads = None);
    assert_eq!(
        s.fake.branch(&project_id, "staging").unwrap().data_of,
        "main",
        "the platform restored production's data anyway"
    );
    let (code, out) = up_with(dir.path(), &[], &creds);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains(REFUSED), "{out}");
    let (code, out) = staging_with(dir.path(), &["refresh", "--env", "staging"], &creds);
    assert_eq!(code, Some(0), "{out}");
    let (_, out) = up_with(dir.path(), &[], &creds);
    assert!(!out.contains("UNSCRUBBED"), "{out}");
    drop(dbs);
}
