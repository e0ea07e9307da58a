//! The runner and the reports: JSON shape, JUnit parsed back, the human table, redaction of
//! a canary secret everywhere, fail-fast, the concurrency bound, and the pipeline step.

mod common;

use common::*;
use quick_junit::{NonSuccessKind, TestCaseStatus};
use staging_core::pipeline::{Step, StepStatus};
use staging_smoke::{RunnerOptions, SmokeStep, render_human, render_json, render_junit};

const CANARY: &str = "canary-9d2f7b-s3cr3t";
const QUOTED_CANARY: &str = "canary\"with\\escapes-77";

const MIXED: &str = r#"
[vars.CANARY]
secret = true
[vars.QUOTED]
secret = true

[[probes]]
name = "health"
http = { url = "${BASE}/up", expect = { json = { "$.status" = "ok" } } }

[[probes]]
name = "leaky-url"
http = { url = "${BASE}/status/500?key=${vars.CANARY}" }

[[probes]]
name = "leaky-output"
command = { run = ["printf", "token=%s quoted=%s", "${vars.CANARY}", "${vars.QUOTED}"], stdout_regex = "^status=ok" }

[[probes]]
name = "production-only"
environments = ["production"]
tcp = { address = "127.0.0.1:1" }
"#;

async fn mixed_report() -> (
    staging_smoke::SmokeReport,
    staging_core::pipeline::RunContext,
    tempfile::TempDir,
) {
    let server = http_server().await;
    let (mut ctx, dir) = context(MIXED, &[("BASE", server.url())]);
    ctx.set_var("CANARY", secret(CANARY), true);
    ctx.set_var("QUOTED", secret(QUOTED_CANARY), true);
    let report = smoke(&ctx).await;
    (report, ctx, dir)
}

#[tokio::test]
async fn json_report_has_ok_summary_and_one_entry_per_probe() {
    let (report, ctx, _dir) = mixed_report().await;
    let doc: serde_json::Value =
        serde_json::from_str(&render_json(&report, &ctx.redactor)).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(
        doc["summary"],
        serde_json::json!({"passed": 1, "failed": 2, "skipped": 1})
    );
    let probes = doc["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 4);
    for p in probes {
        assert!(
            p["name"].is_string() && p["ok"].is_boolean() && p["duration_ms"].is_u64(),
            "{p}"
        );
    }
    let health = &probes[0];
    assert_eq!(health["name"], "health");
    assert_eq!(health["ok"], true);
    assert!(
        health.get("expected").is_none() && health.get("observed").is_none(),
        "{health}"
    );
    let failed = &probes[1];
    assert_eq!(failed["ok"], false);
    assert_eq!(failed["expected"], "status 2xx");
    assert_eq!(failed["observed"], "status 500");
    let skipped = &probes[3];
    assert_eq!(skipped["status"], "skipped");
    assert_eq!(skipped["reason"], "only runs in production");
    // The report round-trips through its own type.
    let back: staging_smoke::SmokeReport = serde_json::from_value(doc).unwrap();
    assert_eq!(back.summary, report.summary);
}

#[tokio::test]
async fn junit_report_parses_back_with_failures_and_skips() {
    let (report, ctx, _dir) = mixed_report().await;
    let xml = render_junit(&report, &ctx.redactor).unwrap();
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.test_suites.len(), 1);
    let suite = &parsed.test_suites[0];
    assert_eq!(suite.name.as_str(), "smoke (staging)");
    assert_eq!(suite.test_cases.len(), 4);
    assert_eq!(suite.failures, 2);
    assert_eq!(suite.skipped, 1);
    let case = |n: &str| {
        suite
            .test_cases
            .iter()
            .find(|c| c.name.as_str() == format!("smoke: {n}"))
            .unwrap()
    };
    assert!(matches!(
        case("health").status,
        TestCaseStatus::Success { .. }
    ));
    assert_eq!(
        case("health").classname.as_ref().map(|c| c.as_str()),
        Some("staging.staging.smoke"),
        "named as `up`'s JUnit names it"
    );
    match &case("leaky-url").status {
        TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Failure,
            message,
            ..
        } => {
            assert_eq!(
                message.as_ref().unwrap().as_str(),
                "expected status 2xx; observed status 500"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        case("production-only").status,
        TestCaseStatus::Skipped { .. }
    ));
}

#[tokio::test]
async fn human_report_lists_every_probe_and_explains_failures() {
    let (report, ctx, _dir) = mixed_report().await;
    let text = render_human(&report, &ctx.redactor, false);
    assert!(!text.contains('\x1b'), "no colour when not asked");
    for line in [
        "PASS   health",
        "FAIL   leaky-url",
        "SKIP   production-only",
    ] {
        assert!(text.contains(line), "{line:?} missing in\n{text}");
    }
    assert!(
        text.contains("    expected: status 2xx\n    observed: status 500\n"),
        "{text}"
    );
    assert!(
        text.contains("smoke FAILED: 1 passed, 2 failed, 1 skipped"),
        "{text}"
    );
    assert!(render_human(&report, &ctx.redactor, true).contains("\x1b[31;1m"));
}

#[tokio::test]
async fn a_registered_secret_never_appears_in_human_json_or_junit_output() {
    let (report, ctx, _dir) = mixed_report().await;
    let outputs = [
        render_human(&report, &ctx.redactor, false),
        render_human(&report, &ctx.redactor, true),
        render_json(&report, &ctx.redactor),
        render_junit(&report, &ctx.redactor).unwrap(),
        format!("{report:?}"),
    ];
    for out in &outputs {
        assert!(!out.contains(CANARY), "canary leaked:\n{out}");
        assert!(!out.contains("9d2f7b"), "part of the canary leaked:\n{out}");
        assert!(
            !out.contains("with\\\\escapes") && !out.contains("with\\escapes"),
            "quoted canary leaked:\n{out}"
        );
    }
    // The secret was there to leak: the output says where it was masked.
    assert!(outputs[2].contains("key=[REDACTED]"), "{}", outputs[2]);
    assert!(
        outputs[2].contains("token=[REDACTED] quoted=[REDACTED]"),
        "{}",
        outputs[2]
    );
}

