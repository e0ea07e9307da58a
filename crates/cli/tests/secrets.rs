//! `staging secrets` on the bundled examples.

use std::path::PathBuf;

use assert_cmd::Command;

mod common;
use common::copy_dir;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .join("staging.toml")
}

#[test]
fn secrets_check_catches_the_planted_placeholder_and_trailing_newline() {
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args(["secrets", "check", "--json", "-f"])
        .arg(example("secrets-check"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let var = |name: &str| {
        doc["vars"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()
            .clone()
    };
    let rules = |v: &serde_json::Value| {
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["rule"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(var("JWT_SECRET")["status"], "invalid");
    assert!(rules(&var("JWT_SECRET")).contains(&"placeholder".to_owned()));
    assert_eq!(var("STRIPE_API_KEY")["status"], "invalid");
    assert!(rules(&var("STRIPE_API_KEY")).contains(&"whitespace".to_owned()));
    assert_eq!(var("RUN_PRODUCTION_SEED")["status"], "ok");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("sk_test_51HcZqLkT9xYwV3bN2"),
        "a value was printed"
    );
}

#[test]
fn secrets_check_passes_on_the_demo_stack_and_prints_no_value() {
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args(["secrets", "check", "--env", "staging", "-f"])
        .arg(example("demo"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("JWT_SECRET") && text.contains("fp:"),
        "{text}"
    );
    assert!(
        !text.contains("k7Qz2vN9xW4pL8rT1yB6mC3hF5jD0sGaE2uVwXyZ"),
        "a value was printed"
    );
}

#[test]
fn secrets_diff_shows_staging_and_production_keys_differ_as_required() {
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args(["secrets", "diff", "staging", "production", "--json", "-f"])
        .arg(example("demo"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jwt = doc["vars"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "JWT_SECRET")
        .unwrap();
    assert_eq!(jwt["equal"], false);
    assert_eq!(jwt["expected"], "differ");
}

const CANARY_STAGING: &str = "canary-staging-7d41c2b9e05f48a3a6b1c8d2e9f03b57";
const CANARY_PRODUCTION: &str = "canary-production-3e8b5a1f9c2d47e6b0a4d7c1f5e92a68";

#[test]
fn secrets_commands_never_print_or_write_a_canary() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(example("demo").parent().unwrap(), dir.path());
    std::fs::write(
        dir.path().join("secrets/staging.env"),
        format!("JWT_SECRET={CANARY_STAGING}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("secrets/production.env"),
        format!("JWT_SECRET=\"{CANARY_PRODUCTION}\"\n"),
    )
    .unwrap();
    let spec = dir.path().join("staging.toml");
    let runs: &[&[&str]] = &[
        &["secrets", "check", "--env", "staging"],
        &["secrets", "check", "--env", "production", "--json"],
        &["secrets", "diff", "staging", "production"],
        &["secrets", "diff", "staging", "production", "--json"],
        &["secrets", "sync", "--env", "staging"],
        &["secrets", "sync", "--env", "staging", "--apply", "--json"],
        &["diff", "staging", "production"],
        &["migrate", "status", "--env", "staging"],
    ];
    for args in runs {
        let out = Command::cargo_bin("staging")
            .unwrap()
            .args(*args)
            .args(["-v", "-v", "-f"])
            .arg(&spec)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{args:?} did not run:\n{text}"
        );
        for canary in [CANARY_STAGING, CANARY_PRODUCTION] {
            assert!(!text.contains(canary), "{args:?} printed a secret:\n{text}");
            assert!(
                !text.contains(&canary[7..30]),
                "{args:?} printed part of a secret:\n{text}"
            );
        }
    }
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .parent()
                .and_then(|p| p.file_name())
                .is_none_or(|n| n != "secrets")
            {
                let bytes = std::fs::read(&p).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    !text.contains(CANARY_STAGING) && !text.contains(CANARY_PRODUCTION),
                    "{} holds a secret",
                    p.display()
                );
            }
        }
    }
}

#[test]
fn a_value_wrapped_in_quotes_is_flagged_by_secrets_check_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        r#"[project]
name = "quoted"

[environments.staging]
provider = "local"
secrets = { dotenv = "staging.env" }

[services.web]
settings = { command = ["true"] }

[vars.PARTNER_TOKEN]
secret = true
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        "PARTNER_TOKEN='\"ptk_4f9a0c7e2b5d8e1f3a6c\"'\n",
    )
    .unwrap();
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args(["secrets", "check", "--env", "staging", "--json", "-f"])
        .arg(dir.path().join("staging.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = doc["vars"][0]["problems"].as_array().unwrap();
    assert_eq!(problems[0]["rule"], "quotes", "{doc}");
    assert!(
        problems[0]["message"]
            .as_str()
            .unwrap()
            .contains("wrapped in double quotes"),
        "{doc}"
    );
    assert!(!text.contains("ptk_4f9a"), "the value was printed: {text}");
}
