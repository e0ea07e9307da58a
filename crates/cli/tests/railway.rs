//! The `railway` provider through the binary, against the schema-validating stand-in of
//! `crates/provider-railway/tests/support`: `plan` shows that a missing staging environment
//! will be created from production, and `up` creates it, sets staging's own variables, then
//! deploys the commit; then the staging Postgres service's URL is a secret source.

#[path = "../../provider-railway/tests/support/mod.rs"]
mod railway;

use assert_cmd::Command;

const COMMIT: &str = "aaaaaaa1111111111111111111111111111111aa";

fn spec(project_id: &str, evidence: &std::path::Path) -> String {
    format!(
        r#"[project]
name = "shop"
evidence_dir = {evidence:?}

[environments.staging]
provider = "railway"
promotes_to = "production"
deploy_timeout = "60s"
settings = {{ project_id = "{project_id}", create_if_missing = true, plan = "pro" }}

[environments.production]
provider = "railway"
protected = true
settings = {{ project_id = "{project_id}", plan = "pro" }}

[services.web]
http = false

[vars.APP_ENV]
values = {{ staging = "staging", production = "production" }}
"#,
        evidence = evidence.display().to_string()
    )
}

fn staging(url: &str, spec: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("-f")
        .arg(spec)
        .args(["--env", "staging"])
        .args(args)
        .env_remove("STAGING_ENV")
        .env_remove("RAILWAY_TOKEN")
        .env("RAILWAY_API_TOKEN", railway::TOKEN)
        .env("RAILWAY_API_URL", url)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), all)
}

#[tokio::test]
async fn plan_shows_and_up_creates_a_missing_staging_environment_from_production() {
    let mut s = railway::StandIn::start().await;
    s.reset(&["production"], &["web", "Postgres"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, spec(&s.project_id, &dir.path().join("evidence"))).unwrap();

    let (code, out) = staging(&s.url, &path, &["plan", "--commit", COMMIT]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("environment: create Railway environment `staging` from `production`"),
        "{out}"
    );
    assert!(s.mutations().await.is_empty(), "plan wrote: {out}");

    let (code, out) = staging(&s.url, &path, &["up", "--commit", COMMIT]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        s.mutations().await,
        [
            "environmentCreate",
            "environmentPatchCommitStaged",
            "variableCollectionUpsert",
            "serviceInstanceDeployV2"
        ],
        "{out}"
    );
    let state = s.state().await;
    assert_eq!(state["created_environments"][0]["source"], "production");
    assert_eq!(state["upserts"][0]["names"], serde_json::json!(["APP_ENV"]));

    // Now that staging exists, its Postgres (a database of its own) is a secret source: the
    // URL is read, checked to differ from production's, never shown.
    let with_db = format!(
        "{}\n[vars.DATABASE_URL]\nsecret = true\nservices = []\nsource = {{ provider = \"service:Postgres\" }}\nrules = {{ kind = \"url\", differs_from = \"production\" }}\n",
        std::fs::read_to_string(&path).unwrap()
    );
    std::fs::write(&path, with_db).unwrap();
    let (code, out) = staging(&s.url, &path, &["secrets", "check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("DATABASE_URL"), "{out}");
    assert!(!out.contains("canary-public"), "{out}");
    s.assert_no_rejected().await;
}
