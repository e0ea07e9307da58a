//! `diff_environments` on two local environments with dotenv secret stores and SQLite
//! databases, with drift planted.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use secrecy::SecretString;
use staging_evidence::diff_environments;
use staging_migrate::EnvMigrations;

const JWT_A: &str = "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c2b4d6f8e0a1c3e5b7d9f1a3c5e7b9d1f";
const JWT_B: &str = "1b3d5f7a9c2e4b6d8f0a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3f5a7c9e2b4d";

const SPEC: &str = r#"
[project]
name = "shop"

[environments.staging]
provider = "local"
promotes_to = "production"
secrets = { dotenv = "staging.env" }
settings = { region = "eu-west-1" }

[environments.production]
provider = "local"
secrets = { dotenv = "production.env" }
deploy_timeout = "20m"
settings = { region = "us-east-1" }

[services.web]
health_path = "/up"
settings = { command = ["./web"], instance_count = 1 }

[services.web.overrides.production]
instance_count = 3

[vars.JWT_SECRET]
secret = true
rules = { kind = "signing_key", differs_from = "production" }

[vars.ORG_ID]
secret = true
rules = { same_as = "production" }

[vars.FEATURE_FLAGS_KEY]
secret = true
required = false

[vars.DATABASE_URL]
value = "sqlite://db/${env}.db"

[vars.CACHE_DB_URL]
value = "postgres://postgres@127.0.0.1:1/nothing_listens_here"

[databases.main]
url_var = "DATABASE_URL"
migrations = { dir = "migrations" }

[databases.cache]
url_var = "CACHE_DB_URL"
migrations = { dir = "migrations" }
"#;

fn write_env(dir: &Path, env: &str, vars: &[(&str, &str)]) {
    let body: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(dir.join(format!("{env}.env")), body).unwrap();
}

async fn migrate(spec: &std::sync::Arc<staging_core::spec::LoadedSpec>, env: &str) {
    use staging_core::Migration;
    let url = SecretString::from(format!(
        "sqlite://{}/db/{env}.db",
        spec.base_dir().display()
    ));
    let m = EnvMigrations::new(spec.clone(), env, BTreeMap::new()).unwrap();
    m.runner_for("main", url).unwrap().apply().await.unwrap();
}

fn migration(dir: &Path, name: &str, sql: &str) {
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    std::fs::write(dir.join("migrations").join(name), sql).unwrap();
}

#[tokio::test]
async fn planted_drift_is_found_and_breaks_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Planted: production's signing key copied into staging; the shared org id differs;
    // a key only staging has.
    write_env(
        d,
        "staging",
        &[
            ("JWT_SECRET", JWT_A),
            ("ORG_ID", "org_1111"),
            ("FEATURE_FLAGS_KEY", "ff-staging-key"),
        ],
    );
    write_env(
        d,
        "production",
        &[("JWT_SECRET", JWT_A), ("ORG_ID", "org_2222")],
    );
    let spec = common::load(d, SPEC);

    // Planted: production ran a migration staging never ran.
    migration(
        d,
        "20260101000000_create_items.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY);",
    );
    migrate(&spec, "staging").await;
    migration(
        d,
        "20260102000000_add_owner.sql",
        "ALTER TABLE items ADD COLUMN owner TEXT;",
    );
    migrate(&spec, "production").await;

    let report = diff_environments(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        "production",
    )
    .await
    .unwrap();
    assert!(report.broken());
    assert_eq!(report.exit_code(), 1);

    let rules: Vec<(&str, &str)> = report
        .rules_broken
        .iter()
        .map(|r| (r.subject.as_str(), r.rule.as_str()))
        .collect();
    assert!(rules.contains(&("JWT_SECRET", "differs_from")), "{rules:?}");
    assert!(rules.contains(&("ORG_ID", "same_as")), "{rules:?}");
    assert!(
        rules.contains(&("database main", "staging_before_production")),
        "{rules:?}"
    );

    assert_eq!(report.vars.only_in_a, vec!["FEATURE_FLAGS_KEY".to_owned()]);
    assert!(report.vars.only_in_b.is_empty());

    let main = report
        .migrations
        .iter()
        .find(|m| m.database == "main")
        .unwrap();
    assert_eq!(main.a.applied, vec!["20260101000000"]);
    assert_eq!(main.b.applied, vec!["20260101000000", "20260102000000"]);
    assert_eq!(main.a.pending, vec!["20260102000000"]);
    assert_eq!(main.only_applied_in_b, vec!["20260102000000"]);

    // An unreachable database is noted, not fatal.
    let cache = report
        .migrations
        .iter()
        .find(|m| m.database == "cache")
        .unwrap();
    assert!(cache.a.unreachable.is_some() && cache.b.unreachable.is_some());
    assert!(cache.only_applied_in_a.is_empty() && cache.only_applied_in_b.is_empty());

    let setting = |scope: &str, key: &str| {
        report
            .settings
            .iter()
            .find(|s| s.scope == scope && s.key == key)
            .cloned()
    };
    let region = setting("environment", "region").unwrap();
    assert_eq!(
        (region.a.as_deref(), region.b.as_deref()),
        (Some("eu-west-1"), Some("us-east-1"))
    );
    let count = setting("service web", "instance_count").unwrap();
    assert_eq!(
        (count.a.as_deref(), count.b.as_deref()),
        (Some("1"), Some("3"))
    );
    assert!(setting("environment", "deploy_timeout").is_some());
    assert!(
        setting("service web", "command").is_none(),
        "equal settings are not listed"
    );

    // Values never appear, only fingerprints.
    let json = serde_json::to_string(&report).unwrap();
    for value in [JWT_A, "org_1111", "org_2222", "ff-staging-key"] {
        assert!(!json.contains(value), "the report shows a value: {value}");
        assert!(!format!("{report:?}").contains(value));
    }
    assert!(json.contains("fp:"));
}

