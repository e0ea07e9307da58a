//! `staging validate`: each kind of mistake exits 2 with `file:line:col` and says what is wrong.

use assert_cmd::Command;
use predicates::prelude::*;

const GOOD: &str = r#"[project]
name = "demo"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[services.web]
health_path = "/up"
settings = { command = ["demo-app"], port_env = "${PORT_VAR:-PORT}" }

[[probes]]
name = "health"
http = { url = "${services.web.url}/up" }
"#;

fn validate(text: &str) -> assert_cmd::assert::Assert {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, text).unwrap();
    let assert = Command::cargo_bin("staging")
        .unwrap()
        .arg("validate")
        .arg("-f")
        .arg(&path)
        .env_remove("STAGING_ENV")
        .assert();
    drop(dir);
    assert
}

fn at(line_col: &str) -> impl Predicate<str> {
    predicate::str::contains(format!("staging.toml:{line_col}: "))
}

#[test]
fn a_good_spec_validates_with_exit_0() {
    validate(GOOD)
        .success()
        .stdout(predicate::str::contains("is valid: 2 environment(s)"));
}

#[test]
fn a_misspelt_key_exits_2_at_its_place() {
    validate(&GOOD.replace("promotes_to", "promote_to"))
        .code(2)
        .stderr(at("6:1").and(predicate::str::contains("unknown field `promote_to`")));
}

#[test]
fn a_wrong_type_exits_2_at_the_value() {
    validate(&GOOD.replace("protected = true", "protected = 1"))
        .code(2)
        .stderr(at("10:13").and(predicate::str::contains(
            "invalid type: integer `1`, expected a boolean",
        )));
}

#[test]
fn an_unknown_provider_exits_2_and_lists_the_known_ones() {
    validate(&GOOD.replace(
        "provider = \"local\"\npromotes_to",
        "provider = \"heroku\"\npromotes_to",
    ))
    .code(2)
    .stderr(
        at("5:12")
            .and(predicate::str::contains("unknown provider `heroku`"))
            .and(predicate::str::contains("local")),
    );
}

#[test]
fn an_undefined_variable_exits_2_at_the_reference() {
    validate(&GOOD.replace("${PORT_VAR:-PORT}", "${PORT_VAR}"))
        .code(2)
        .stderr(at("14:50").and(predicate::str::contains("undefined variable `${PORT_VAR}`")));
}

#[test]
fn malformed_toml_exits_2_at_the_break() {
    validate(&GOOD.replace("[services.web]", "[services.web"))
        .code(2)
        .stderr(
            predicate::str::contains("staging.toml:12:")
                .and(predicate::str::contains("invalid TOML")),
        );
}

#[test]
fn bad_provider_settings_exit_2_at_the_settings() {
    validate(&GOOD.replace("port_env", "prot_env"))
        .code(2)
        .stderr(
            at("14:38")
                .and(predicate::str::contains("unknown field `prot_env`"))
                .and(predicate::str::contains("did you mean `port_env`?")),
        );
}

#[test]
fn a_missing_spec_file_exits_2_naming_it() {
    Command::cargo_bin("staging")
        .unwrap()
        .args(["validate", "-f", "/nonexistent/staging.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/staging.toml"));
}

#[test]
fn bad_usage_exits_2() {
    Command::cargo_bin("staging")
        .unwrap()
        .arg("frobnicate")
        .assert()
        .code(2);
}

#[test]
fn validate_json_is_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, GOOD).unwrap();
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args(["validate", "--json", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["services"], serde_json::json!(["web"]));
}

const QUEUE: &str = r#"[project]
name = "queue"

[environments.staging]
provider = "render"

[services.worker]
http = false
settings = { service_name = "q-worker" }

[datastores.jobs]
settings = { kind = "key_value", name = "q-jobs", maxmemory_policy = "allkeys_lru" }

[vars.REDIS_URL]
secret = true
services = ["worker"]
sources = { staging = { provider = "key_value:q-jobs" } }
"#;

fn validate_with(text: &str, args: &[&str]) -> assert_cmd::assert::Assert {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, text).unwrap();
    let assert = Command::cargo_bin("staging")
        .unwrap()
        .arg("validate")
        .arg("-f")
        .arg(&path)
        .args(args)
        .env_remove("STAGING_ENV")
        .assert();
    drop(dir);
    assert
}

#[test]
fn a_workers_key_value_that_evicts_keys_is_a_warning_at_its_place_and_an_error_with_strict() {
    validate_with(QUEUE, &[]).code(0).stdout(
        predicate::str::contains("warning: ").and(at("12:70")).and(
            predicate::str::contains("allkeys_lru").and(predicate::str::contains(
                "worker `worker` gets it as `REDIS_URL`",
            )),
        ),
    );
    validate_with(QUEUE, &["--strict"])
        .code(2)
        .stderr(at("12:70").and(predicate::str::contains("--strict")));
    let out = validate_with(QUEUE, &["--json"]).code(0);
    let doc: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let warnings = doc["data"]["warnings"]
        .as_array()
        .or(doc["warnings"].as_array())
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(warnings.len(), 1, "{doc}");
    // The fix: noeviction warns of nothing, and --strict passes.
    validate_with(&QUEUE.replace("allkeys_lru", "noeviction"), &["--strict"])
        .code(0)
        .stdout(predicate::str::contains("warning").not());
}
