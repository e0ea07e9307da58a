//! `staging import` turns a platform's config into a spec that `staging validate` accepts.

use assert_cmd::Command;

const BLUEPRINT: &str = r#"services:
  - type: web
    name: shop-web
    runtime: node
    healthCheckPath: /api/health
    envVars:
      - key: NODE_ENV
        value: production
      - key: JWT_SECRET
        generateValue: true
databases:
  - name: shop-db
"#;

#[test]
fn an_imported_blueprint_validates_and_is_never_written_over_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("render.yaml");
    std::fs::write(&yaml, BLUEPRINT).unwrap();
    let spec = dir.path().join("staging.toml");
    Command::cargo_bin("staging")
        .unwrap()
        .arg("import")
        .arg(&yaml)
        .arg("-o")
        .arg(&spec)
        .assert()
        .success();
    let text = std::fs::read_to_string(&spec).unwrap();
    assert!(text.contains("health_path = \"/api/health\""), "{text}");
    Command::cargo_bin("staging")
        .unwrap()
        .arg("validate")
        .arg("-f")
        .arg(&spec)
        .assert()
        .success();
    Command::cargo_bin("staging")
        .unwrap()
        .arg("import")
        .arg(&yaml)
        .arg("-o")
        .arg(&spec)
        .assert()
        .code(3);
    assert_eq!(
        std::fs::read_to_string(&spec).unwrap(),
        text,
        "the existing spec was changed"
    );
}

#[test]
fn an_unreadable_blueprint_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("render.yaml");
    std::fs::write(&yaml, "services: [: nope").unwrap();
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("import")
        .arg(&yaml)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("render.yaml"));
}

#[test]
fn the_provider_example_specs_validate() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for example in ["demo", "render", "netlify", "aws", "railway", "vercel"] {
        Command::cargo_bin("staging")
            .unwrap()
            .arg("validate")
            .arg("-f")
            .arg(root.join(example).join("staging.toml"))
            .assert()
            .success();
    }
}

const RAILWAY_JSON: &str = r#"{
  "$schema": "https://railway.com/railway.schema.json",
  "build": { "builder": "RAILPACK" },
  "deploy": {
    "startCommand": "uvicorn app.main:app --host 0.0.0.0 --port $PORT",
    "preDeployCommand": ["alembic upgrade head"],
    "healthcheckPath": "/health",
    "restartPolicyType": "ON_FAILURE"
  }
}"#;

#[test]
fn an_imported_railway_config_validates() {
    for (file, text) in [
        ("railway.json", RAILWAY_JSON.to_owned()),
        (
            "railway.toml",
            "[deploy]\nhealthcheckPath = \"/health\"\npreDeployCommand = \"alembic upgrade head\"\n"
                .to_owned(),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("api");
        std::fs::create_dir(&app).unwrap();
        let config = app.join(file);
        std::fs::write(&config, text).unwrap();
        let spec = app.join("staging.toml");
        Command::cargo_bin("staging")
            .unwrap()
            .arg("import")
            .arg(&config)
            .arg("-o")
            .arg(&spec)
            .assert()
            .success();
        let text = std::fs::read_to_string(&spec).unwrap();
        assert!(text.contains("provider = \"railway\""), "{file}: {text}");
        assert!(text.contains("health_path = \"/health\""), "{file}: {text}");
        assert!(
            text.contains("source = { provider = \"service:Postgres\" }"),
            "{file}: {text}"
        );
        assert!(text.contains("\"alembic\", \"upgrade\", \"head\""), "{file}: {text}");
        Command::cargo_bin("staging")
            .unwrap()
            .arg("validate")
            .arg("-f")
            .arg(&spec)
            .env_remove("RAILWAY_API_TOKEN")
            .env_remove("RAILWAY_TOKEN")
            .assert()
            .success();
    }
}

#[test]
fn an_imported_vercel_json_validates() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("storefront");
    std::fs::create_dir(&app).unwrap();
    let config = app.join("vercel.json");
    std::fs::write(
        &config,
        r#"{ "framework": "nextjs", "env": { "EMAIL_PROVIDER": "log" }, "build": { "env": { "SENTRY_AUTH_TOKEN": "@sentry-token" } } }"#,
    )
    .unwrap();
    let spec = app.join("staging.toml");
    Command::cargo_bin("staging")
        .unwrap()
        .arg("import")
        .arg(&config)
        .arg("-o")
        .arg(&spec)
        .assert()
        .success();
    let text = std::fs::read_to_string(&spec).unwrap();
    assert!(text.contains("provider = \"vercel\""), "{text}");
    assert!(text.contains("name = \"storefront\""), "{text}");
    assert!(!text.contains("@sentry-token"), "{text}");
    Command::cargo_bin("staging")
        .unwrap()
        .arg("validate")
        .arg("-f")
        .arg(&spec)
        .env_remove("VERCEL_TOKEN")
        .assert()
        .success();
}
