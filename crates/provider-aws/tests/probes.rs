//! The readiness probes against moto: ALB target health, SES (moto plus a double for
//! `GetAccount`), ACM and Route53.

mod common;
#[path = "common/ses_double.rs"]
mod ses_double;

use std::time::{SystemTime, UNIX_EPOCH};

use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{DynProbe, Probe, ProbeOutcome};
use staging_provider_aws::probes::{
    CertificateProbe, RecordExpectation, RecordProbe, SesAccountProbe, SesIdentityProbe,
    SesTestSendProbe, TargetHealthProbe,
};
use staging_provider_aws::{AwsContext, probes_from_settings, settings_from_spec};

/// A VPC with two subnets and an ALB with a listener forwarding to a fresh target group.
struct Alb {
    ctx: AwsContext,
    vpc: String,
    lb_arn: String,
    /// The listener's target group.
    tg: String,
    subnet: String,
}

async fn alb() -> Alb {
    let ctx = common::ctx().await;
    let vpc = common::xml_text(
        &common::ec2(&[("Action", "CreateVpc"), ("CidrBlock", "10.7.0.0/16")]).await,
        "vpcId",
    );
    let mut subnets = vec![];
    for (i, az) in ["us-east-1a", "us-east-1b"].iter().enumerate() {
        let cidr = format!("10.7.{i}.0/24");
        let body = common::ec2(&[
            ("Action", "CreateSubnet"),
            ("VpcId", &vpc),
            ("CidrBlock", &cidr),
            ("AvailabilityZone", az),
        ])
        .await;
        subnets.push(common::xml_text(&body, "subnetId"));
    }
    let lb = ctx
        .elb()
        .await
        .create_load_balancer()
        .name(common::unique("alb"))
        .set_subnets(Some(subnets.clone()))
        .send()
        .await
        .unwrap();
    let lb_arn = lb.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_owned();
    let mut alb = Alb {
        ctx,
        vpc,
        lb_arn,
        tg: String::new(),
        subnet: subnets[0].clone(),
    };
    alb.tg = alb.target_group(80).await;
    alb
}

impl Alb {
    /// A fresh target group, forwarded to by a listener of the ALB on `port`.
    async fn target_group(&self, port: i32) -> String {
        use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, ProtocolEnum};
        let elb = self.ctx.elb().await;
        let tg = elb
            .create_target_group()
            .name(common::unique("tg"))
            .protocol(ProtocolEnum::Http)
            .port(80)
            .vpc_id(&self.vpc)
            .send()
            .await
            .unwrap();
        let tg_arn = tg.target_groups()[0].target_group_arn().unwrap().to_owned();
        elb.create_listener()
            .load_balancer_arn(&self.lb_arn)
            .protocol(ProtocolEnum::Http)
            .port(port)
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .target_group_arn(&tg_arn)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        tg_arn
    }

    /// An EC2 instance registered in `tg_arn` (moto reports a running one healthy).
    async fn register_instance(&self, tg_arn: &str) -> String {
        let body = common::ec2(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-12c6146b"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("SubnetId", &self.subnet),
        ])
        .await;
        let instance = common::xml_text(&body, "instanceId");
        self.ctx
            .elb()
            .await
            .register_targets()
            .target_group_arn(tg_arn)
            .targets(
                aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                    .id(&instance)
                    .port(80)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        instance
    }

    /// A fresh cluster with the ECS service `shop-web` (EC2 launch type, bridge networking)
    /// attached to `target_groups` as ECS records it: `loadBalancers[].targetGroupArn`.
    async fn ecs_service(&self, target_groups: &[&str]) -> String {
        let lbs = target_groups
            .iter()
            .map(|tg| {
                aws_sdk_ecs::types::LoadBalancer::builder()
                    .target_group_arn(*tg)
                    .container_name("web")
                    .container_port(80)
                    .build()
            })
            .collect();
        self.ecs_service_behind(lbs).await
    }

    /// A fresh cluster with the ECS service `shop-web` behind these load balancers.
    async fn ecs_service_behind(&self, lbs: Vec<aws_sdk_ecs::types::LoadBalancer>) -> String {
        use aws_sdk_ecs::types::{
            Compatibility, ContainerDefinition, LaunchType, NetworkMode, PortMapping,
        };
        let ecs = self.ctx.ecs().await;
        let cluster = common::unique("alb-cluster");
        ecs.create_cluster()
            .cluster_name(&cluster)
            .send()
            .await
            .unwrap();
        let td = ecs
            .register_task_definition()
            .family(common::unique("shop-web"))
            .network_mode(NetworkMode::Bridge)
            .requires_compatibilities(Compatibility::Ec2)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("web")
                    .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1")
                    .memory(256)
                    .essential(true)
                    .port_mappings(PortMapping::builder().container_port(80).build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        ecs.create_service()
            .cluster(&cluster)
            .service_name("shop-web")
            .task_definition(td.task_definition().unwrap().task_definition_arn().unwrap())
            .desired_count(1)
            .launch_type(LaunchType::Ec2)
            .set_load_balancers(Some(lbs))
            .send()
            .await
            .unwrap();
        cluster
    }
}

