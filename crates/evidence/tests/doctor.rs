//! `doctor` on planted failures: real messages from the secrets step and the migration
//! guard, and findings shaped like the verify, wait and smoke steps'.

mod common;

use std::sync::Arc;

use staging_core::pipeline::{Finding, Pipeline, RunContext, RunReport, StepReport};
use staging_evidence::{
    DirStore, DynEvidenceStore, EvidenceFilter, EvidenceStore, RecordEvidence, diagnose_evidence,
    diagnose_report,
};

const SPEC: &str = r#"
[project]
name = "shop"

[environments.staging]
provider = "local"
promotes_to = "production"
secrets = { dotenv = "staging.env" }

[environments.production]
provider = "local"
protected = true
secrets = { dotenv = "production.env" }

[services.web]
settings = { command = ["./web"] }

[vars.JWT_SECRET]
secret = true
rules = { kind = "signing_key" }

[vars.SESSION_KEY]
secret = true
rules = { kind = "signing_key" }

[vars.STRIPE_KEY]
secret = true

[vars.API_KEY]
value = "key-0123456789\n"

[vars.RUN_PRODUCTION_SEED]
value = "true"
rules = { forbid = ["true", "1"] }
"#;

fn pattern_of<'a>(
    d: &'a staging_evidence::Diagnosis,
    subject: &str,
) -> &'a staging_evidence::Diagnosed {
    d.failures
        .iter()
        .find(|f| f.subject == subject)
        .unwrap_or_else(|| panic!("no diagnosis for {subject}: {d:#?}"))
}

#[tokio::test]
async fn doctor_explains_each_secret_mistake_of_a_failed_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        "SESSION_KEY=short-key-1\nSTRIPE_KEY=PLACEHOLDER-REPLACE-ME\n",
    )
    .unwrap();
    let spec = common::load(dir.path(), SPEC);
    let store: DynEvidenceStore = Arc::new(DirStore::new(dir.path().join(".staging/evidence")));
    let pipeline = Pipeline::new()
        .step(staging_secrets::SecretsStep)
        .step(RecordEvidence::new(store.clone()));
    let mut ctx = RunContext::new(spec, "staging", common::sha('a')).unwrap();
    let report = pipeline.run(&mut ctx).await;
    assert!(!report.ok);

    let d = diagnose_report(&report);
    assert!(!d.ok);
    let jwt = pattern_of(&d, "JWT_SECRET");
    assert_eq!(jwt.pattern, "signing_key_missing");
    assert!(jwt.cause.contains("JWT_SECRET is not set"), "{jwt:?}");
    assert!(jwt.cause.contains("logs everyone out"), "{jwt:?}");
    assert!(jwt.remedy.contains("set it once"), "{jwt:?}");
    assert!(jwt.remedy.contains("rotate deliberately"), "{jwt:?}");
    assert_eq!(pattern_of(&d, "SESSION_KEY").pattern, "signing_key_weak");
    assert_eq!(pattern_of(&d, "STRIPE_KEY").pattern, "placeholder");
    assert_eq!(pattern_of(&d, "API_KEY").pattern, "trailing_whitespace");
    assert_eq!(
        pattern_of(&d, "RUN_PRODUCTION_SEED").pattern,
        "seed_flag_on"
    );
    assert!(
        pattern_of(&d, "RUN_PRODUCTION_SEED")
            .cause
            .contains("restarts the service in a loop")
    );

    // The same from the recorded evidence, and nothing of a value leaks into it.
    let listing = store.list(&EvidenceFilter::new()).await.unwrap();
    let from_evidence = diagnose_evidence(&listing.entries[0].evidence);
    assert_eq!(from_evidence.failures, d.failures);
    let json = serde_json::to_string(&from_evidence).unwrap();
    assert!(!json.contains("short-key-1"));
}

