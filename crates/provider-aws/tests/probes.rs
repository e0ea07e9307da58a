//! The readiness probes against moto: ALB target health, SES (moto plus a double for
//! `GetAccount`), ACM and Route53.

mod common;
#[path = "common/ses_double.rs"]
mod ses_double;

use std::time::{SystemTime, UNIX_EPOCH};

use staging_core::Probe;
use staging_provider_aws::AwsContext;
use staging_provider_aws::probes::{
    CertificateProbe, RecordExpectation, RecordProbe, SesAccountProbe, SesIdentityProbe,
    SesTestSendProbe, TargetHealthProbe,
};

/// A VPC with two subnets, an ALB with a listener forwarding to a fresh target group.
async fn alb() -> (AwsContext, String, String) {
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
    let elb = ctx.elb().await;
    let lb = elb
        .create_load_balancer()
        .name(common::unique("alb"))
        .set_subnets(Some(subnets.clone()))
        .send()
        .await
        .unwrap();
    let lb = &lb.load_balancers()[0];
    let tg = elb
        .create_target_group()
        .name(common::unique("tg"))
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let tg_arn = tg.target_groups()[0].target_group_arn().unwrap().to_owned();
    elb.create_listener()
        .load_balancer_arn(lb.load_balancer_arn().unwrap())
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&tg_arn)
                .build(),
        )
        .send()
        .await
        .unwrap();
    (ctx, tg_arn, subnets[0].clone())
}

async fn register_instance(ctx: &AwsContext, tg_arn: &str, subnet: &str) -> String {
    let body = common::ec2(&[
        ("Action", "RunInstances"),
        ("ImageId", "ami-12c6146b"),
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("SubnetId", subnet),
    ])
    .await;
    let instance = common::xml_text(&body, "instanceId");
    ctx.elb()
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

#[tokio::test]
async fn target_health_passes_when_every_target_is_healthy_and_names_the_ones_that_are_not() {
    let (ctx, tg, subnet) = alb().await;
    let probe = TargetHealthProbe::new("alb targets of web", ctx.clone(), &tg);
    let empty = probe.run().await.unwrap();
    assert!(!empty.ok, "no targets is not healthy: {empty:?}");
    assert!(
        empty.observed.contains("no registered targets"),
        "{}",
        empty.observed
    );

    let healthy = register_instance(&ctx, &tg, &subnet).await;
    let sick = register_instance(&ctx, &tg, &subnet).await;
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
