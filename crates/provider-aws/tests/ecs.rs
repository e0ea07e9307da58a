//! The ECS provider against moto: core's conformance suite, rollout judgement, rollback,
//! env vars, and the report of a failed rollout.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, KeyValuePair, LaunchType, LogConfiguration, LogDriver,
    NetworkMode,
};
use secrecy::ExposeSecret;
use staging_core::{
    DeployRequest, DeployStatus, DeployTarget, DynProvider, Error, Provider, ProviderExt,
};
use staging_provider_aws::{AwsContext, EcsProvider, EcsServiceSettings};

const TEMPLATE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:${commit}";

struct Stack {
    ctx: AwsContext,
    cluster: String,
    family: String,
    log_group: String,
    first_revision: String,
}

/// A cluster with one service `web` (EC2 launch type, bridge networking: no VPC needed)
/// running revision 1 of a fresh family whose container logs to CloudWatch.
async fn stack() -> Stack {
    let ctx = common::ctx().await;
    let ecs = ctx.ecs().await;
    let cluster = common::unique("cluster");
    let family = common::unique("web");
    let log_group = format!("/ecs/{family}");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let container = ContainerDefinition::builder()
        .name("web")
        .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:initial")
        .memory(256)
        .essential(true)
        .environment(
            KeyValuePair::builder()
                .name("RAILS_ENV")
                .value("staging")
                .build(),
        )
        .log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", &log_group)
                .options("awslogs-region", "us-east-1")
                .options("awslogs-stream-prefix", "app")
                .build()
                .unwrap(),
        )
        .build();
    let td = ecs
        .register_task_definition()
        .family(&family)
        .network_mode(NetworkMode::Bridge)
        .requires_compatibilities(Compatibility::Ec2)
        .container_definitions(container)
        .send()
        .await
        .unwrap();
    let first_revision = td
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_owned();
    ecs.create_service()
        .cluster(&cluster)
        .service_name("web")
        .task_definition(&first_revision)
        .desired_count(1)
        .launch_type(LaunchType::Ec2)
        .send()
        .await
        .unwrap();
    Stack {
        ctx,
        cluster,
        family,
        log_group,
        first_revision,
    }
}

fn provider(stack: &Stack, template: Option<&str>) -> EcsProvider {
    let mut settings = EcsServiceSettings::new(&stack.cluster, "web");
    settings.image_template = template.map(str::to_owned);
    EcsProvider::new(
        stack.ctx.clone(),
        BTreeMap::from([("web".to_owned(), settings)]),
    )
    .with_poll_interval(Duration::from_millis(20))
    .with_read_budget(staging_core::ReadBudget::unlimited("moto"))
}

/// Start a task of the service (as ECS would) on a revision, FARGATE so that moto needs no
/// container instance.
async fn start_service_task(stack: &Stack, task_definition: &str) -> String {
    let out = stack
        .ctx
        .ecs()
        .await
        .run_task()
        .cluster(&stack.cluster)
        .task_definition(task_definition)
        .group("service:web")
        .launch_type(LaunchType::Fargate)
        .send()
        .await
        .unwrap();
    out.tasks()[0].task_arn().unwrap().to_owned()
}

