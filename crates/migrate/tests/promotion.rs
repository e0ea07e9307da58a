//! Staging before production, seed refusal, and the pipeline step, through a real spec and
//! real SQLite files.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use common::write;
use secrecy::SecretString;
use staging_core::pipeline::{RunContext, Step, StepStatus};
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_migrate::guard::StaticUrls;
use staging_migrate::{EnvMigrations, MigrateOptions, MigrateStep};

const HEAD: &str = r#"
[project]
name = "t"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[vars.DATABASE_URL]
values = { staging = "sqlite://staging.db", production = "sqlite://production.db" }
"#;

fn load(dir: &Path, databases: &str) -> Arc<LoadedSpec> {
    let path = dir.join("staging.toml");
    let source = format!("{HEAD}\n{databases}");
    std::fs::write(&path, &source).unwrap();
    Arc::new(LoadedSpec::parse(&path, source, LoadOptions::new(&["local"])).unwrap())
}

fn vars(env: &str) -> BTreeMap<String, SecretString> {
    BTreeMap::from([(
        "DATABASE_URL".to_owned(),
        SecretString::from(format!("sqlite://{env}.db")),
    )])
}

fn env(spec: &Arc<LoadedSpec>, name: &str, dry_run: bool) -> EnvMigrations {
    // Relative on purpose: the runner resolves it against the spec's directory.
    let urls = StaticUrls::new().with(
        "staging",
        "DATABASE_URL",
        SecretString::from("sqlite://staging.db".to_owned()),
    );
    EnvMigrations::new(spec.clone(), name, vars(name))
        .unwrap()
        .with_options(MigrateOptions {
            dry_run,
            ..Default::default()
        })
        .with_url_lookup(Arc::new(urls))
}

const NATIVE: &str =
    "[databases.main]\nurl_var = \"DATABASE_URL\"\nmigrations = { dir = \"migrations\" }\n";

#[tokio::test]
async fn production_apply_is_refused_until_staging_has_the_same_migrations() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("migrations"),
        &[
            ("1_a.sql", "CREATE TABLE a (id int);"),
            ("2_b.sql", "CREATE TABLE b (id int);"),
        ],
    );
    let spec = load(dir.path(), NATIVE);

    for dry_run in [true, false] {
        let report = env(&spec, "production", dry_run).apply().await;
        assert!(!report.ok);
        let err = report.databases[0].error.clone().unwrap();
        assert!(err.contains("protected environment `production`"), "{err}");
        assert!(err.contains("Missing on staging: 1_a, 2_b"), "{err}");
        assert_eq!(report.exit_code(), 1);
    }
    assert!(
        !dir.path().join("production.db").exists(),
        "nothing touched production"
    );

    let staging = env(&spec, "staging", false).apply().await;
    assert!(staging.ok, "{staging:?}");
    assert!(
        dir.path().join("staging.db").exists(),
        "the relative path is relative to the spec"
    );
    let prod = env(&spec, "production", false).apply().await;
    assert!(prod.ok, "{prod:?}");
    assert_eq!(prod.databases[0].report.as_ref().unwrap().applied.len(), 2);

    write(
        &dir.path().join("migrations"),
        &[("3_c.sql", "CREATE TABLE c (id int);")],
    );
    let err = env(&spec, "production", false).apply().await.databases[0]
        .error
        .clone()
        .unwrap();
    assert!(
        err.contains("Missing on staging: 3_c") && !err.contains("1_a"),
        "{err}"
    );
}

#[tokio::test]
async fn seed_runs_on_staging_and_is_refused_on_production() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("migrations"),
        &[("1_a.sql", "CREATE TABLE a (id int);")],
    );
    let seed = dir.path().join("seed.sh");
    std::fs::write(&seed, "#!/bin/sh\necho \"$DATABASE_URL\" >> seed.log\n").unwrap();
    std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = load(dir.path(), &format!("{NATIVE}seed = [\"./seed.sh\"]\n"));

    let staging = env(&spec, "staging", false).apply().await;
    assert!(staging.ok, "{staging:?}");
    assert!(
        staging.databases[0]
            .seed
            .as_deref()
            .unwrap()
            .starts_with("ran")
    );
    let prod = env(&spec, "production", false).apply().await;
    assert!(prod.ok, "{prod:?}");
    let note = prod.databases[0].seed.clone().unwrap();
    assert!(
        note.contains("refused") && note.contains("protected environment `production`"),
        "{note}"
    );
    let log = std::fs::read_to_string(dir.path().join("seed.log")).unwrap();
    assert!(
        log.contains("staging.db") && !log.contains("production.db"),
        "{log}"
    );
}

