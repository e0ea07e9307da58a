//! The committed JSON Schema is the one the types generate.

use std::path::PathBuf;

#[test]
fn committed_json_schema_matches_the_spec_types() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/staging.schema.json");
    let generated =
        serde_json::to_string_pretty(&staging_core::spec::json_schema()).unwrap() + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/staging.schema.json is out of date: run `UPDATE_SCHEMA=1 cargo test -p staging-core --test schema`"
    );
}

#[test]
fn schema_describes_the_top_level_tables() {
    let schema = staging_core::spec::json_schema();
    let props = schema["properties"].as_object().unwrap();
    for key in [
        "project",
        "environments",
        "services",
        "vars",
        "databases",
        "probes",
    ] {
        assert!(props.contains_key(key), "schema lacks `{key}`");
    }
    assert_eq!(
        schema["additionalProperties"],
        serde_json::Value::Bool(false)
    );
}