#[tokio::test]
async fn environments_that_differ_only_where_allowed_pass() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_env(
        d,
        "staging",
        &[("JWT_SECRET", JWT_A), ("ORG_ID", "org_1111")],
    );
    write_env(
        d,
        "production",
        &[("JWT_SECRET", JWT_B), ("ORG_ID", "org_1111")],
    );
    let spec = common::load(d, SPEC);
    migration(
        d,
        "20260101000000_create_items.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY);",
    );
    migrate(&spec, "staging").await;
    migrate(&spec, "production").await;
    // Staging ahead of production is the normal order of things.
    migration(
        d,
        "20260102000000_add_owner.sql",
        "ALTER TABLE items ADD COLUMN owner TEXT;",
    );
    migrate(&spec, "staging").await;

    let report = diff_environments(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        "production",
    )
    .await
    .unwrap();
    assert!(!report.broken(), "{:?}", report.rules_broken);
    let main = report
        .migrations
        .iter()
        .find(|m| m.database == "main")
        .unwrap();
    assert_eq!(main.only_applied_in_a, vec!["20260102000000"]);
    // Settings still differ, and are shown without failing the diff.
    assert!(!report.settings.is_empty());
}

#[tokio::test]
async fn live_env_keys_on_one_side_only_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_env(
        d,
        "staging",
        &[("JWT_SECRET", JWT_A), ("ORG_ID", "org_1111")],
    );
    write_env(
        d,
        "production",
        &[("JWT_SECRET", JWT_B), ("ORG_ID", "org_1111")],
    );
    let spec = common::load(d, SPEC);
    let mut report = diff_environments(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        "production",
    )
    .await
    .unwrap();
    report.add_live_env(
        "web",
        ["JWT_SECRET".to_owned(), "DEBUG".to_owned()],
        ["JWT_SECRET".to_owned(), "SENTRY_DSN".to_owned()],
    );
    report.add_live_env("worker", ["A".to_owned()], ["A".to_owned()]);
    assert_eq!(report.live_env.len(), 1);
    assert_eq!(report.live_env[0].only_in_a, vec!["DEBUG"]);
    assert_eq!(report.live_env[0].only_in_b, vec!["SENTRY_DSN"]);
}

#[tokio::test]
async fn an_unknown_environment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::load(dir.path(), SPEC);
    assert!(
        diff_environments(
            &staging_core::SecretBackends::none(),
            &spec,
            "staging",
            "qa"
        )
        .await
        .is_err()
    );
}