fn run(steps: Vec<StepReport>) -> RunReport {
    RunReport {
        ok: false,
        project: "shop".into(),
        environment: "staging".into(),
        commit: common::sha('a'),
        spec_hash: "h".into(),
        effective_spec_hash: "e".into(),
        started_at: "2026-01-01T00:00:00.000Z".into(),
        finished_at: "2026-01-01T00:05:00.000Z".into(),
        steps,
    }
}

#[test]
fn doctor_explains_deploy_verify_migration_and_smoke_failures() {
    let refusal = staging_migrate::guard::refusal(
        "production",
        "staging",
        "main",
        &["20260102000000_add_owner".to_owned()],
    );
    let report = run(vec![
        StepReport::from_findings(
            "wait",
            "not live within 5m",
            vec![Finding::failed(
                "web",
                "timed out after 5m: deploy dep-1 of web to go live",
            )],
        ),
        StepReport::from_findings(
            "verify",
            "a service serves another commit",
            vec![
                Finding::failed(
                    "worker",
                    "the live commit is not the one deployed (a cached or older deploy is serving)",
                )
                .with_evidence(common::sha('a'), common::sha('b')),
            ],
        ),
        StepReport::error("migrate", &staging_core::Error::failed(refusal.to_string())),
        StepReport::from_findings(
            "smoke",
            "1 passed, 3 failed",
            vec![
                Finding::ok("health", "200"),
                Finding::failed("cache", "redis probe failed").with_evidence(
                    "maxmemory-policy = noeviction",
                    "maxmemory-policy = allkeys-lru",
                ),
                Finding::failed("custom-domain-certificate", "tls probe failed").with_evidence(
                    "a certificate valid for at least 14 days",
                    "certificate expired (not after 2026-01-01)",
                ),
                Finding::failed("email", "command probe failed")
                    .with_evidence("production access enabled", "account is in the SES sandbox"),
            ],
        ),
        StepReport::from_findings(
            "mystery",
            "it broke",
            vec![Finding::failed("thing", "something odd")],
        ),
    ]);
    let d = diagnose_report(&report);
    let by = |s: &str| pattern_of(&d, s).pattern.clone();
    assert_eq!(by("web"), "deploy_timeout");
    assert!(pattern_of(&d, "web").remedy.contains("health_path"));
    assert_eq!(by("worker"), "live_commit_mismatch");
    assert!(pattern_of(&d, "worker").cause.contains("cached image"));
    assert_eq!(by("migrate"), "migrations_missing_on_staging");
    assert_eq!(by("cache"), "redis_eviction_policy");
    assert_eq!(by("custom-domain-certificate"), "tls_expiry");
    assert_eq!(by("email"), "ses_sandbox");
    assert_eq!(by("thing"), "generic");
    assert!(
        d.failures.iter().all(|f| f.subject != "health"),
        "passing findings are not listed"
    );
}

#[test]
fn doctor_explains_a_deploy_replaced_during_smoke() {
    let report = run(vec![StepReport::from_findings(
        "reverify",
        "another deploy replaced a verified deploy during smoke",
        vec![Finding::failed(
            "worker",
            "another deploy replaced deploy dep-1 of aaaaaaaaaaaa during smoke: deploy dep-2 of bbbbbbbbbbbb is live, so the probes may have run against another commit",
        )],
    )]);
    let d = diagnose_report(&report);
    let found = pattern_of(&d, "worker");
    assert_eq!(found.pattern, "replaced_during_smoke");
    assert!(found.cause.contains("auto-deploy"), "{found:?}");
    assert!(found.remedy.contains("lease"), "{found:?}");
}

#[test]
fn a_passing_run_has_nothing_to_diagnose() {
    let mut r = run(vec![
        StepReport::passed("validate", "ok"),
        StepReport::skipped("smoke", "no probes"),
    ]);
    r.ok = true;
    let d = diagnose_report(&r);
    assert!(d.ok);
    assert!(d.failures.is_empty());
}