async fn stop_task(stack: &Stack, task_arn: &str, reason: &str) {
    stack
        .ctx
        .ecs()
        .await
        .stop_task()
        .cluster(&stack.cluster)
        .task(task_arn)
        .reason(reason)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn ecs_provider_passes_the_conformance_suite_on_moto() {
    let stack = stack().await;
    let p: DynProvider = Arc::new(provider(&stack, Some(TEMPLATE)));
    staging_core::testkit::run_all(&p, "staging", "web").await;
}

#[tokio::test]
async fn deploy_registers_a_revision_with_the_new_image_and_goes_live() {
    let stack = stack().await;
    let p = provider(&stack, None);
    let svc = p.locate("staging", "web").await.unwrap();
    assert!(svc.id.ends_with("/web"), "{}", svc.id);
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v2";
    let req = DeployRequest {
        target: DeployTarget::Image(image.into()),
        commit: Some("c0ffee1".into()),
        clear_cache: false,
    };
    let d = p
        .deploy(&staging_core::testkit::target(&svc), &req)
        .await
        .unwrap();
    assert!(
        d.id.ends_with(&format!("{}:2", stack.family)),
        "deploy id is the new revision: {}",
        d.id
    );
    let live = p
        .wait_until_live(&svc, &d.id, Duration::from_secs(30), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(live.image.as_deref(), Some(image));
    assert_eq!(live.commit.as_deref(), Some("c0ffee1"));

    let state = p.service_state(&svc).await.unwrap();
    assert_eq!(state.revision, Some(2));
    assert_eq!(state.image.as_deref(), Some(image));
    assert_eq!((state.running, state.desired), (1, 1));
    assert_eq!(state.status, DeployStatus::Live);
    // The new revision keeps everything else of the old one.
    let vars = p.env_vars(&svc).await.unwrap();
    assert_eq!(
        vars.get("RAILS_ENV")
            .map(|v| v.expose_secret().to_owned())
            .as_deref(),
        Some("staging")
    );
}

#[tokio::test]
async fn a_commit_without_an_image_template_is_not_supported() {
    let stack = stack().await;
    let p = provider(&stack, None);
    assert!(!p.deploy_kinds("web").commit);
    let svc = p.locate("staging", "web").await.unwrap();
    let err = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit("abc"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
    assert!(
        err.to_string().contains("${commit}"),
        "the message shows how to fix it: {err}"
    );
}

#[tokio::test]
async fn a_deploy_is_not_live_while_tasks_of_the_old_revision_still_run() {
    let stack = stack().await;
    let p = provider(&stack, Some(TEMPLATE));
    let svc = p.locate("staging", "web").await.unwrap();
    let old_task = start_service_task(&stack, &stack.first_revision).await;
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit("abc1234"),
        )
        .await
        .unwrap();
    let status = p.deploy_status(&svc, &d.id).await.unwrap();
    assert_eq!(
        status.status,
        DeployStatus::InProgress,
        "{}",
        status.raw_status
    );
    assert!(
        status.raw_status.contains("older revision"),
        "{}",
        status.raw_status
    );

    stop_task(
        &stack,
        &old_task,
        "Scaling activity initiated by deployment",
    )
    .await;
    // The new task goes through PROVISIONING and PENDING before RUNNING, as on ECS.
    let new_task = start_service_task(&stack, &d.id).await;
    let live = p
        .wait_until_live(&svc, &d.id, Duration::from_secs(30), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(live.status, DeployStatus::Live, "{}", live.raw_status);
    stop_task(&stack, &new_task, "test over").await;
}

#[tokio::test]
async fn a_rolled_back_deploy_fails_with_stopped_task_reasons_and_last_log_lines() {
    let stack = stack().await;
    let p = provider(&stack, Some(TEMPLATE));
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit("bad0001"),
        )
        .await
        .unwrap();

    // What ECS does when the new tasks crash: they stop with a reason and their container's
    // last words are in CloudWatch; the circuit breaker puts the old revision back.
    let task = start_service_task(&stack, &d.id).await;
    stop_task(&stack, &task, "Essential container in task exited").await;
    let task_id = task.rsplit('/').next().unwrap();
    let logs = stack.ctx.logs().await;
    logs.create_log_group()
        .log_group_name(&stack.log_group)
        .send()
        .await
        .unwrap();
    let stream = format!("app/web/{task_id}");
    logs.create_log_stream()
        .log_group_name(&stack.log_group)
        .log_stream_name(&stream)
        .send()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let events = ["booting", "KeyError: JWT_SECRET"]
        .iter()
        .enumerate()
        .map(|(i, m)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now + i as i64)
                .message(*m)
                .build()
                .unwrap()
        })
        .collect::<Vec<_>>();
    logs.put_log_events()
        .log_group_name(&stack.log_group)
        .log_stream_name(&stream)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();
    stack
        .ctx
        .ecs()
        .await
        .update_service()
        .cluster(&stack.cluster)
        .service("web")
        .task_definition(&stack.first_revision)
        .send()
        .await
        .unwrap();

    let err = p
        .wait_until_live(&svc, &d.id, Duration::from_secs(30), &mut |_| {})
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Failed { .. }), "{text}");
    assert!(text.contains("ROLLED_BACK"), "{text}");
    assert!(
        text.contains("Essential container in task exited"),
        "the stopped task's reason is shown: {text}"
    );
    assert!(
        text.contains("KeyError: JWT_SECRET"),
        "the last log lines are shown: {text}"
    );

    // The last line, after the time CloudWatch gave it (the shape every provider shares).
    let lines = p.recent_logs(&svc, Some(&d.id), 1).await.unwrap();
    assert!(
        lines.len() == 1 && lines[0].ends_with(" KeyError: JWT_SECRET"),
        "{lines:?}"
    );

    // What `staging logs --deploy` reads: the deploy's lines, oldest first.
    let query = staging_core::LogQuery {
        deploy_id: Some(d.id.clone()),
        ..staging_core::LogQuery::last(2)
    };
    let lines = p.logs(&svc, &query).await.unwrap();
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["booting", "KeyError: JWT_SECRET"], "{lines:?}");
}

