//! JUnit XML of a run, parsed back.

mod common;

use quick_junit::{NonSuccessKind, Report, TestCaseStatus};
use secrecy::SecretString;
use staging_core::Redactor;
use staging_core::pipeline::{Finding, RunReport, StepReport};
use staging_evidence::{DirStore, GateRequest, Junit, check_gate, junit_xml};

const CANARY: &str = "canary-secret-9f8e7d6c5b4a";

fn run() -> RunReport {
    RunReport {
        ok: false,
        project: "shop".into(),
        environment: "staging".into(),
        commit: common::sha('a'),
        spec_hash: "h".into(),
        effective_spec_hash: "e".into(),
        started_at: "2026-01-01T00:00:00.000Z".into(),
        finished_at: "2026-01-01T00:05:00.000Z".into(),
        steps: vec![
            StepReport::passed("validate", "spec is valid"),
            StepReport::from_findings(
                "smoke",
                "1 passed, 1 failed",
                vec![
                    Finding::ok("health", "200 in 12ms"),
                    Finding::failed(
                        "login-flow",
                        format!("http probe failed with token {CANARY}"),
                    )
                    .with_evidence("status 200", format!("status 500, body mentions {CANARY}")),
                    Finding::skipped("admin-only", "excluded from staging"),
                ],
            ),
            StepReport::skipped("migrate", "an earlier step failed"),
            StepReport::error("deploy", &staging_core::Error::not_found("service web")),
        ],
    }
}

#[test]
fn a_run_becomes_one_suite_with_a_case_per_finding_and_step() {
    Redactor::global().register(&SecretString::from(CANARY.to_owned()));
    let xml = junit_xml(&run()).unwrap();
    assert!(!xml.contains(CANARY), "the XML shows a secret");

    let parsed = Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(parsed.test_suites.len(), 1);
    let suite = &parsed.test_suites[0];
    assert!(
        suite
            .name
            .as_str()
            .starts_with("shop staging @ aaaaaaaaaaaa")
    );
    let names: Vec<&str> = suite.test_cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "validate",
            "smoke: health",
            "smoke: login-flow",
            "smoke: admin-only",
            "migrate",
            "deploy"
        ]
    );
    assert_eq!(suite.failures, 1);
    assert_eq!(suite.errors, 1);
    // The step that did not run, and the probe that was not made.
    assert_eq!(suite.skipped, 2);

    let login = &suite.test_cases[2];
    match &login.status {
        TestCaseStatus::NonSuccess {
            kind,
            message,
            description,
            ..
        } => {
            assert_eq!(*kind, NonSuccessKind::Failure);
            assert!(
                message
                    .as_ref()
                    .unwrap()
                    .as_str()
                    .starts_with("http probe failed")
            );
            let d = description.as_ref().unwrap().as_str();
            assert!(
                d.contains("expected: status 200") && d.contains("observed: status 500"),
                "{d}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        suite.test_cases[0].status,
        TestCaseStatus::Success { .. }
    ));
    for skipped in [3, 4] {
        assert!(
            matches!(
                suite.test_cases[skipped].status,
                TestCaseStatus::Skipped { .. }
            ),
            "{:?}",
            suite.test_cases[skipped]
        );
    }
    let props: Vec<(&str, &str)> = suite
        .properties
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    assert!(props.contains(&("environment", "staging")));
}

#[tokio::test]
async fn a_promotion_report_holds_the_gate_and_the_target_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::load(dir.path(), common::SPEC);
    let store = DirStore::new(dir.path().join("ev"));
    let request = GateRequest::new(&spec, "staging", "production", &common::sha('a'));
    let decision = check_gate(&store, &request).await.unwrap();

    let mut j = Junit::new("staging promote");
    j.add_gate(&request, &decision);
    let mut target = run();
    target.environment = "production".into();
    j.add_run(&target);
    let parsed = Report::deserialize_from_str(&j.to_xml().unwrap()).unwrap();
    assert_eq!(parsed.test_suites.len(), 2);
    let gate = &parsed.test_suites[0].test_cases[0];
    match &gate.status {
        TestCaseStatus::NonSuccess { message, ty, .. } => {
            assert_eq!(ty.as_ref().unwrap().as_str(), "no_run");
            assert!(
                message
                    .as_ref()
                    .unwrap()
                    .as_str()
                    .contains("no recorded run")
            );
        }
        other => panic!("{other:?}"),
    }
}
