//! The spec loader's errors: each names `file:line:col` and says what is wrong.

use staging_core::Error;
use staging_core::spec::{LoadOptions, LoadedSpec};

const PROVIDERS: &[&str] = &["local", "render"];

fn env(name: &str) -> Option<String> {
    match name {
        "DEMO_PORT" => Some("8080".into()),
        _ => None,
    }
}

fn load(text: &str) -> Result<LoadedSpec, Error> {
    LoadedSpec::parse(
        "staging.toml",
        text.to_owned(),
        LoadOptions {
            env: &env,
            known_providers: PROVIDERS,
            instance: None,
        },
    )
}

fn message(text: &str) -> String {
    match load(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e @ Error::ConfigInvalid { .. }) => e.to_string(),
        Err(e) => panic!("expected ConfigInvalid, got {e:?}"),
    }
}

const GOOD: &str = r#"
[project]
name = "demo"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[services.web]
health_path = "/up"
settings = { command = ["demo-app"], port = "${DEMO_PORT}" }

[vars.APP_ENV]
value = "${env}"

[[probes]]
name = "health"
http = { url = "${services.web.url}/up", expect = { status = 200, json = { "$.commit" = "${commit}" } } }
"#;

#[test]
fn a_good_spec_loads_with_process_variables_substituted_and_pipeline_ones_kept() {
    let spec = load(GOOD).unwrap();
    let web = &spec.spec.services["web"];
    assert_eq!(web.settings["port"].as_str(), Some("8080"));
    let app_env = spec.spec.vars["APP_ENV"].value.as_ref().unwrap();
    assert_eq!(app_env.names(), ["env"]);
    assert_eq!(app_env.to_source(), "${env}");
    assert_eq!(
        spec.spec.probes[0].http.as_ref().unwrap().url.to_source(),
        "${services.web.url}/up"
    );
    assert_eq!(spec.spec.promoted_from("production"), Some("staging"));
    assert_eq!(spec.hash.len(), 64);
}

#[test]
fn a_misspelt_key_is_reported_at_its_line_and_column() {
    let text = GOOD.replace(
        "promotes_to = \"production\"",
        "promote_to = \"production\"",
    );
    let m = message(&text);
    assert!(m.starts_with("staging.toml:7:1: "), "{m}");
    assert!(m.contains("unknown field `promote_to`"), "{m}");
    assert!(
        m.contains("promotes_to"),
        "the message lists the expected keys: {m}"
    );
}

#[test]
fn a_value_of_the_wrong_type_is_reported_at_the_value() {
    let text = GOOD.replace("protected = true", "protected = \"yes\"");
    let m = message(&text);
    assert!(m.starts_with("staging.toml:11:13: "), "{m}");
    assert!(m.contains("invalid type") && m.contains("boolean"), "{m}");
}

#[test]
fn an_unknown_provider_is_reported_at_the_provider_value_with_the_known_ones() {
    let text = GOOD.replace(
        "provider = \"local\"\nprotected",
        "provider = \"heroku\"\nprotected",
    );
    let m = message(&text);
    assert!(m.starts_with("staging.toml:10:12: "), "{m}");
    assert!(
        m.contains("unknown provider `heroku`") && m.contains("local, render"),
        "{m}"
    );
}

#[test]
fn an_undefined_variable_is_reported_at_the_reference() {
    let text = GOOD.replace("${DEMO_PORT}", "${DEMO_PROT}");
    let m = message(&text);
    assert!(m.starts_with("staging.toml:15:"), "{m}");
    assert!(m.contains("undefined variable `${DEMO_PROT}`"), "{m}");
    let col: usize = m.split(':').nth(2).unwrap().parse().unwrap();
    let line = text.lines().nth(14).unwrap();
    assert_eq!(
        &line[col - 1..col + 1],
        "${",
        "the column points at the reference in {line}"
    );
}

#[test]
fn a_variable_with_a_default_is_not_an_error() {
    let text = GOOD.replace("${DEMO_PORT}", "${UNSET_PORT:-9000}");
    let spec = load(&text).unwrap();
    assert_eq!(
        spec.spec.services["web"].settings["port"].as_str(),
        Some("9000")
    );
}

#[test]
fn malformed_toml_is_reported_at_the_broken_place() {
    let text = GOOD.replace("name = \"demo\"", "name = \"demo");
    let m = message(&text);
    assert!(m.starts_with("staging.toml:3:"), "{m}");
    assert!(m.contains("invalid TOML"), "{m}");
}

#[test]
fn a_pipeline_reference_to_an_undeclared_service_is_an_error() {
    let text = GOOD.replace("${services.web.url}/up", "${services.api.url}/up");
    let m = message(&text);
    assert!(m.starts_with("staging.toml:22:"), "{m}");
    assert!(m.contains("service `api`"), "{m}");
}

#[test]
fn promotes_to_must_name_a_declared_environment() {
    let text = GOOD.replace("promotes_to = \"production\"", "promotes_to = \"prod\"");
    let m = message(&text);
    assert!(m.starts_with("staging.toml:7:15: "), "{m}");
    assert!(
        m.contains("`prod`") && m.contains("production, staging"),
        "{m}"
    );
}

#[test]
fn a_secret_with_a_plain_value_is_refused() {
    let text = format!("{GOOD}\n[vars.JWT_SECRET]\nsecret = true\nvalue = \"abc\"\n");
    let m = message(&text);
    assert!(
        m.contains("`JWT_SECRET` is a secret but has a plain `value`"),
        "{m}"
    );
}