#[tokio::test]
async fn rollback_returns_to_the_revision_the_service_ran_before() {
    let stack = stack().await;
    let p = provider(&stack, Some(TEMPLATE));
    let svc = p.locate("staging", "web").await.unwrap();
    let a = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit("aaaa"),
        )
        .await
        .unwrap();
    p.wait_until_live(&svc, &a.id, Duration::from_secs(30), &mut |_| {})
        .await
        .unwrap();
    // An env change in between registers a revision that was never deployed.
    p.set_env_var(
        &staging_core::testkit::target(&svc),
        "FEATURE_X",
        &"on".to_owned().into(),
    )
    .await
    .unwrap();
    let b = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit("bbbb"),
        )
        .await
        .unwrap();
    p.wait_until_live(&svc, &b.id, Duration::from_secs(30), &mut |_| {})
        .await
        .unwrap();

    let back = p
        .rollback(&staging_core::testkit::target(&svc))
        .await
        .unwrap();
    assert_eq!(
        back.id, a.id,
        "rollback goes to the revision deployed before, not the env-only one"
    );
    let live = p
        .wait_until_live(&svc, &back.id, Duration::from_secs(30), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(live.commit.as_deref(), Some("aaaa"));
    // The deploy that was rolled back is reported as such.
    let old = p.deploy_status(&svc, &b.id).await.unwrap();
    assert_eq!(old.status, DeployStatus::Failed, "{}", old.raw_status);
    assert!(
        old.raw_status.starts_with("ROLLED_BACK"),
        "{}",
        old.raw_status
    );
}