/// The ALB target-health probe the spec yields for service `web` (ECS service `shop-web`
/// in `cluster`) with these extra settings, as the smoke step gets it from the factory.
fn target_health_probe_from_spec(ctx: &AwsContext, cluster: &str, web: &str) -> DynProbe {
    let source = format!(
        "[project]\nname = \"p\"\n\n[environments.staging]\nprovider = \"aws\"\nsettings = {{ cluster = \"{cluster}\" }}\n\n[services.web.settings]\nservice = \"shop-web\"\n{web}\n"
    );
    let spec = LoadedSpec::parse("staging.toml", source, LoadOptions::new(&["aws"])).unwrap();
    let (env, services) = settings_from_spec(&spec, "staging").unwrap();
    let mut probes = probes_from_settings(ctx, &env, &services);
    assert_eq!(probes.len(), 1, "{probes:?}");
    let probe = probes.remove(0);
    assert_eq!(probe.name(), "alb targets of web");
    assert_eq!(probe.kind(), "aws.alb_target_health");
    probe
}

fn evidence<'a>(outcome: &'a ProbeOutcome, key: &str) -> Option<&'a str> {
    outcome
        .evidence
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn target_health_passes_when_every_target_is_healthy_and_names_the_ones_that_are_not() {
    let alb = alb().await;
    let tg = &alb.tg;
    let probe = TargetHealthProbe::new("alb targets of web", alb.ctx.clone(), tg);
    let empty = probe.run().await.unwrap();
    assert!(!empty.ok, "no targets is not healthy: {empty:?}");
    assert!(
        empty.observed.contains("no registered targets"),
        "{}",
        empty.observed
    );

    let healthy = alb.register_instance(tg).await;
    let sick = alb.register_instance(tg).await;
    let outcome = probe.run().await.unwrap();
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.observed, "2/2 targets healthy");

    common::ec2(&[("Action", "StopInstances"), ("InstanceId.1", &sick)]).await;
    let outcome = probe.run().await.unwrap();
    assert!(!outcome.ok, "{outcome:?}");
    assert!(
        outcome.observed.starts_with("1/2 targets healthy"),
        "{}",
        outcome.observed
    );
    assert!(
        outcome.observed.contains(&sick),
        "the unhealthy target is named: {}",
        outcome.observed
    );
    assert!(
        outcome.observed.contains("Target.InvalidState"),
        "and why: {}",
        outcome.observed
    );
    assert!(!outcome.observed.contains(&healthy), "{}", outcome.observed);
}

#[tokio::test]
async fn target_health_of_a_missing_target_group_fails() {
    let ctx = common::ctx().await;
    let arn =
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/0123456789abcdef";
    let outcome = TargetHealthProbe::new("alb", ctx, arn).run().await.unwrap();
    assert!(!outcome.ok);
    assert!(
        outcome.observed.contains("not found"),
        "{}",
        outcome.observed
    );
}

