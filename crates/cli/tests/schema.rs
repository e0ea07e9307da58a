//! `staging schema` prints the JSON Schema with every provider's settings, and the
//! committed `docs/staging.schema.json` is that output.

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

fn generated() -> String {
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("schema")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn committed_json_schema_is_what_staging_schema_prints() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/staging.schema.json");
    let generated = generated();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/staging.schema.json is out of date: run `UPDATE_SCHEMA=1 cargo test --workspace --test schema`"
    );
}

/// The schema an environment's `settings` must match when its `provider` is `name`.
fn environment_settings_schema<'a>(schema: &'a Value, name: &str) -> &'a Value {
    let rules = schema["$defs"]["Environment"]["allOf"]
        .as_array()
        .expect("Environment.allOf");
    let rule = rules
        .iter()
        .find(|r| r["if"]["properties"]["provider"]["const"] == name)
        .unwrap_or_else(|| panic!("no rule for provider `{name}`"));
    &rule["then"]["properties"]["settings"]
}

fn resolve<'a>(schema: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str().and_then(|r| r.strip_prefix("#/$defs/")) {
        Some(name) => &schema["$defs"][name],
        None => v,
    }
}

#[test]
fn each_provider_s_settings_are_selected_by_the_environment_s_provider_and_closed() {
    let schema: Value = serde_json::from_str(&generated()).unwrap();
    for (provider, key) in [
        ("local", None),
        ("render", Some("owner_id")),
        ("netlify", Some("site_name")),
        ("aws", Some("cluster")),
        ("railway", Some("project_id")),
        ("vercel", Some("target")),
    ] {
        let settings = resolve(&schema, environment_settings_schema(&schema, provider));
        assert_eq!(
            settings["additionalProperties"],
            Value::Bool(false),
            "{provider}: an unknown key must be flagged by editors: {settings}"
        );
        if let Some(key) = key {
            assert!(
                settings["properties"].get(key).is_some(),
                "{provider}: `{key}` not described: {settings}"
            );
        }
    }
    // A service's settings and overrides are described by the providers' service types.
    let service = &schema["$defs"]["Service"]["properties"];
    let any_of = service["settings"]["anyOf"]
        .as_array()
        .expect("settings.anyOf");
    assert_eq!(any_of.len(), 6, "{}", service["settings"]);
    for s in any_of {
        assert_eq!(
            resolve(&schema, s)["additionalProperties"],
            Value::Bool(false)
        );
    }
    let render_service = any_of
        .iter()
        .map(|s| resolve(&schema, s))
        .find(|s| s["properties"].get("service_name").is_some())
        .expect("render's service settings");
    assert!(render_service["properties"].get("servce_name").is_none());
}

/// The spec of `text` (TOML) as the JSON document an editor checks against the schema.
fn as_json(text: &str) -> Value {
    serde_json::to_value(text.parse::<toml::Table>().unwrap()).unwrap()
}

#[test]
fn staging_schema_has_an_id_and_flags_a_provider_setting_typo_like_an_editor_would() {
    let schema: Value = serde_json::from_str(&generated()).unwrap();
    assert_eq!(schema["$id"], "urn:staging:schema:spec:v1", "no $id");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let spec = |settings: &str| {
        format!(
            "#:schema ./.staging.schema.json\n[project]\nname = \"shop\"\n\n\
             [environments.staging]\nprovider = \"render\"\nsettings = {settings}\n\n\
             [services.web]\nsettings = {{ service_name = \"web\" }}\n"
        )
    };
    let good = spec("{ owner_id = \"tea-123\" }");
    assert!(
        validator.is_valid(&as_json(&good)),
        "{:?}",
        validator
            .iter_errors(&as_json(&good))
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    // A typo in Render's settings, and Netlify's key under Render: both flagged.
    for bad in ["{ ownr_id = \"tea-123\" }", "{ site_name = \"x\" }"] {
        assert!(
            !validator.is_valid(&as_json(&spec(bad))),
            "the schema let `{bad}` through for provider render"
        );
    }
    // The editor directive on the first line is a comment: the spec still validates.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), &good).unwrap();
    let out = Command::cargo_bin("staging")
        .unwrap()
        .current_dir(dir.path())
        .env("RENDER_API_KEY", "rnd_schema_test")
        .arg("validate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_readme_documents_the_editor_hookup() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    for said in [
        "#:schema ./.staging.schema.json",
        "evenBetterToml.schema.associations",
        "[[schemas]]",
        "staging schema >",
    ] {
        assert!(readme.contains(said), "the README lacks `{said}`");
    }
}
