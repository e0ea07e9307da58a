//! Issue 13, event 2: on ECS every variable, secrets included, was written in plain text
//! into the `environment` of each new task-definition revision. Now a secret variable's
//! value goes to Secrets Manager (the environment's `secrets_prefix` + the name) and the
//! container's `secrets` references it; a name is never in both lists. Run through the
//! deploy step of `up` (what writes env vars and registers revisions) on moto.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, KeyValuePair, LaunchType, NetworkMode,
};
use secrecy::{ExposeSecret, SecretString};
use staging_core::pipeline::{DeployStep, Pipeline, RunContext};
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{DynProvider, Provider, ProviderExt};
use staging_provider_aws::{EcsProvider, EcsServiceSettings, SecretsManagerStore};

const TEMPLATE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:${commit}";
const JWT: &str = "canary-jwt-5f0e-never-in-a-task-definition";
const LEGACY: &str = "canary-legacy-91ab-left-in-plain-text-by-an-older-tool";

const SPEC: &str = r#"[project]
name = "shop"

[environments.staging]
provider = "aws"
settings = { region = "us-east-1", cluster = "c", secrets_prefix = "PREFIX" }

[services.web]

[vars.RAILS_ENV]
value = "staging"

[vars.JWT_SECRET]
secret = true
source = { env = "JWT" }

[vars.LEGACY_TOKEN]
secret = true
source = { env = "LEGACY" }
"#;

#[tokio::test]
async fn event_2_no_task_definition_revision_registered_by_up_holds_a_secret_value() {
    let ctx = common::ctx().await;
    let ecs = ctx.ecs().await;
    let cluster = common::unique("secrets-cluster");
    let family = common::unique("secrets-web");
    let prefix = format!("{}/", common::unique("shop/staging"));
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    // The revision the service runs before the run: an older tool left a secret in plain
    // text in `environment`.
    let container = ContainerDefinition::builder()
        .name("web")
        .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:initial")
        .memory(256)
        .essential(true)
        .environment(
            KeyValuePair::builder()
                .name("LEGACY_TOKEN")
                .value(LEGACY)
                .build(),
        )
        .build();
    let first = ecs
        .register_task_definition()
        .family(&family)
        .network_mode(NetworkMode::Bridge)
        .requires_compatibilities(Compatibility::Ec2)
        .container_definitions(container)
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_owned();
    ecs.create_service()
        .cluster(&cluster)
        .service_name("web")
        .task_definition(&first)
        .desired_count(1)
        .launch_type(LaunchType::Ec2)
        .send()
        .await
        .unwrap();

    let spec = LoadedSpec::parse(
        "staging.toml",
        SPEC.replace("PREFIX", &prefix),
        LoadOptions::new(&["aws"]),
    )
    .unwrap();
    let secret_names = staging_core::secretness::secret_vars(&spec.spec, "staging");
    assert_eq!(
        secret_names.iter().collect::<Vec<_>>(),
        ["JWT_SECRET", "LEGACY_TOKEN"]
    );
    let store = SecretsManagerStore::new(ctx.clone(), prefix.clone());
    let provider = EcsProvider::new(
        ctx.clone(),
        BTreeMap::from([(
            "web".to_owned(),
            EcsServiceSettings::new(&cluster, "web").with_image_template(TEMPLATE),
        )]),
    )
    .with_secrets(store, secret_names);
    let provider: DynProvider = Arc::new(provider);

    // The deploy step of `up`: set the variables that differ, then deploy the commit.
    let mut run = RunContext::new(Arc::new(spec), "staging", "c0ffee0123456789").unwrap();
    staging_core::testkit::assume_isolated(&mut run);
    run.provider = Some(provider.clone());
    run.vars = BTreeMap::from([
        ("RAILS_ENV".to_owned(), SecretString::from("staging")),
        ("JWT_SECRET".to_owned(), SecretString::from(JWT)),
        ("LEGACY_TOKEN".to_owned(), SecretString::from(LEGACY)),
    ]);
    let report = Pipeline::new().step(DeployStep).run(&mut run).await;
    assert!(report.ok, "{report:#?}");

    // Every revision of the family after the first was registered by the run.
    let arns = ecs
        .list_task_definitions()
        .family_prefix(&family)
        .send()
        .await
        .unwrap()
        .task_definition_arns()
        .to_vec();
    let registered: Vec<&String> = arns.iter().filter(|a| **a != first).collect();
    assert!(registered.len() >= 2, "{arns:?}");
    for arn in &registered {
        let out = ecs
            .describe_task_definition()
            .task_definition(arn.as_str())
            .send()
            .await
            .unwrap();
        let td = out.task_definition().unwrap();
        // Anywhere in it: every field, as the SDK holds it.
        let whole = format!("{td:?}");
        for canary in [JWT, LEGACY] {
            assert!(
                !whole.contains(canary),
                "{arn} holds a secret value: {whole}"
            );
        }
        let c = &td.container_definitions()[0];
        let env: Vec<&str> = c.environment().iter().filter_map(|kv| kv.name()).collect();
        let secrets: BTreeMap<&str, &str> = c
            .secrets()
            .iter()
            .map(|s| (s.name(), s.value_from()))
            .collect();
        for name in &env {
            assert!(
                !secrets.contains_key(name),
                "{arn}: `{name}` is in both `environment` and `secrets`"
            );
        }
        assert!(
            !env.contains(&"JWT_SECRET") && !env.contains(&"LEGACY_TOKEN"),
            "{arn}: {env:?}"
        );
    }

    // The newest revision references both secrets, kept in Secrets Manager under the
    // documented names, and carries the plain variable in `environment`.
    let newest = ecs
        .describe_task_definition()
        .task_definition(registered.last().unwrap().as_str())
        .send()
        .await
        .unwrap();
    let c = &newest.task_definition().unwrap().container_definitions()[0];
    assert!(
        c.environment()
            .iter()
            .any(|kv| kv.name() == Some("RAILS_ENV"))
    );
    let sm = ctx.secrets_manager().await;
    for (name, value) in [("JWT_SECRET", JWT), ("LEGACY_TOKEN", LEGACY)] {
        let from = c
            .secrets()
            .iter()
            .find(|s| s.name() == name)
            .unwrap_or_else(|| panic!("`{name}` not referenced: {c:?}"))
            .value_from()
            .to_owned();
        let by_ref = sm.get_secret_value().secret_id(&from).send().await.unwrap();
        assert_eq!(by_ref.secret_string(), Some(value));
        let by_name = sm
            .get_secret_value()
            .secret_id(format!("{prefix}{name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(by_name.arn(), Some(from.as_str()));
    }

    // Read back, the provider answers the values (the next run sees nothing to change).
    let handle = provider.locate("staging", "web").await.unwrap();
    let vars = provider.env_vars(&handle).await.unwrap();
    assert_eq!(vars["JWT_SECRET"].expose_secret(), JWT);
    assert_eq!(vars["LEGACY_TOKEN"].expose_secret(), LEGACY);
    assert_eq!(vars["RAILS_ENV"].expose_secret(), "staging");
}