#[tokio::test]
async fn without_an_arn_target_health_reads_the_target_group_from_the_ecs_service_and_checks_it() {
    let alb = alb().await;
    let cluster = alb.ecs_service(&[&alb.tg]).await;
    let probe = target_health_probe_from_spec(&alb.ctx, &cluster, "target_health = true");

    let empty = probe.run().await.unwrap();
    assert!(
        !empty.ok,
        "the service's target group has no target yet: {empty:?}"
    );
    assert!(
        empty.observed.contains("no registered targets"),
        "{}",
        empty.observed
    );
    assert_eq!(evidence(&empty, "target_group"), Some(alb.tg.as_str()));
    assert_eq!(
        evidence(&empty, "ecs_service"),
        Some(format!("{cluster}/shop-web").as_str())
    );

    let healthy = alb.register_instance(&alb.tg).await;
    let sick = alb.register_instance(&alb.tg).await;
    let outcome = probe.run().await.unwrap();
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.observed, "2/2 targets healthy");
    assert!(
        outcome.expected.contains("`shop-web`"),
        "{}",
        outcome.expected
    );

    common::ec2(&[("Action", "StopInstances"), ("InstanceId.1", &sick)]).await;
    let outcome = probe.run().await.unwrap();
    assert!(!outcome.ok, "{outcome:?}");
    assert!(
        outcome.observed.starts_with("1/2 targets healthy")
            && outcome.observed.contains(&sick)
            && !outcome.observed.contains(&healthy),
        "{}",
        outcome.observed
    );
}

#[tokio::test]
async fn target_health_checks_every_target_group_of_the_ecs_service_and_names_the_unhealthy_one() {
    let alb = alb().await;
    let second = alb.target_group(8080).await;
    let cluster = alb.ecs_service(&[&alb.tg, &second]).await;
    let probe = target_health_probe_from_spec(&alb.ctx, &cluster, "target_health = true");
    alb.register_instance(&alb.tg).await;

    let outcome = probe.run().await.unwrap();
    assert!(!outcome.ok, "the second group has no target: {outcome:?}");
    let second_name = second.split('/').nth(1).unwrap();
    let first_name = alb.tg.split('/').nth(1).unwrap();
    assert!(
        outcome
            .observed
            .contains(&format!("target group {first_name}: 1/1 targets healthy"))
            && outcome.observed.contains(&format!(
                "target group {second_name}: no registered targets"
            )),
        "{}",
        outcome.observed
    );
    assert_eq!(
        evidence(&outcome, "target_group"),
        Some(format!("{}, {second}", alb.tg).as_str())
    );

    alb.register_instance(&second).await;
    let outcome = probe.run().await.unwrap();
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(
        outcome.observed,
        format!(
            "target group {first_name}: 1/1 targets healthy | target group {second_name}: 1/1 targets healthy"
        )
    );
}

#[tokio::test]
async fn target_health_of_an_ecs_service_without_a_load_balancer_fails_and_says_how_to_set_the_arn()
{
    let alb = alb().await;
    let cluster = alb.ecs_service(&[]).await;
    let probe = target_health_probe_from_spec(&alb.ctx, &cluster, "target_health = true");
    let outcome = probe.run().await.unwrap();
    assert!(!outcome.ok, "{outcome:?}");
    assert!(
        outcome.observed.contains(&format!(
            "ECS service `shop-web` in cluster `{cluster}` has no load balancer"
        )),
        "{}",
        outcome.observed
    );
    assert!(
        outcome
            .observed
            .contains("set `target_group_arn = \"arn:aws:elasticloadbalancing:")
            && outcome.observed.contains("[services.web.settings]")
            && outcome.observed.contains("`target_health = false`"),
        "it says how to set the ARN, or turn the check off: {}",
        outcome.observed
    );
}

#[tokio::test]
async fn target_health_of_an_ecs_service_behind_a_classic_load_balancer_fails_and_names_it() {
    let alb = alb().await;
    let cluster = alb
        .ecs_service_behind(vec![
            aws_sdk_ecs::types::LoadBalancer::builder()
                .load_balancer_name("shop-classic")
                .container_name("web")
                .container_port(80)
                .build(),
        ])
        .await;
    let probe = target_health_probe_from_spec(&alb.ctx, &cluster, "target_health = true");
    let outcome = probe.run().await.unwrap();
    assert!(!outcome.ok, "{outcome:?}");
    assert!(
        outcome.observed.contains(
            "is behind the classic load balancer shop-classic, which has no target group"
        ) && outcome.observed.contains("set `target_group_arn"),
        "{}",
        outcome.observed
    );
}

