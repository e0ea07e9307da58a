//! The spec's `railway` settings: typed (a typo is an error at its place with a
//! suggestion), checked, named for isolation, and built into a provider.

mod support;

use std::sync::OnceLock;

use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{Error, Provider, ProviderFactory, ProviderRegistry};
use staging_provider_railway::RailwayFactory;

fn load(text: &str) -> LoadedSpec {
    let names = ["railway"];
    LoadedSpec::parse("staging.toml", text.to_owned(), LoadOptions::new(&names))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn spec_with(staging_settings: &str, service: &str) -> String {
    format!(
        r#"[project]
name = "shop"

[environments.staging]
provider = "railway"
promotes_to = "production"
settings = {{ {staging_settings} }}

[environments.production]
provider = "railway"
protected = true
settings = {{ project_id = "p-1" }}

[services.web]
settings = {{ {service} }}
"#
    )
}

fn check(text: &str) -> Result<(), Error> {
    ProviderRegistry::new()
        .register(RailwayFactory::new())
        .check(&load(text), "staging")
}

#[test]
fn a_misspelt_setting_is_an_error_at_its_place_with_a_suggestion() {
    let err = check(&spec_with(
        r#"project_id = "p-1""#,
        r#"servce_name = "api""#,
    ))
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::ConfigInvalid { .. }), "{err:?}");
    assert!(text.contains("did you mean `service_name`"), "{text}");
    assert!(text.contains("staging.toml:15:"), "{text}");
    let err = check(&spec_with(r#"projct_id = "p-1""#, "")).unwrap_err();
    assert!(
        err.to_string().contains("did you mean `project_id`"),
        "{err}"
    );
}

#[test]
fn settings_that_exclude_each_other_are_refused() {
    for (env, service, what) in [
        (
            r#"project_id = "p-1", project = "shop""#,
            "",
            "`project_id` and `project`",
        ),
        (
            r#"project_id = "p-1", environment = "staging", environment_id = "e-1""#,
            "",
            "`environment_id` and `environment`",
        ),
        (
            r#"project_id = "p-1""#,
            r#"service_id = "s-1", service_name = "api""#,
            "`service_id` and `service_name`",
        ),
        (r#"project_id = " p-1""#, "", "surrounding whitespace"),
    ] {
        let err = check(&spec_with(env, service)).unwrap_err();
        assert!(err.to_string().contains(what), "{what}: {err}");
    }
    check(&spec_with(
        r#"project_id = "p-1", create_if_missing = true"#,
        "",
    ))
    .unwrap();
}

#[test]
fn create_if_missing_is_refused_for_a_protected_environment() {
    let text = r#"[project]
name = "shop"

[environments.production]
provider = "railway"
protected = true
settings = { project_id = "p-1", create_if_missing = true }

[services.web]
"#;
    let err = ProviderRegistry::new()
        .register(RailwayFactory::new())
        .check(&load(text), "production")
        .unwrap_err();
    assert!(err.to_string().contains("protected"), "{err}");
}

#[test]
fn a_service_instance_is_named_by_project_environment_and_service() {
    let spec = load(&spec_with(
        r#"project_id = "p-1""#,
        r#"service_name = "api""#,
    ));
    let f = RailwayFactory::new();
    let staging = f.resources(&spec, "staging").unwrap();
    let production = f.resources(&spec, "production").unwrap();
    let shown = |r: &[staging_core::isolation::Resource]| format!("{r:?}");
    assert!(shown(&staging).contains("staging"), "{staging:?}");
    assert!(shown(&production).contains("production"), "{production:?}");
    assert_ne!(shown(&staging), shown(&production));
}

#[test]
fn missing_credentials_fail_when_the_provider_is_built() {
    let spec = load(&spec_with(r#"project_id = "p-1""#, ""));
    let err = RailwayFactory::with_lookup(|_| None)
        .build(&spec, "staging")
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    assert_eq!(err.class().exit_code(), 3);
    assert!(err.to_string().contains("RAILWAY_API_TOKEN"), "{err}");
}

static URL: OnceLock<String> = OnceLock::new();

fn lookup(name: &str) -> Option<String> {
    match name {
        "RAILWAY_API_TOKEN" => Some(support::TOKEN.to_owned()),
        "RAILWAY_API_URL" => URL.get().cloned(),
        _ => None,
    }
}

#[tokio::test]
async fn a_project_named_by_name_is_found() {
    let s = support::StandIn::start().await;
    URL.set(s.url.clone()).unwrap();
    let spec = load(&spec_with(r#"project = "shop""#, ""));
    let p = RailwayFactory::with_lookup(lookup)
        .build(&spec, "staging")
        .unwrap();
    let web = p.locate("staging", "web").await.unwrap();
    assert_eq!(p.name(), "railway");
    assert!(!web.id.is_empty());
    let requests = s.state().await["requests"].clone();
    assert_eq!(requests[0]["operation"], "Projects");
    assert_eq!(requests[0]["credential"], "bearer");
    s.assert_no_rejected().await;
}