#[test]
fn a_probe_needs_exactly_one_kind() {
    let text = format!("{GOOD}\n[[probes]]\nname = \"empty\"\n");
    let m = message(&text);
    assert!(m.contains("probe `empty` needs exactly one of"), "{m}");
}

#[test]
fn a_missing_file_is_a_usage_error_naming_the_path() {
    let e = LoadedSpec::load("/nonexistent/staging.toml", LoadOptions::new(PROVIDERS)).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/staging.toml"), "{e}");
    assert_eq!(e.class(), staging_core::ErrorClass::Usage, "{e:?}");
}

#[test]
fn a_directory_is_a_usage_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let e = LoadedSpec::load(dir.path(), LoadOptions::new(PROVIDERS)).unwrap_err();
    assert!(e.to_string().contains("directory"), "{e}");
    assert_eq!(e.class(), staging_core::ErrorClass::Usage, "{e:?}");
}

#[test]
fn promotes_to_cycles_are_refused_at_the_promotes_to() {
    let two = GOOD.replace(
        "provider = \"local\"\nprotected = true",
        "provider = \"local\"\nprotected = true\npromotes_to = \"staging\"",
    );
    let m = message(&two);
    assert!(m.starts_with("staging.toml:"), "{m}");
    assert!(
        m.contains("cycle") && m.contains("production → staging → production"),
        "{m}"
    );

    let three = format!(
        "{}\n[environments.qa]\nprovider = \"local\"\npromotes_to = \"staging\"\n",
        GOOD.replace(
            "provider = \"local\"\nprotected = true",
            "provider = \"local\"\nprotected = true\npromotes_to = \"qa\"",
        )
    );
    let m = message(&three);
    assert!(m.contains("cycle"), "{m}");
    // At the `promotes_to` of the first environment on the cycle, by name.
    let line: usize = m.split(':').nth(1).unwrap().parse().unwrap();
    assert!(
        three
            .lines()
            .nth(line - 1)
            .unwrap()
            .starts_with("promotes_to"),
        "{m}"
    );

    // A chain that ends is fine.
    assert!(load(GOOD).is_ok());
}

#[test]
fn the_place_of_a_reference_deep_in_a_long_string_with_escapes_is_exact() {
    // 3,000 references, each after an escape, then one that names nothing: the places of
    // all of them are mapped in one walk, and the last is still at its own column.
    let head =
        "[project]\nname = \"x\"\n\n[environments.staging]\nprovider = \"local\"\n\n[vars.BIG]\n";
    let body = "\\t${commit}".repeat(3000);
    let text = format!("{head}value = \"{body}${{vars.NOPE}}\"\n");
    let m = message(&text);
    let col = "value = \"".len() + body.len() + 1;
    assert!(
        m.starts_with(&format!("staging.toml:8:{col}: ")),
        "{}",
        &m[..m.len().min(200)]
    );
    assert!(m.contains("`NOPE`"), "{}", &m[..m.len().min(200)]);
}

#[test]
fn a_promotes_to_chain_thousands_long_loads_and_a_cycle_closing_it_is_named() {
    let chain = |close: bool| {
        let mut t = String::from("[project]\nname = \"x\"\n");
        for i in 0..3000 {
            t.push_str(&format!(
                "\n[environments.e{i:04}]\nprovider = \"local\"\npromotes_to = \"e{:04}\"\n",
                i + 1
            ));
        }
        let last = if close {
            "promotes_to = \"e0000\""
        } else {
            "protected = true"
        };
        t.push_str(&format!(
            "\n[environments.e3000]\nprovider = \"local\"\n{last}\n"
        ));
        t
    };
    assert!(load(&chain(false)).is_ok());
    let m = message(&chain(true));
    assert!(
        m.contains("forms a cycle: e0000 → e0001 → "),
        "{}",
        &m[..200]
    );
    assert!(
        m.contains("e3000 → e0000;"),
        "the cycle closes at its first name"
    );
    // At e0000's `promotes_to`: line 6.
    assert!(m.starts_with("staging.toml:6:"), "{}", &m[..80]);
}

#[test]
fn a_probe_max_body_above_the_ceiling_or_of_zero_is_refused_naming_both() {
    let huge = GOOD.replace(
        r#"http = { url = "${services.web.url}/up","#,
        r#"http = { max_body = 4294967296, url = "${services.web.url}/up","#,
    );
    assert_ne!(huge, GOOD);
    let m = message(&huge);
    assert!(
        m.contains("4 GiB") && m.contains("64 MiB") && m.contains("max_body"),
        "{m}"
    );
    assert!(m.starts_with("staging.toml:"), "names the place: {m}");
    let step = format!(
        "{GOOD}\n[[probes]]\nname = \"login\"\nsteps = [{{ url = \"${{services.web.url}}/a\" }}, {{ url = \"${{services.web.url}}/b\", max_body = 0 }}]\n"
    );
    let m = message(&step);
    assert!(
        m.contains("probe `login`") && m.contains("0 bytes") && m.starts_with("staging.toml:26:"),
        "{m}"
    );
    // At the ceiling is allowed.
    load(&GOOD.replace(
        r#"http = { url = "${services.web.url}/up","#,
        r#"http = { max_body = 67108864, url = "${services.web.url}/up","#,
    ))
    .unwrap();
}
