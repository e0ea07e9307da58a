//! `staging refresh` of a Neon branch: the branch is reset from its parent through Prism and
//! the fake (whose branches are real local Postgres databases, copied from the parent the way
//! a Neon branch starts as its parent's data), then the scrub runs on the URL the branch
//! reports; the refreshed database is queried to show the planted personal data is gone.

mod support;

use std::process::Command;
use std::sync::Arc;

use staging_core::DatabaseBranch;
use staging_core::database_target::issue_database_targets;
use staging_core::spec::{LoadOptions, LoadedSpec, Scrub};
use staging_migrate::ServerIdentity;
use staging_migrate::guard::StaticUrls;
use staging_migrate::refresh::{CopyFrom, Refresh};
use support::{branch, spec, stand_in};

const PERSONAL: &str = "alice.liddell@wonderland.example";

fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
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
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn refreshing_a_neon_branch_resets_it_from_production_and_scrubs_the_personal_data() {
    let s = stand_in();
    let prefix = format!("neonrf_{}", std::process::id());
    let (main, staging) = (format!("{prefix}_main"), format!("{prefix}_staging"));
    for db in [&main, &staging] {
        psql(
            "test",
            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        );
        psql("test", &format!("CREATE DATABASE {db}"));
    }
    psql(
        &main,
        &format!(
            "CREATE TABLE users (id serial PRIMARY KEY, email text, name text);
             INSERT INTO users (email, name) VALUES ('{PERSONAL}', 'Alice Liddell'), ('bob@builder.example', 'Bob');"
        ),
    );
    psql(&staging, "CREATE TABLE stale (id int)");
    s.fake.project("proj-refresh");
    s.fake.existing_branch("proj-refresh", "staging");
    s.fake
        .with("proj-refresh", |p| p.postgres_prefix = Some(prefix.clone()));
    let dir = std::env::temp_dir().join(format!("{prefix}-scrub"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("users.sql"),
        "UPDATE users SET email = 'user' || id || '@example.invalid', name = 'User ' || id;",
    )
    .unwrap();
    // The branch's database, identified by its server and compared with production's
    // before anything is written.
    let neon = Arc::new(branch(spec("proj-refresh", "staging", "main")));
    let loaded = LoadedSpec::parse(
        dir.join("staging.toml"),
        "[project]\nname = \"x\"\n[environments.staging]\nprovider = \"local\"\n[environments.production]\nprovider = \"local\"\nprotected = true\n[vars.DATABASE_URL]\nsecret = true\n[databases.main]\nurl_var = \"DATABASE_URL\"\n".to_owned(),
        LoadOptions::new(&["local"]),
    )
    .unwrap();
    let production = StaticUrls::new().with(
        "production",
        "DATABASE_URL",
        format!("postgres://postgres@127.0.0.1:5432/{main}").into(),
    );
    let url = neon.connection_url().await.unwrap();
    let target = issue_database_targets(
        &loaded,
        "staging",
        vec![("main".into(), url)],
        &production,
        &ServerIdentity,
    )
    .await
    .unwrap()
    .get("main")
    .unwrap()
    .clone();
    assert_eq!(target.compared_with(), ["production"]);
    let refresh = Refresh {
        database: "main".into(),
        source: "production".into(),
        target: "staging".into(),
        copy: CopyFrom::Branch(neon, target),
        scrub: Some(Scrub {
            sql: vec!["users.sql".into()],
            command: None,
            tables: vec![],
            verify: vec![],
            allow_domains: vec![],
        }),
        base_dir: dir.clone(),
        seed: None,
        strict: false,
    };
    let report = refresh.run(|_url| async { Ok(vec![]) }).await;
    assert!(report.ok(), "{report:?}");
    assert!(report.scrub_applied);
    assert!(
        report.method.contains("neon branch `staging`"),
        "{}",
        report.method
    );
    assert_eq!(report.tables.len(), 1);
    assert_eq!(
        (report.tables[0].before, report.tables[0].after),
        (Some(2), Some(2))
    );
    // The branch now holds production's rows, scrubbed; its own old table is gone.
    assert_eq!(psql(&staging, "SELECT count(*) FROM users"), "2");
    assert_eq!(
        psql(
            &staging,
            &format!(
                "SELECT count(*) FROM users WHERE email = '{PERSONAL}' OR name LIKE '%Liddell%'"
            )
        ),
        "0"
    );
    assert_eq!(psql(&staging, "SELECT to_regclass('stale') IS NULL"), "t");
    assert_eq!(
        psql(
            &main,
            &format!("SELECT count(*) FROM users WHERE email = '{PERSONAL}'")
        ),
        "1",
        "production keeps its data"
    );
    s.prism.assert_no_violations();
    for db in [&main, &staging] {
        psql(
            "test",
            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
