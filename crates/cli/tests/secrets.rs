//! `staging secrets` on the bundled examples.

use std::path::PathBuf;

use assert_cmd::Command;

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
