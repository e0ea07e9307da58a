//! The spec format's own schema (the committed `docs/staging.schema.json`, which adds every
//! provider's settings, is checked by the CLI's `schema` test).

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
