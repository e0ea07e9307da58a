//! The example AWS stack loads, passes the factory's checks, and yields the probes it asks
//! for; bad settings are reported at their place in the file.

use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{Error, ProviderFactory};
use staging_provider_aws::{AwsFactory, build_probes, settings_from_spec};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/aws/staging.toml"
);

fn load(source: &str) -> staging_core::Result<LoadedSpec> {
    LoadedSpec::parse(
        "staging.toml",
        source.to_owned(),
        LoadOptions::new(&["local", "aws"]),
    )
}

#[test]
fn the_example_aws_stack_passes_the_factory_check() {
    let spec = LoadedSpec::load(EXAMPLE, LoadOptions::new(&["local", "aws"])).unwrap();
    for env in ["staging", "production"] {
        AwsFactory
            .check(&spec, env)
            .unwrap_or_else(|e| panic!("{env}: {e}"));
        AwsFactory
            .build(&spec, env)
            .unwrap_or_else(|e| panic!("{env}: {e}"));
    }
    let (env, services) = settings_from_spec(&spec, "staging").unwrap();
    assert_eq!(env.cluster.as_deref(), Some("shop-staging"));
    assert_eq!(services["web"].service, "shop-web");
    assert!(
        services["web"]
            .target_group_arn
            .as_deref()
            .unwrap()
            .contains("shop-staging-web")
    );
    assert_eq!(services["worker"].cluster, "shop-staging");

    let probes = build_probes(&spec, "staging").unwrap();
    let names: Vec<&str> = probes.iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        vec![
            "alb targets of web",
            "ses account",
            "ses identity shop.example.com",
            "ses identity noreply@shop.example.com",
            "ses test send to ops@shop.example.com",
            "acm certificate staging.shop.example.com",
            "route53 staging.shop.example.com A",
        ]
    );
}

const BASE: &str = r#"
[project]
name = "p"

[environments.staging]
provider = "aws"
settings = { cluster = "c" }
"#;

fn config_error(source: &str) -> (String, String) {
    let spec = load(source).unwrap();
    match AwsFactory.check(&spec, "staging").unwrap_err() {
        Error::ConfigInvalid { location, message } => (location.unwrap_or_default(), message),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn an_unknown_service_setting_is_reported_at_its_place() {
    let (at, message) = config_error(&format!(
        "{BASE}\n[services.web]\nsettings = {{ clustr = \"x\" }}\n"
    ));
    assert_eq!(at, "staging.toml:10:1", "{message}");
    assert!(message.contains("clustr"), "{message}");
}

#[test]
fn an_image_template_without_the_commit_is_refused() {
    let (at, message) = config_error(&format!(
        "{BASE}\n[services.web.settings]\nimage = \"repo/app:latest\"\n"
    ));
    assert_eq!(at, "staging.toml:10:9", "{message}");
    assert!(message.contains("${commit}"), "{message}");
}

#[test]
fn a_service_without_a_cluster_is_refused() {
    let source = "[project]\nname = \"p\"\n\n[environments.staging]\nprovider = \"aws\"\n\n[services.web]\nsettings = { service = \"web\" }\n";
    let (_, message) = config_error(source);
    assert!(message.contains("cluster"), "{message}");
}

#[test]
fn a_bad_target_group_arn_and_a_record_without_a_target_are_refused() {
    let (_, message) = config_error(&format!(
        "{BASE}\n[services.web.settings]\ntarget_group_arn = \"shop-web\"\n"
    ));
    assert!(message.contains("target group ARN"), "{message}");
    let source = format!(
        "{BASE}\n[[environments.staging.settings.route53]]\nzone = \"example.com\"\nname = \"a.example.com\"\n"
    );
    let (_, message) = config_error(&source.replace("settings = { cluster = \"c\" }\n", ""));
    assert!(message.contains("alias_target"), "{message}");
}