#[tokio::test]
async fn fail_fast_stops_the_run_and_reports_the_rest_as_skipped() {
    let server = http_server().await;
    let (ctx, _dir) = context(
        r#"
[[probes]]
name = "broken"
http = { url = "${BASE}/status/500" }
[[probes]]
name = "never-run-1"
http = { url = "${BASE}/up" }
[[probes]]
name = "never-run-2"
http = { url = "${BASE}/up" }
"#,
        &[("BASE", server.url())],
    );
    let options = RunnerOptions {
        concurrency: 1,
        fail_fast: true,
        ..Default::default()
    };
    let report = SmokeStep::with_options(options)
        .run_report(&ctx)
        .await
        .unwrap();
    assert_eq!(report.summary.failed, 1);
    assert_eq!(report.summary.skipped, 2);
    assert_eq!(
        report.probes[1].reason.as_deref(),
        Some("not run: fail-fast stopped the run after `broken` failed")
    );
}

#[tokio::test]
async fn no_more_probes_run_at_once_than_the_concurrency_allows() {
    let server = http_server().await;
    let probes: String = (0..24)
        .map(|i| {
            format!("[[probes]]\nname = \"held-{i}\"\nhttp = {{ url = \"${{BASE}}/held\" }}\n")
        })
        .collect();
    let (ctx, _dir) = context(&probes, &[("BASE", server.url())]);
    let options = RunnerOptions {
        concurrency: 4,
        ..Default::default()
    };
    let report = SmokeStep::with_options(options)
        .run_report(&ctx)
        .await
        .unwrap();
    assert!(report.ok, "{report:#?}");
    assert_eq!(
        server
            .state
            .held_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        24
    );
    let max = server
        .state
        .max_in_flight
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=4).contains(&max),
        "{max} requests were in flight at once"
    );
}

#[tokio::test]
async fn smoke_step_gives_one_finding_per_probe_and_keeps_its_report() {
    let (_, mut ctx, _dir) = mixed_report().await;
    let step = SmokeStep::new();
    let handle = step.clone();
    let step_report = step.run(&mut ctx).await.unwrap();
    assert_eq!(step.name(), "smoke");
    assert_eq!(step_report.status, StepStatus::Failed);
    assert_eq!(step_report.summary, "1 passed, 2 failed, 1 skipped");
    assert_eq!(step_report.findings.len(), 4);
    let failed = step_report
        .findings
        .iter()
        .find(|f| f.name == "leaky-url")
        .unwrap();
    assert_eq!(failed.expected.as_deref(), Some("status 2xx"));
    assert_eq!(failed.observed.as_deref(), Some("status 500"));
    let kept = handle.last_report().expect("a clone sees the report");
    assert_eq!(kept.environment.as_deref(), Some("staging"));
    assert_eq!(kept.commit.as_deref(), Some(COMMIT));
    assert_eq!(kept.exit_code(), 1);
}

#[tokio::test]
async fn an_environment_with_no_probes_skips_the_step() {
    let (mut ctx, _dir) = context(
        "[[probes]]\nname = \"prod\"\nenvironments = [\"production\"]\ntcp = { address = \"127.0.0.1:1\" }\n",
        &[],
    );
    let report = SmokeStep::new().run(&mut ctx).await.unwrap();
    assert_eq!(report.status, StepStatus::Skipped);
    assert!(report.ok());
}

/// A platform check a provider offers (as AWS offers ALB target health).
#[derive(Debug)]
struct PlatformCheck {
    ok: bool,
}

#[staging_core::async_trait]
impl staging_core::Probe for PlatformCheck {
    fn name(&self) -> &str {
        "alb-target-health"
    }
    fn kind(&self) -> &str {
        "aws-alb"
    }
    async fn run(&self) -> staging_core::Result<staging_core::ProbeOutcome> {
        let d = std::time::Duration::from_millis(1);
        Ok(if self.ok {
            staging_core::ProbeOutcome::pass("all targets healthy", "2 of 2 healthy", d)
        } else {
            staging_core::ProbeOutcome::fail(
                "all targets healthy",
                "i-0abc: unhealthy (Target.Timeout)",
                d,
            )
        })
    }
}

#[tokio::test]
async fn the_providers_platform_checks_run_with_the_spec_probes() {
    let (mut ctx, _dir) = context(
        "[[probes]]\nname = \"refused\"\ntcp = { address = \"127.0.0.1:1\" }\n",
        &[],
    );
    ctx.provider_probes = vec![std::sync::Arc::new(PlatformCheck { ok: false })];
    let report = SmokeStep::new().run(&mut ctx).await.unwrap();
    assert_eq!(report.findings.len(), 2, "{report:?}");
    let alb = report
        .findings
        .iter()
        .find(|f| f.name == "alb-target-health")
        .expect("the provider's check ran");
    assert!(!alb.ok);
    assert_eq!(
        alb.observed.as_deref(),
        Some("i-0abc: unhealthy (Target.Timeout)")
    );

    ctx.provider_probes = vec![std::sync::Arc::new(PlatformCheck { ok: true })];
    let report = SmokeStep::new().run(&mut ctx).await.unwrap();
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.name == "alb-target-health" && f.ok)
    );
}
