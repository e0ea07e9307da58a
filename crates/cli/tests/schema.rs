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

/// Import each realistic platform file of `tests/fixtures/imports` into a directory under
/// `into` named like its own: where each spec is, and its text.
fn imported_fixtures(into: &std::path::Path) -> Vec<(PathBuf, String)> {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imports");
    let mut specs = vec![];
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        for name in [
            "render.yaml",
            "netlify.toml",
            "railway.json",
            "railway.toml",
            "vercel.json",
        ] {
            let file = dir.join(name);
            if !file.exists() {
                continue;
            }
            let project = into
                .join(name.replace('.', "-"))
                .join(dir.file_name().unwrap());
            std::fs::create_dir_all(&project).unwrap();
            std::fs::copy(&file, project.join(name)).unwrap();
            let out = Command::cargo_bin("staging")
                .unwrap()
                .current_dir(&project)
                .args(["import", name, "-o", "staging.toml"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let spec = project.join("staging.toml");
            let text = std::fs::read_to_string(&spec).unwrap();
            specs.push((spec, text));
        }
    }
    specs
}

/// `staging validate` of `spec`, with a credential for each platform (none is called).
fn validate(spec: &std::path::Path) -> std::process::Output {
    Command::cargo_bin("staging")
        .unwrap()
        .current_dir(spec.parent().unwrap())
        .env("RENDER_API_KEY", "rnd_schema_test")
        .env("NETLIFY_AUTH_TOKEN", "nfp_schema_test")
        .env("RAILWAY_API_TOKEN", "railway-schema-test")
        .env("VERCEL_TOKEN", "vercel-schema-test")
        .env_remove("STAGING_FILE")
        .env_remove("STAGING_ENV")
        .arg("validate")
        .arg("-f")
        .arg(spec)
        .output()
        .unwrap()
}

/// What an editor shows for `text` against the schema: each error with its place.
fn editor_errors(validator: &jsonschema::Validator, text: &str) -> Vec<String> {
    let doc = as_json(text);
    validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn every_example_and_imported_spec_validates_and_satisfies_the_editor_schema() {
    let schema: Value = serde_json::from_str(&generated()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut specs: Vec<(PathBuf, String)> = std::fs::read_dir(&examples)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("staging.toml"))
        .filter(|p| p.exists())
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    let examples_seen = specs.len();
    let imports = tempfile::tempdir().unwrap();
    specs.extend(imported_fixtures(imports.path()));
    assert!(examples_seen >= 9, "only {examples_seen} example specs");
    assert!(
        specs.len() >= examples_seen + 9,
        "only {} imported fixtures",
        specs.len() - examples_seen
    );
    for (path, text) in &specs {
        let out = validate(path);
        assert!(
            out.status.success(),
            "{} does not validate:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let errors = editor_errors(&validator, text);
        assert!(
            errors.is_empty(),
            "an editor flags {}, which validates:\n{}",
            path.display(),
            errors.join("\n")
        );
    }
}

#[test]
fn an_unknown_key_is_refused_by_validate_and_flagged_by_the_editor_schema_alike() {
    let schema: Value = serde_json::from_str(&generated()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let render = std::fs::read_to_string(examples.join("render/staging.toml")).unwrap();
    // A typo in each kind of table: the project, a datastore's settings and its
    // overrides, a service's overrides.
    for (good, bad) in [
        ("[project]\n", "[project]\nnmae = \"x\"\n"),
        (
            "settings = { kind = \"postgres\", name = \"shop-db\" }",
            "settings = { kind = \"postgres\", name = \"shop-db\", plna = \"pro_4gb\" }",
        ),
        (
            "overrides.staging = { name = \"shop-cache-staging\" }",
            "overrides.staging = { name = \"shop-cache-staging\", knd = \"key_value\" }",
        ),
        (
            "service_name = \"shop-worker-staging\"\n",
            "service_name = \"shop-worker-staging\"\nbrnach = \"x\"\n",
        ),
    ] {
        assert!(render.contains(good), "the example lost `{good}`");
        let text = render.replacen(good, bad, 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staging.toml");
        std::fs::write(&path, &text).unwrap();
        let out = validate(&path);
        assert_eq!(
            out.status.code(),
            Some(2),
            "validate accepted `{bad}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !editor_errors(&validator, &text).is_empty(),
            "the schema let `{bad}` through"
        );
    }
}
