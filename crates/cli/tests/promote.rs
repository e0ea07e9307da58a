//! `staging promote` end to end on the local provider: staging then production as two local
//! environments, gated on staging's evidence.

use std::path::Path;

use assert_cmd::Command;

mod common;
use common::SERVER;

const SPEC: &str = r#"[project]
name = "promo"

[environments.staging]
provider = "local"
promotes_to = "production"
deploy_timeout = "60s"
secrets = { dotenv = "staging.env" }

[environments.production]
provider = "local"
protected = true
deploy_timeout = "60s"
secrets = { dotenv = "production.env" }

[services.web]
health_path = "/up"
settings = { command = ["python3", "server.py"], stop_timeout = "2s" }

[vars.JWT_SECRET]
secret = true
rules = { kind = "signing_key", differs_from = "production" }

[[probes]]
name = "health"
http = { url = "${services.web.url}/up", expect = { json = { "$.commit" = "${commit}" } } }
"#;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), SPEC).unwrap();
    std::fs::write(dir.path().join("server.py"), SERVER).unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        "JWT_SECRET=2f9c1d7e8a4b6c3d5e7f9a1b3c5d7e9f2a4b6c8d\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("production.env"),
        "JWT_SECRET=9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d\n",
    )
    .unwrap();
    dir
}