#[tokio::test]
async fn target_health_of_a_missing_ecs_service_or_cluster_fails_and_names_it() {
    let ctx = common::ctx().await;
    let cluster = common::unique("empty-cluster");
    ctx.ecs()
        .await
        .create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let probe = target_health_probe_from_spec(&ctx, &cluster, "target_health = true");
    let outcome = probe.run().await.unwrap();
    assert!(!outcome.ok, "{outcome:?}");
    assert!(
        outcome.observed.contains(&format!(
            "ECS service `shop-web` in cluster `{cluster}` not found"
        )),
        "{}",
        outcome.observed
    );

    let missing = common::unique("no-such-cluster");
    let probe = target_health_probe_from_spec(&ctx, &missing, "target_health = true");
    let outcome = probe.run().await.unwrap();
    assert!(!outcome.ok, "{outcome:?}");
    assert!(
        outcome.observed.contains(&format!(
            "ECS service `shop-web` in cluster `{missing}` not found"
        )) && outcome.observed.contains("ClusterNotFoundException"),
        "{}",
        outcome.observed
    );
}

#[tokio::test]
async fn an_explicit_target_group_arn_wins_over_the_ecs_services_load_balancer() {
    let alb = alb().await;
    let other = alb.target_group(8080).await;
    // The service's own target group is healthy; the spec names another, empty one.
    let cluster = alb.ecs_service(&[&alb.tg]).await;
    alb.register_instance(&alb.tg).await;
    for web in [
        format!("target_group_arn = \"{other}\""),
        format!("target_group_arn = \"{other}\"\ntarget_health = true"),
    ] {
        let probe = target_health_probe_from_spec(&alb.ctx, &cluster, &web);
        let outcome = probe.run().await.unwrap();
        assert!(
            !outcome.ok,
            "{web}: the named group is checked: {outcome:?}"
        );
        assert!(
            outcome.observed.contains("no registered targets"),
            "{}",
            outcome.observed
        );
        assert_eq!(evidence(&outcome, "target_group"), Some(other.as_str()));
        assert_eq!(evidence(&outcome, "ecs_service"), None, "{outcome:?}");
    }
}

/// A context whose SES calls go through the double (GetAccount) to moto (the rest).
async fn ses_ctx(production_access: bool, sending_enabled: bool) -> AwsContext {
    let url = ses_double::start(
        &common::moto().url,
        ses_double::account_json(production_access, sending_enabled),
    )
    .await;
    AwsContext::from_sdk_config(common::sdk_config_for(&url).await)
}

#[tokio::test]
async fn ses_account_in_the_sandbox_fails_and_says_recipients_must_be_verified() {
    let ctx = ses_ctx(false, true).await;
    let outcome = SesAccountProbe::new("ses account", ctx.clone(), true)
        .run()
        .await
        .unwrap();
    assert!(!outcome.ok, "{outcome:?}");
    assert!(outcome.observed.contains("sandbox"), "{}", outcome.observed);
    assert!(
        outcome
            .observed
            .contains("every recipient must be verified"),
        "{}",
        outcome.observed
    );
    assert!(
        outcome.observed.contains("200/24h"),
        "the quota is shown: {}",
        outcome.observed
    );
    // When the sandbox is acceptable, it passes and still says so.
    let relaxed = SesAccountProbe::new("ses account", ctx, false)
        .run()
        .await
        .unwrap();
    assert!(relaxed.ok, "{relaxed:?}");
}

#[tokio::test]
async fn ses_account_with_production_access_passes_and_disabled_sending_fails() {
    let outcome = SesAccountProbe::new("ses", ses_ctx(true, true).await, true)
        .run()
        .await
        .unwrap();
    assert!(outcome.ok, "{outcome:?}");
    assert!(
        outcome.observed.contains("production access"),
        "{}",
        outcome.observed
    );
    let paused = SesAccountProbe::new("ses", ses_ctx(true, false).await, true)
        .run()
        .await
        .unwrap();
    assert!(!paused.ok, "{paused:?}");
    assert!(paused.observed.contains("DISABLED"), "{}", paused.observed);
}

