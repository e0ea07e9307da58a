//! Ephemeral environments in the spec: `ephemeral`, `like`, `ttl`, and `${instance}` — filled
//! in once at load, and refused at its `line:col` wherever it would rename a long-lived
//! environment's resources.

use staging_core::Error;
use staging_core::spec::{LoadOptions, LoadedSpec};

const PROVIDERS: &[&str] = &["local", "render"];

fn load(text: &str, instance: Option<&str>) -> Result<LoadedSpec, Error> {
    LoadedSpec::parse(
        "staging.toml",
        text.to_owned(),
        LoadOptions {
            env: &|name| (name == "REGION").then(|| "oregon".to_owned()),
            known_providers: PROVIDERS,
            instance,
        },
    )
}

fn error(text: &str, instance: Option<&str>) -> String {
    match load(text, instance) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const SPEC: &str = r#"[project]
name = "shop"

[environments.staging]
provider = "render"
promotes_to = "production"
settings = { owner_id = "tea-1" }

[environments.production]
provider = "render"
protected = true
settings = { owner_id = "tea-1" }

[environments.preview]
ephemeral = true
like = "staging"
ttl = "72h"
settings = { owner_id = "tea-1" }

[services.api]
settings = { service_name = "shop-api" }
overrides.staging = { service_name = "shop-api-staging" }
overrides.preview = { service_name = "shop-api-${instance}" }

[vars.APP_ENV]
values = { staging = "staging", production = "production" }

[vars.FEATURE]
values = { staging = "on", production = "off", preview = "preview-${instance}" }
"#;

#[test]
fn an_instance_fills_in_its_name_once_at_load_and_takes_provider_and_values_from_like() {
    let spec = load(SPEC, Some("pr-42")).unwrap();
    let preview = spec.spec.environment("preview").unwrap();
    assert_eq!(preview.provider, "render", "the provider of `like`");
    assert_eq!(preview.ttl, Some(std::time::Duration::from_secs(72 * 3600)));
    // A value of its own, with the instance filled in; a value it gives none of, `like`'s.
    let feature = &spec.spec.vars["FEATURE"].values["preview"];
    assert_eq!(feature.as_literal().unwrap(), "preview-pr-42");
    let app_env = &spec.spec.vars["APP_ENV"].values["preview"];
    assert_eq!(app_env.as_literal().unwrap(), "staging");
    // The service created in an instance copies staging's, under the instance's name.
    let create = spec.service_create("api", "preview").unwrap();
    assert_eq!(create.like.as_deref(), Some("staging"));
    assert!(spec.service_create("api", "staging").is_none());
    let asked = spec.creations_asked("preview");
    assert_eq!(asked.services.get("api"), Some(&Some("staging".to_owned())));
    // What belongs to the instance is keyed by it; long-lived environments keep their name.
    assert_eq!(spec.state_key("preview"), "preview.pr-42");
    assert_eq!(spec.state_key("staging"), "staging");
    assert!(spec.check_instance_for("preview").is_ok());
    assert!(
        spec.check_instance_for("staging")
            .unwrap_err()
            .to_string()
            .contains("not ephemeral")
    );
}

#[test]
fn two_instances_load_two_different_effective_specs_from_one_file() {
    let a = load(SPEC, Some("pr-1")).unwrap();
    let b = load(SPEC, Some("pr-2")).unwrap();
    assert_eq!(a.hash, b.hash, "one file");
    assert_ne!(a.effective_hash, b.effective_hash);
}

#[test]
fn without_an_instance_the_template_loads_and_refuses_to_run() {
    let spec = load(SPEC, None).unwrap();
    let feature = &spec.spec.vars["FEATURE"].values["preview"];
    assert_eq!(feature.as_literal().unwrap(), "preview-${instance}");
    let e = spec.check_instance_for("preview").unwrap_err().to_string();
    assert!(e.contains("is ephemeral: name the instance"), "{e}");
}

#[test]
fn an_instance_value_that_is_no_label_is_refused_whatever_its_encoding() {
    for bad in [
        "PR-42", "../etc", "pr 42", "pr%2d42", "pr-", "", "pr\n42", "prä",
    ] {
        let e = error(SPEC, Some(bad));
        assert!(e.contains("is not a valid instance name"), "{bad:?}: {e}");
    }
}

#[test]
fn a_value_holding_dollar_instance_is_taken_literally_and_never_expanded_again() {
    // The instance is spliced in as text, like a process variable: a process variable
    // whose value spells `${instance}` stays those characters.
    let text = SPEC.replace(
        "preview = \"preview-${instance}\"",
        "preview = \"preview-${instance}-$${instance}\"",
    );
    let spec = load(&text, Some("pr-42")).unwrap();
    let feature = &spec.spec.vars["FEATURE"].values["preview"];
    assert_eq!(
        feature.as_literal().unwrap(),
        "preview-pr-42-${instance}",
        "`$${{` is a literal"
    );
}

#[test]
fn dollar_instance_outside_an_ephemeral_environment_is_refused_at_its_place() {
    // In every environment's settings: it would rename staging's and production's service
    // per pull request.
    let text = SPEC.replace(
        "settings = { service_name = \"shop-api\" }",
        "settings = { service_name = \"shop-api-${instance}\" }",
    );
    let e = error(&text, Some("pr-42"));
    assert!(e.contains("staging.toml:21:"), "{e}");
    assert!(e.contains("services.api.settings.service_name"), "{e}");
    assert!(e.contains("ephemeral: preview"), "{e}");
    // In staging's override, and in a value of staging.
    let text = SPEC.replace("shop-api-staging", "shop-api-${instance}-staging");
    assert!(error(&text, None).contains("services.api.overrides.staging"));
    let text = SPEC.replace("staging = \"on\"", "staging = \"${instance}\"");
    assert!(error(&text, None).contains("vars.FEATURE.values.staging"));
    // In the project name.
    let text = SPEC.replace("name = \"shop\"", "name = \"shop-${instance}\"");
    assert!(error(&text, None).contains("staging.toml:2:"));
}

#[test]
fn the_rules_of_an_ephemeral_environment_are_refused_at_their_place() {
    let cases = [
        (
            "ephemeral = true\nlike = \"staging\"\nttl = \"72h\"",
            "ephemeral = true\nlike = \"staging\"\nttl = \"72h\"\nprotected = true",
            "cannot be protected",
        ),
        (
            "ephemeral = true\nlike = \"staging\"\nttl = \"72h\"",
            "ephemeral = true\nlike = \"staging\"\nttl = \"72h\"\npromotes_to = \"production\"",
            "promotes to nothing",
        ),
        (
            "ephemeral = true\nlike = \"staging\"",
            "ephemeral = true\nlike = \"stagign\"",
            "not declared",
        ),
        (
            "ephemeral = true\nlike = \"staging\"",
            "ephemeral = true\nlike = \"preview\"",
            "cannot be like itself",
        ),
        ("ttl = \"72h\"", "ttl = \"0s\"", "longer than zero"),
        ("ttl = \"72h\"", "ttl = \"soon\"", "staging.toml:17:"),
        (
            "ephemeral = true\nlike = \"staging\"",
            "like = \"staging\"",
            "`like` is for ephemeral environments",
        ),
    ];
    for (from, to, expected) in cases {
        let text = SPEC.replacen(from, to, 1);
        assert_ne!(text, SPEC, "{from}");
        let e = error(&text, None);
        assert!(e.contains(expected), "{to}: {e}");
        assert!(e.contains("staging.toml:"), "{to}: {e}");
    }
    // `ttl` on a long-lived environment; a promotion into an ephemeral one.
    let text = SPEC.replacen(
        "promotes_to = \"production\"\n",
        "promotes_to = \"production\"\nttl = \"1h\"\n",
        1,
    );
    assert!(error(&text, None).contains("`ttl` is for ephemeral environments"));
    let text = SPEC.replacen(
        "promotes_to = \"production\"",
        "promotes_to = \"preview\"",
        1,
    );
    assert!(error(&text, None).contains("which is ephemeral: nothing is promoted into"));
    // An environment without a provider and without `like`.
    let text = SPEC.replacen(
        "ephemeral = true\nlike = \"staging\"\n",
        "ephemeral = true\n",
        1,
    );
    assert!(error(&text, None).contains("names no `provider`"));
}
