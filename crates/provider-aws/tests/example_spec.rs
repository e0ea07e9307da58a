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
    // The web service's target groups are read from ECS; the worker has none to check.
    assert_eq!(services["web"].target_group_arn, None);
    assert!(services["web"].checks_target_health());
    assert_eq!(services["worker"].cluster, "shop-staging");
    assert!(!services["worker"].checks_target_health());

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
    assert_eq!(at, "staging.toml:10:14", "{message}");
    assert!(message.contains("unknown field `clustr`"), "{message}");
    assert!(message.contains("did you mean `cluster`?"), "{message}");
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

#[test]
fn a_bad_target_group_arn_is_reported_at_its_value_in_the_settings_or_the_overrides() {
    let (at, message) = config_error(&format!(
        "{BASE}\n[services.web.settings]\ntarget_group_arn = \"shop-web\"\n"
    ));
    assert_eq!(at, "staging.toml:10:20", "{message}");
    assert!(
        message.contains("`shop-web` is not a target group ARN"),
        "{message}"
    );
    let (at, message) = config_error(&format!(
        "{BASE}\n[services.web.settings]\nservice = \"shop-web\"\n\n[services.web.overrides.staging]\ntarget_group_arn = \"tg/shop-web\"\n"
    ));
    assert_eq!(at, "staging.toml:13:20", "{message}");
    assert!(message.contains("`tg/shop-web`"), "{message}");
}

#[test]
fn target_health_that_is_not_true_or_false_is_reported_at_its_value() {
    let (at, message) = config_error(&format!(
        "{BASE}\n[services.web.settings]\nservice = \"shop-web\"\ntarget_health = \"yes\"\n"
    ));
    assert_eq!(at, "staging.toml:11:17", "{message}");
    assert!(message.contains("expected a boolean"), "{message}");
}

fn probe_names(web_settings: &str) -> Vec<String> {
    let source = format!("{BASE}\n[services.web.settings]\n{web_settings}\n");
    let spec = load(&source).unwrap();
    build_probes(&spec, "staging")
        .unwrap()
        .iter()
        .map(|p| p.name().to_owned())
        .collect()
}

#[test]
fn target_health_is_checked_with_an_arn_or_when_asked_and_never_when_turned_off() {
    let arn =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef";
    let alb = vec!["alb targets of web".to_owned()];
    // No ARN and not asked: a worker behind no load balancer is not checked.
    assert!(probe_names("service = \"w\"").is_empty());
    // Asked without an ARN: the target groups are read from ECS when the probe runs.
    assert_eq!(probe_names("target_health = true"), alb);
    // An ARN alone keeps its check, as before `target_health` existed.
    assert_eq!(probe_names(&format!("target_group_arn = \"{arn}\"")), alb);
    // Turned off (in an environment's overrides, say) even with an ARN.
    assert!(
        probe_names(&format!(
            "target_group_arn = \"{arn}\"\ntarget_health = false"
        ))
        .is_empty()
    );
}
