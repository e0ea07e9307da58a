//! Isolation level 2 on moto: staging names the ECS cluster by ARN, production by name.
//! Offline the two settings differ; located with the same credentials, both resolve to one
//! identity (cluster ARN, service name), and the run's write boundary refuses the write.

mod common;

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, LaunchType, NetworkMode};
use staging_core::Provider;
use staging_provider_aws::{EcsProvider, EcsServiceSettings};

#[tokio::test]
async fn two_names_for_one_ecs_service_are_refused_with_shared_credentials() {
    let ctx = common::ctx().await;
    let ecs = ctx.ecs().await;
    let cluster = common::unique("iso-cluster");
    let cluster_arn = ecs
        .create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap()
        .cluster()
        .unwrap()
        .cluster_arn()
        .unwrap()
        .to_owned();
    let td = ecs
        .register_task_definition()
        .family(common::unique("iso-web"))
        .network_mode(NetworkMode::Bridge)
        .requires_compatibilities(Compatibility::Ec2)
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image("app:1")
                .memory(256)
                .essential(true)
                .build(),
        )
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
        .task_definition(&td)
        .desired_count(1)
        .launch_type(LaunchType::Ec2)
        .send()
        .await
        .unwrap();

    let provider = |cluster: &str| {
        EcsProvider::new(
            ctx.clone(),
            BTreeMap::from([("web".to_owned(), EcsServiceSettings::new(cluster, "web"))]),
        )
    };
    // Staging's settings name the cluster by ARN (a copy-paste from the console), production's
    // by name: different text, one service.
    let staging = provider(&cluster_arn)
        .locate("staging", "web")
        .await
        .unwrap();
    let production = provider(&cluster)
        .locate("production", "web")
        .await
        .unwrap();
    assert_eq!(staging.id, production.id);

    // One ECS service, so one identity: the run's boundary refuses the write.
    assert_eq!(staging.identity, production.identity);
    let boundary =
        staging_core::boundary::boundary_against_for_tests("staging", &[production], true);
    let err = boundary.target(staging.clone()).unwrap_err().to_string();
    assert!(
        err.contains(&format!("cluster={cluster_arn} service=web"))
            && err.contains("environment `staging`")
            && err.contains("environment `production`"),
        "{err}"
    );
}