#[tokio::test]
async fn ses_identities_must_be_verified_and_domains_need_dkim() {
    let ctx = common::ctx().await;
    let ses = ctx.ses().await;
    let domain = format!("{}.example.com", common::unique("mail"));
    let address = format!("noreply@{}.example.org", common::unique("addr"));
    ses.create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .unwrap();
    ses.create_email_identity()
        .email_identity(&address)
        .send()
        .await
        .unwrap();

    let outcome = SesIdentityProbe::new("addr", ctx.clone(), &address, true)
        .run()
        .await
        .unwrap();
    assert!(outcome.ok, "an address needs no DKIM: {outcome:?}");
    // moto verifies identities at once but never starts DKIM signing.
    let outcome = SesIdentityProbe::new("domain", ctx.clone(), &domain, true)
        .run()
        .await
        .unwrap();
    assert!(!outcome.ok, "{outcome:?}");
    assert!(
        outcome.observed.contains("DKIM NOT_STARTED"),
        "{}",
        outcome.observed
    );
    let outcome = SesIdentityProbe::new("domain", ctx.clone(), &domain, false)
        .run()
        .await
        .unwrap();
    assert!(outcome.ok, "{outcome:?}");
    let outcome = SesIdentityProbe::new("none", ctx, "unknown.example.net", true)
        .run()
        .await
        .unwrap();
    assert!(!outcome.ok);
    assert!(
        outcome.observed.contains("not an SES identity"),
        "{}",
        outcome.observed
    );
}