#[tokio::test]
async fn reset_style_migration_command_is_refused_on_production() {
    let dir = tempfile::tempdir().unwrap();
    let spec = load(
        dir.path(),
        "[databases.main]\nurl_var = \"DATABASE_URL\"\nmigrations = { command = [\"prisma\", \"migrate\", \"reset\", \"--force\"], version_table = \"_prisma_migrations\" }\n",
    );
    let report = env(&spec, "production", false).apply().await;
    let err = report.databases[0].error.clone().unwrap();
    assert!(err.contains("refusing") && err.contains("reset"), "{err}");
}

#[tokio::test]
async fn status_reports_every_database_of_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("migrations"),
        &[("1_a.sql", "CREATE TABLE a (id int);")],
    );
    let spec = load(dir.path(), NATIVE);
    let status = env(&spec, "staging", false).status().await;
    assert!(status.ok);
    let s = status.databases[0].status.as_ref().unwrap();
    assert_eq!(s.versions(staging_core::MigrationState::Pending), vec!["1"]);
    let json = serde_json::to_string(&status).unwrap();
    assert!(json.contains("\"state\":\"pending\""), "{json}");
}

#[tokio::test]
async fn migrate_step_is_skipped_when_no_database_declares_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let spec = load(dir.path(), "");
    let mut ctx = RunContext::new(spec, "staging", "abc123").unwrap();
    let report = MigrateStep::default().run(&mut ctx).await.unwrap();
    assert_eq!(report.status, StepStatus::Skipped);
    assert!(report.summary.contains("no database"), "{}", report.summary);
}

#[tokio::test]
async fn migrate_step_reports_one_finding_per_database() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("migrations"),
        &[("1_a.sql", "CREATE TABLE a (id int);")],
    );
    write(
        &dir.path().join("analytics"),
        &[
            ("1_e.sql", "CREATE TABLE e (id int);"),
            ("2_f.sql", "CREATE TABLE f (id int);"),
        ],
    );
    let spec = load(
        dir.path(),
        &format!(
            "{NATIVE}\n[vars.ANALYTICS_URL]\nvalue = \"sqlite://analytics-${{env}}.db\"\n\n[databases.analytics]\nurl_var = \"ANALYTICS_URL\"\nmigrations = {{ dir = \"analytics\" }}\n"
        ),
    );
    let run = |dry_run: bool| {
        let spec = spec.clone();
        async move {
            let mut ctx = RunContext::new(spec, "staging", "abc123").unwrap();
            ctx.vars = vars("staging");
            ctx.vars.insert(
                "ANALYTICS_URL".into(),
                SecretString::from("sqlite://analytics-staging.db".to_owned()),
            );
            MigrateStep::new(
                MigrateOptions {
                    dry_run,
                    ..Default::default()
                },
                Arc::new(StaticUrls::new()),
            )
            .run(&mut ctx)
            .await
            .unwrap()
        }
    };
    let plan = run(true).await;
    assert_eq!(plan.status, StepStatus::Passed);
    assert_eq!(plan.findings.len(), 2);
    assert!(
        plan.findings
            .iter()
            .any(|f| f.message.contains("would apply 2: 1_e, 2_f")),
        "{plan:?}"
    );
    assert!(
        !dir.path().join("staging.db").exists(),
        "a dry run changes nothing"
    );

    let applied = run(false).await;
    assert_eq!(applied.status, StepStatus::Passed, "{applied:?}");
    assert!(
        applied
            .summary
            .contains("3 migration(s) applied to 2 database(s)"),
        "{}",
        applied.summary
    );
    assert!(applied.findings.iter().all(|f| f.ok));
}