fn staging(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("staging")
        .unwrap()
        .args(args)
        .arg("-f")
        .arg(dir.join("staging.toml"))
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn promotion_is_refused_until_staging_passed_the_same_commit_then_runs_production() {
    let dir = setup();
    let dir = dir.path();
    let c1 = "1111111aaaaaaaabbbbbbbbccccccccddddddddd";

    let out = staging(dir, &["promote", "--to", "production", "--commit", c1]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no recorded run"), "{}", text(&out));

    let out = staging(dir, &["up", "--env", "production", "--commit", c1]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "a protected environment was deployed by `up`: {}",
        text(&out)
    );
    assert!(text(&out).contains("promot"), "{}", text(&out));

    let out = staging(dir, &["up", "--env", "staging", "--commit", c1]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let c2 = "2222222aaaaaaaabbbbbbbbccccccccddddddddd";
    let out = staging(dir, &["promote", "--to", "production", "--commit", c2]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "another commit must not pass the gate: {}",
        text(&out)
    );

    let junit = dir.join("promote.xml");
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args(["promote", "--to", "production", "--commit", c1, "--junit"])
        .arg(&junit)
        .arg("-f")
        .arg(dir.join("staging.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("serving 1111111aaaaa"),
        "{}",
        text(&out)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite"), "{xml}");

    let out = staging(dir, &["evidence", "list", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let envs: Vec<&str> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["environment"].as_str().unwrap())
        .collect();
    assert_eq!(envs, ["production", "staging"], "{doc}");
}

#[test]
fn an_edited_evidence_file_is_refused_by_the_gate() {
    let dir = setup();
    let dir = dir.path();
    let c1 = "3333333aaaaaaaabbbbbbbbccccccccddddddddd";
    std::fs::write(dir.join("server.py"), "import sys; sys.exit(1)\n").unwrap();
    let out = staging(dir, &["up", "--env", "staging", "--commit", c1]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = staging(dir, &["promote", "--to", "production", "--commit", c1]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("failed"), "{}", text(&out));

    // Flip the recorded result to passing by hand: the content hash gives it away.
    let evidence_dir = dir.join(".staging/evidence").join(c1);
    let file = std::fs::read_dir(&evidence_dir)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("\"ok\": false", "\"ok\": true");
    std::fs::write(&file, edited).unwrap();
    let out = staging(
        dir,
        &["promote", "--to", "production", "--commit", c1, "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("edited"), "{}", text(&out));
}

#[test]
fn diff_reports_a_shared_signing_key_as_a_broken_rule() {
    let dir = setup();
    let dir = dir.path();
    std::fs::write(
        dir.join("production.env"),
        "JWT_SECRET=2f9c1d7e8a4b6c3d5e7f9a1b3c5d7e9f2a4b6c8d\n",
    )
    .unwrap();
    let out = staging(dir, &["diff", "staging", "production"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("JWT_SECRET"), "{}", text(&out));
    assert!(
        !text(&out).contains("2f9c1d7e8a4b6c3d5e7f"),
        "a value was printed"
    );
}

#[test]
fn promotion_is_refused_when_staging_ran_no_probe() {
    let dir = setup();
    let dir = dir.path();
    // The only probe leaves staging out: staging's run passes having checked nothing.
    let spec = SPEC.replace(
        "name = \"health\"\n",
        "name = \"health\"\nenvironments = [\"production\"]\n",
    );
    assert_ne!(spec, SPEC);
    std::fs::write(dir.join("staging.toml"), spec).unwrap();
    let c1 = "4444444aaaaaaaabbbbbbbbccccccccddddddddd";
    let out = staging(dir, &["up", "--env", "staging", "--commit", c1]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = staging(dir, &["evidence", "list", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let staging_id = doc["runs"][0]["id"].as_str().unwrap().to_owned();

    let out = staging(dir, &["promote", "--to", "production", "--commit", c1]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = text(&out);
    assert!(message.contains("REFUSED"), "{message}");
    assert!(
        message.contains(&format!(
            "staging run {staging_id} for commit {c1} skipped the smoke step"
        )),
        "{message}"
    );
    assert!(
        !message.contains("serving"),
        "production was deployed: {message}"
    );

    let out = staging(
        dir,
        &["promote", "--to", "production", "--commit", c1, "--json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["refusal"]["kind"], "nothing_validated", "{doc}");
    assert_eq!(doc["refusal"]["id"], staging_id.as_str(), "{doc}");

    let out = staging(dir, &["evidence", "list", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["runs"].as_array().unwrap().len(), 1, "{doc}");
}

#[test]
fn production_evidence_names_the_staging_evidence_that_allowed_it() {
    let dir = setup();
    let dir = dir.path();
    let c1 = "5555555aaaaaaaabbbbbbbbccccccccddddddddd";
    let out = staging(dir, &["up", "--env", "staging", "--commit", c1]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = staging(dir, &["promote", "--to", "production", "--commit", c1]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let id_of = |env: &str| {
        let out = staging(dir, &["evidence", "list", "--env", env, "--json"]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["runs"].as_array().unwrap().len(), 1, "{doc}");
        doc["runs"][0]["id"].as_str().unwrap().to_owned()
    };
    let (staging_id, production_id) = (id_of("staging"), id_of("production"));
    let show = |id: &str| {
        let out = staging(dir, &["evidence", "show", id, "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let staging_doc = show(&staging_id);
    let production_doc = show(&production_id);

    let source = &production_doc["evidence"]["promoted_from"];
    assert_eq!(source["environment"], "staging", "{production_doc}");
    assert_eq!(source["id"], staging_id.as_str(), "{production_doc}");
    assert_eq!(
        source["content_hash"], staging_doc["evidence"]["content_hash"],
        "{production_doc}"
    );
    assert_eq!(production_doc["intact"], true, "{production_doc}");
    assert_eq!(
        production_doc["promoted_from_check"], "matches",
        "{production_doc}"
    );
    assert!(
        staging_doc["evidence"].get("promoted_from").is_none(),
        "{staging_doc}"
    );

    let out = staging(dir, &["evidence", "show", &production_id]);
    let human = text(&out);
    assert!(
        human.contains(&format!("promoted on `staging` evidence {staging_id}")),
        "{human}"
    );
    let hash = staging_doc["evidence"]["content_hash"].as_str().unwrap();
    assert!(human.contains(hash), "{human}");
    assert!(human.contains("unchanged"), "{human}");
    for secret in ["2f9c1d7e8a4b6c3d5e7f", "9e8d7c6b5a4f3e2d1c0b"] {
        assert!(!human.contains(secret), "a secret was printed: {human}");
        assert!(
            !production_doc.to_string().contains(secret),
            "a secret was printed: {production_doc}"
        );
    }

    // Once the staging record relied on is gone, `show` says so.
    std::fs::remove_file(dir.join(".staging/evidence").join(&staging_id)).unwrap();
    assert_eq!(show(&production_id)["promoted_from_check"], "missing");
    let human = text(&staging(dir, &["evidence", "show", &production_id]));
    assert!(human.contains("is not in"), "{human}");
}