#[tokio::test]
async fn ses_test_send_in_the_sandbox_refuses_an_unverified_recipient_and_sends_to_a_verified_one()
{
    let ctx = ses_ctx(false, true).await;
    let ses = ctx.ses().await;
    let from = format!("noreply@{}.example.com", common::unique("from"));
    let verified_to = format!("ops@{}.example.com", common::unique("to"));
    ses.create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .unwrap();
    ses.create_email_identity()
        .email_identity(&verified_to)
        .send()
        .await
        .unwrap();

    let outcome =
        SesTestSendProbe::new("send", ctx.clone(), &from, "someone@unverified.example.net")
            .run()
            .await
            .unwrap();
    assert!(!outcome.ok, "{outcome:?}");
    assert!(
        outcome
            .observed
            .contains("every recipient must be verified"),
        "{}",
        outcome.observed
    );

    let outcome = SesTestSendProbe::new("send", ctx.clone(), &from, &verified_to)
        .run()
        .await
        .unwrap();
    assert!(outcome.ok, "{outcome:?}");
    assert!(
        outcome.evidence.iter().any(|(k, _)| k == "message_id"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn ses_test_send_from_an_unverified_sender_is_rejected() {
    let ctx = ses_ctx(true, true).await;
    let outcome =
        SesTestSendProbe::new("send", ctx, "x@not-verified.example.net", "ops@example.com")
            .run()
            .await
            .unwrap();
    assert!(!outcome.ok, "{outcome:?}");
    assert!(
        outcome.observed.contains("MessageRejected"),
        "{}",
        outcome.observed
    );
}

#[tokio::test]
async fn acm_certificate_issued_and_far_from_expiry_passes() {
    let ctx = common::ctx().await;
    let domain = format!("{}.example.com", common::unique("cert"));
    ctx.acm()
        .await
        .request_certificate()
        .domain_name(&domain)
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .unwrap();
    let outcome = CertificateProbe::new("acm", ctx.clone(), &domain, None, 21)
        .run()
        .await
        .unwrap();
    assert!(outcome.ok, "{outcome:?}");
    assert!(
        outcome.observed.starts_with("ISSUED"),
        "{}",
        outcome.observed
    );

    let missing = CertificateProbe::new("acm", ctx, "nothing.example.invalid", None, 21)
        .run()
        .await
        .unwrap();
    assert!(!missing.ok);
    assert!(
        missing.observed.contains("no ACM certificate"),
        "{}",
        missing.observed
    );
}

/// (year, month, day) of a UNIX day number (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

#[tokio::test]
async fn acm_certificate_close_to_expiry_fails() {
    let ctx = common::ctx().await;
    let domain = format!("{}.example.com", common::unique("expiring"));
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 86_400;
    let mut params = rcgen::CertificateParams::new(vec![domain.clone()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, domain.clone());
    let (y, m, d) = civil(today - 30);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil(today + 6);
    params.not_after = rcgen::date_time_ymd(y, m, d);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let arn = ctx
        .acm()
        .await
        .import_certificate()
        .certificate(aws_sdk_acm::primitives::Blob::new(cert.pem()))
        .private_key(aws_sdk_acm::primitives::Blob::new(key.serialize_pem()))
        .send()
        .await
        .unwrap()
        .certificate_arn()
        .unwrap()
        .to_owned();
    let outcome = CertificateProbe::new("acm", ctx.clone(), &domain, None, 21)
        .run()
        .await
        .unwrap();
    assert!(!outcome.ok, "{outcome:?}");
    assert!(
        outcome.observed.contains("days left"),
        "{}",
        outcome.observed
    );
    assert!(
        outcome
            .evidence
            .iter()
            .any(|(k, v)| k == "certificate_arn" && v == &arn),
        "{outcome:?}"
    );
    let relaxed = CertificateProbe::new("acm", ctx, &domain, Some(arn), 3)
        .run()
        .await
        .unwrap();
    assert!(relaxed.ok, "{relaxed:?}");
}

#[tokio::test]
async fn route53_record_must_point_where_the_spec_says() {
    let ctx = common::ctx().await;
    let r53 = ctx.route53().await;
    let zone = format!("{}.example.com", common::unique("zone"));
    let created = r53
        .create_hosted_zone()
        .name(&zone)
        .caller_reference(common::unique("ref"))
        .send()
        .await
        .unwrap();
    let zone_id = created.hosted_zone().unwrap().id().to_owned();
    let record = format!("staging.{zone}");
    let alb = "my-alb-1234.us-east-1.elb.amazonaws.com";
    use aws_sdk_route53::types::{
        AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
    };
    let alias = ResourceRecordSet::builder()
        .name(&record)
        .r#type(RrType::A)
        .alias_target(
            AliasTarget::builder()
                .hosted_zone_id("Z35SXDOTRQ7X7K")
                .dns_name(alb)
                .evaluate_target_health(false)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let txt = ResourceRecordSet::builder()
        .name(format!("_check.{zone}"))
        .r#type(RrType::Txt)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value("\"v=1\"").build().unwrap())
        .build()
        .unwrap();
    let changes = [alias, txt].into_iter().map(|r| {
        Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(r)
            .build()
            .unwrap()
    });
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(
            ChangeBatch::builder()
                .set_changes(Some(changes.collect()))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let ok = RecordProbe::new(
        "dns",
        ctx.clone(),
        &zone,
        &record,
        "A",
        RecordExpectation::Alias(format!("dualstack.{alb}.")),
    )
    .run()
    .await
    .unwrap();
    assert!(ok.ok, "{ok:?}");
    let wrong = RecordProbe::new(
        "dns",
        ctx.clone(),
        &zone,
        &record,
        "A",
        RecordExpectation::Alias("other-alb.elb.amazonaws.com".into()),
    )
    .run()
    .await
    .unwrap();
    assert!(!wrong.ok);
    assert!(
        wrong.observed.contains(alb),
        "what it points at is shown: {}",
        wrong.observed
    );
    let by_id = RecordProbe::new(
        "dns",
        ctx.clone(),
        zone_id.clone(),
        format!("_check.{zone}"),
        "TXT",
        RecordExpectation::Values(vec!["\"v=1\"".into()]),
    )
    .run()
    .await
    .unwrap();
    assert!(by_id.ok, "{by_id:?}");
    let missing = RecordProbe::new(
        "dns",
        ctx.clone(),
        &zone,
        format!("www.{zone}"),
        "A",
        RecordExpectation::Values(vec!["1.2.3.4".into()]),
    )
    .run()
    .await
    .unwrap();
    assert!(!missing.ok);
    assert!(
        missing.observed.contains("no A record"),
        "{}",
        missing.observed
    );
    let no_zone = RecordProbe::new(
        "dns",
        ctx,
        "nozone.example.invalid",
        "a.nozone.example.invalid",
        "A",
        RecordExpectation::Values(vec![]),
    )
    .run()
    .await
    .unwrap();
    assert!(!no_zone.ok);
}