#[tokio::test]
async fn a_service_that_does_not_exist_is_not_found() {
    let stack = stack().await;
    let p = EcsProvider::new(
        stack.ctx.clone(),
        BTreeMap::from([(
            "web".to_owned(),
            EcsServiceSettings::new(&stack.cluster, "nope"),
        )]),
    );
    let err = p.locate("staging", "web").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = p.locate("staging", "worker").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn missing_credentials_are_reported_as_unauthenticated() {
    let config = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let p = EcsProvider::new(
        AwsContext::from_sdk_config(config),
        BTreeMap::from([("web".to_owned(), EcsServiceSettings::new("c", "web"))]),
    );
    let err = p.locate("staging", "web").await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
}

#[tokio::test]
async fn env_var_values_never_show_in_debug_output() {
    let stack = stack().await;
    let p = provider(&stack, Some(TEMPLATE));
    let svc = p.locate("staging", "web").await.unwrap();
    let canary = "canary-7c1e-ecs-env-value";
    p.set_env_var(
        &staging_core::testkit::target(&svc),
        "API_TOKEN",
        &canary.to_owned().into(),
    )
    .await
    .unwrap();
    let vars = p.env_vars(&svc).await.unwrap();
    assert_eq!(vars["API_TOKEN"].expose_secret(), canary);
    let shown = format!("{p:?} {vars:?} {:?}", p.service_state(&svc).await.unwrap());
    assert!(!shown.contains(canary), "{shown}");
}

/// Against a real ECS service, only when asked: `STAGING_TEST_AWS=1` plus
/// `STAGING_TEST_AWS_CLUSTER`, `STAGING_TEST_AWS_SERVICE` and `STAGING_TEST_AWS_IMAGE` (a
/// template with `${commit}`; images tagged with the suite's two commits must exist), with
/// credentials and region from the standard chain. Never runs by default.
#[tokio::test]
async fn ecs_provider_passes_the_conformance_suite_on_real_aws_when_asked() {
    if std::env::var("STAGING_TEST_AWS").as_deref() != Ok("1") {
        return;
    }
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("STAGING_TEST_AWS=1 needs {name}"))
    };
    let settings = EcsServiceSettings::new(
        var("STAGING_TEST_AWS_CLUSTER"),
        var("STAGING_TEST_AWS_SERVICE"),
    )
    .with_image_template(var("STAGING_TEST_AWS_IMAGE"));
    let p: DynProvider = Arc::new(EcsProvider::new(
        AwsContext::from_env(None, None),
        BTreeMap::from([("web".to_owned(), settings)]),
    ));
    staging_core::testkit::run_all(&p, "staging", "web").await;
}

#[tokio::test]
async fn a_status_read_answered_throttled_or_503_never_sends_a_second_update() {
    let stack = stack().await;
    // The provider talks to moto through a proxy that answers chosen reads with a fault.
    let faults = staging_test_support::FaultProxy::start(&common::moto().url);
    let through = AwsContext::from_sdk_config(common::sdk_config_for(&faults.url()).await);
    let mut settings = EcsServiceSettings::new(&stack.cluster, "web");
    settings.image_template = None;
    let raw = EcsProvider::new(through, BTreeMap::from([("web".to_owned(), settings)]))
        .with_poll_interval(Duration::from_millis(20))
        .with_read_budget(staging_core::ReadBudget::unlimited("moto"));
    let p: DynProvider = Arc::new(staging_core::RetryProvider::new(
        raw,
        staging_core::RetryPolicy {
            initial: Duration::from_millis(10),
            ..staging_core::RetryPolicy::default()
        },
    ));
    let svc = p.locate("staging", "web").await.unwrap();
    for (label, status, body) in [
        (
            "throttled",
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
        ),
        (
            "503",
            503,
            r#"{"__type":"ServiceUnavailableException","message":"try again"}"#,
        ),
    ] {
        let updates = faults.forwarded("UpdateService");
        let revisions = faults.forwarded("RegisterTaskDefinition");
        let image = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:{label}");
        let d = p
            .deploy(
                &staging_core::testkit::target(&svc),
                &DeployRequest {
                    target: DeployTarget::Image(image),
                    commit: Some("c0ffee1".into()),
                    clear_cache: false,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let faulted = faults.faulted("DescribeServices");
        faults.fail_next("DescribeServices", 2, status, body);
        p.wait_until_live(&svc, &d.id, Duration::from_secs(60), &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            faults.faulted("DescribeServices") - faulted,
            2,
            "{label}: the faults were not reached"
        );
        assert_eq!(faults.forwarded("UpdateService") - updates, 1, "{label}");
        assert_eq!(
            faults.forwarded("RegisterTaskDefinition") - revisions,
            1,
            "{label}"
        );
    }
}
