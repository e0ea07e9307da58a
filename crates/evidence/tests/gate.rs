//! The promotion gate against the directory store: each way around it is refused, with the
//! reason, and the honest case is allowed.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use common::{SPEC, evidence, load, sha};
use staging_core::pipeline::{Finding, Pipeline, RunContext, Step, StepReport};
use staging_evidence::{
    DirStore, EvidenceFilter, EvidenceStore, GateDecision, GateRequest, RecordEvidence, Refusal,
    check_direct_up, check_gate, promotion_pair,
};

fn refusal(d: &GateDecision) -> &Refusal {
    d.refusal()
        .unwrap_or_else(|| panic!("expected a refusal, got {d:?}"))
}

struct Setup {
    _dir: tempfile::TempDir,
    spec: Arc<staging_core::spec::LoadedSpec>,
    store: DirStore,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let spec = load(dir.path(), SPEC);
    let store = DirStore::new(dir.path().join(".staging/evidence"));
    Setup {
        _dir: dir,
        spec,
        store,
    }
}

fn request(s: &Setup, commit: &str) -> GateRequest {
    GateRequest::new(&s.spec, "staging", "production", commit)
}

#[tokio::test]
async fn promotion_is_allowed_by_passing_evidence_of_the_same_commit_and_spec() {
    let s = setup();
    let ev = evidence("staging", &sha('a'), &s.spec.hash, None, SystemTime::now());
    let id = s.store.record(&ev).await.unwrap();
    let decision = check_gate(&s.store, &request(&s, &sha('a'))).await.unwrap();
    match &decision {
        GateDecision::Allowed { evidence } => {
            assert_eq!(evidence.id, id);
            assert!(evidence.intact);
        }
        other => panic!("refused: {other:?}"),
    }
    assert_eq!(decision.exit_code(), 0);
}

#[tokio::test]
async fn a_short_commit_id_finds_the_evidence_of_the_full_one() {
    let s = setup();
    let ev = evidence("staging", &sha('a'), &s.spec.hash, None, SystemTime::now());
    s.store.record(&ev).await.unwrap();
    let decision = check_gate(&s.store, &request(&s, &sha('a')[..8]))
        .await
        .unwrap();
    assert!(decision.is_allowed(), "{decision:?}");
}

#[tokio::test]
async fn gate_refuses_when_the_source_environment_never_ran() {
    let s = setup();
    let decision = check_gate(&s.store, &request(&s, &sha('a'))).await.unwrap();
    assert!(matches!(refusal(&decision), Refusal::NoRun { .. }));
    assert_eq!(decision.exit_code(), 1);
    assert!(
        refusal(&decision)
            .to_string()
            .contains("staging up --env staging")
    );
}

#[tokio::test]
async fn gate_refuses_a_commit_when_only_other_commits_passed() {
    let s = setup();
    s.store
        .record(&evidence(
            "staging",
            &sha('b'),
            &s.spec.hash,
            None,
            SystemTime::now(),
        ))
        .await
        .unwrap();
    // A passing run of the same commit on another environment does not count either.
    s.store
        .record(&evidence(
            "production",
            &sha('a'),
            &s.spec.hash,
            None,
            SystemTime::now(),
        ))
        .await
        .unwrap();
    let decision = check_gate(&s.store, &request(&s, &sha('a'))).await.unwrap();
    match refusal(&decision) {
        Refusal::OtherCommitOnly { latest, .. } => assert_eq!(latest, &vec![sha('b')]),
        other => panic!("{other:?}"),
    }
    assert!(refusal(&decision).to_string().contains(&sha('b')));
}

#[tokio::test]
async fn gate_refuses_when_the_latest_run_failed_and_names_the_step() {
    let s = setup();
    let earlier = SystemTime::now() - Duration::from_secs(600);
    s.store
        .record(&evidence("staging", &sha('a'), &s.spec.hash, None, earlier))
        .await
        .unwrap();
    s.store
        .record(&evidence(
            "staging",
            &sha('a'),
            &s.spec.hash,
            Some("smoke"),
            SystemTime::now(),
        ))
        .await
        .unwrap();
    let decision = check_gate(&s.store, &request(&s, &sha('a'))).await.unwrap();
    match refusal(&decision) {
        Refusal::RunFailed { step, summary, .. } => {
            assert_eq!(step, "smoke");
            assert_eq!(summary, "1 passed, 1 failed");
        }
        other => panic!("{other:?}"),
    }
}

#[derive(Debug)]
struct FailingSmoke;

#[async_trait]
impl Step for FailingSmoke {
    fn name(&self) -> &'static str {
        "smoke"
    }
    async fn run(&self, _ctx: &mut RunContext) -> staging_core::Result<StepReport> {
        Ok(StepReport::from_findings(
            "smoke",
            "0 passed, 1 failed",
            vec![
                Finding::failed("health", "http probe failed")
                    .with_evidence("status 200", "status 503"),
            ],
        ))
    }
}

#[derive(Debug)]
struct Passing(&'static str);

#[async_trait]
impl Step for Passing {
    fn name(&self) -> &'static str {
        self.0
    }
    async fn run(&self, _ctx: &mut RunContext) -> staging_core::Result<StepReport> {
        Ok(StepReport::passed(self.0, "fine"))
    }
}

#[tokio::test]
async fn a_failed_pipeline_run_is_recorded_by_the_evidence_step_and_refused() {
    let s = setup();
    let store: staging_evidence::DynEvidenceStore = Arc::new(s.store.clone());
    let pipeline = Pipeline::new()
        .step(Passing("validate"))
        .step(FailingSmoke)
        .step(Passing("after"))
        .step(RecordEvidence::new(store.clone()));
    let mut ctx = RunContext::new(s.spec.clone(), "staging", sha('a')).unwrap();
    let report = pipeline.run(&mut ctx).await;
    assert!(!report.ok);
    let evidence_step = report.steps.last().unwrap();
    assert_eq!(evidence_step.step, "evidence");
    assert!(
        evidence_step.ok(),
        "the evidence step runs after a failure: {evidence_step:?}"
    );

    let listing = store
        .list(&EvidenceFilter::new().commit(sha('a')))
        .await
        .unwrap();
    assert_eq!(listing.entries.len(), 1);
    assert!(!listing.entries[0].evidence.ok);
    assert!(listing.entries[0].intact);

    let decision = check_gate(&*store, &request(&s, &sha('a'))).await.unwrap();
    assert!(matches!(refusal(&decision), Refusal::RunFailed { step, .. } if step == "smoke"));
}

#[tokio::test]
async fn a_passing_pipeline_run_recorded_by_the_evidence_step_allows_promotion() {
    let s = setup();
    let store: staging_evidence::DynEvidenceStore = Arc::new(s.store.clone());
    let pipeline = Pipeline::new()
        .step(Passing("validate"))
        .step(Passing("smoke"))
        .step(RecordEvidence::new(store.clone()));
    let mut ctx = RunContext::new(s.spec.clone(), "staging", sha('a')).unwrap();
    assert!(pipeline.run(&mut ctx).await.ok);
    assert!(
        check_gate(&*store, &request(&s, &sha('a')))
            .await
            .unwrap()
            .is_allowed()
    );
}

#[tokio::test]
async fn gate_refuses_an_evidence_file_edited_to_pass() {
    let s = setup();
    let id = s
        .store
        .record(&evidence(
            "staging",
            &sha('a'),
            &s.spec.hash,
            Some("smoke"),
            SystemTime::now(),
        ))
        .await
        .unwrap();
    let path = s.store.root().join(&id);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text
        .replace("\"ok\": false", "\"ok\": true")
        .replace("\"status\": \"failed\"", "\"status\": \"passed\"");
    assert_ne!(text, edited);
    std::fs::write(&path, edited).unwrap();

    let decision = check_gate(&s.store, &request(&s, &sha('a'))).await.unwrap();
    match refusal(&decision) {
        Refusal::EvidenceEdited { ids, .. } => assert_eq!(ids, &vec![id]),
        other => panic!("{other:?}"),
    }
    assert!(refusal(&decision).to_string().contains("content hash"));
}

#[tokio::test]
async fn gate_refuses_evidence_of_another_commit_copied_and_relabelled() {
    let s = setup();
    let id = s
        .store
        .record(&evidence(
            "staging",
            &sha('b'),
            &s.spec.hash,
            None,
            SystemTime::now(),
        ))
        .await
        .unwrap();
    let text = std::fs::read_to_string(s.store.root().join(&id)).unwrap();
    let target_dir = s.store.root().join(sha('a'));
    std::fs::create_dir_all(&target_dir).unwrap();
    std::fs::write(
        target_dir.join("staging-forged.json"),
        text.replace(&sha('b'), &sha('a')),
    )
    .unwrap();

    let decision = check_gate(&s.store, &request(&s, &sha('a'))).await.unwrap();
    assert!(
        matches!(refusal(&decision), Refusal::EvidenceEdited { .. }),
        "{decision:?}"
    );
}

#[tokio::test]
async fn gate_refuses_an_evidence_file_that_no_longer_parses() {
    let s = setup();
    let id = s
        .store
        .record(&evidence(
            "staging",
            &sha('a'),
            &s.spec.hash,
            None,
            SystemTime::now(),
        ))
        .await
        .unwrap();
    std::fs::write(s.store.root().join(&id), "{ \"ok\": tru").unwrap();
    let decision = check_gate(&s.store, &request(&s, &sha('a'))).await.unwrap();
    assert!(
        matches!(refusal(&decision), Refusal::EvidenceUnreadable { .. }),
        "{decision:?}"
    );
}

#[tokio::test]
async fn gate_refuses_when_the_spec_changed_since_the_run() {
    let s = setup();
    s.store
        .record(&evidence(
            "staging",
            &sha('a'),
            &s.spec.hash,
            None,
            SystemTime::now(),
        ))
        .await
        .unwrap();
    // Someone loosens a probe after staging passed.
    let edited = load(s._dir.path(), &format!("{SPEC}\n# skip the login probe\n"));
    assert_ne!(edited.hash, s.spec.hash);
    let decision = check_gate(
        &s.store,
        &GateRequest::new(&edited, "staging", "production", &sha('a')),
    )
    .await
    .unwrap();
    match refusal(&decision) {
        Refusal::SpecChanged {
            evidence_spec_hash,
            current_spec_hash,
            ..
        } => {
            assert_eq!(evidence_spec_hash, &s.spec.hash);
            assert_eq!(current_spec_hash, &edited.hash);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn gate_refuses_evidence_older_than_the_maximum_age() {
    let s = setup();
    let recorded = SystemTime::now();
    s.store
        .record(&evidence(
            "staging",
            &sha('a'),
            &s.spec.hash,
            None,
            recorded,
        ))
        .await
        .unwrap();
    assert_eq!(
        s.spec.spec.project.evidence_max_age,
        Duration::from_secs(24 * 3600)
    );
    let later = recorded + Duration::from_secs(25 * 3600);
    let decision = check_gate(&s.store, &request(&s, &sha('a')).at(later))
        .await
        .unwrap();
    match refusal(&decision) {
        Refusal::TooOld { age, max_age, .. } => {
            assert_eq!(age, "1day 1h");
            assert_eq!(max_age, "1day");
        }
        other => panic!("{other:?}"),
    }
    // A longer allowance (`--max-age 2d`) accepts it.
    let allowed = check_gate(
        &s.store,
        &request(&s, &sha('a'))
            .at(later)
            .with_max_age(Duration::from_secs(48 * 3600)),
    )
    .await
    .unwrap();
    assert!(allowed.is_allowed());
}

#[tokio::test]
async fn the_spec_sets_the_maximum_age() {
    let s = setup();
    let spec = load(
        s._dir.path(),
        &SPEC.replace(
            "name = \"shop\"",
            "name = \"shop\"\nevidence_max_age = \"1h\"",
        ),
    );
    let recorded = SystemTime::now();
    s.store
        .record(&evidence("staging", &sha('a'), &spec.hash, None, recorded))
        .await
        .unwrap();
    let req = GateRequest::new(&spec, "staging", "production", &sha('a'))
        .at(recorded + Duration::from_secs(2 * 3600));
    let decision = check_gate(&s.store, &req).await.unwrap();
    assert!(matches!(refusal(&decision), Refusal::TooOld { .. }));
}

#[tokio::test]
async fn refusals_serialize_with_their_kind_and_sentence() {
    let s = setup();
    let decision = check_gate(&s.store, &request(&s, &sha('a'))).await.unwrap();
    let json = decision.to_json();
    assert_eq!(json["decision"], "refused");
    assert_eq!(json["refusal"]["kind"], "no_run");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("no recorded run")
    );
}

#[test]
fn a_protected_environment_is_not_deployed_by_up_unless_the_spec_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = load(dir.path(), SPEC);
    assert!(check_direct_up(&spec, "staging").is_ok());
    let err = check_direct_up(&spec, "production")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("staging promote --from staging --to production"),
        "{err}"
    );

    let allowed = load(
        dir.path(),
        &SPEC.replace(
            "protected = true",
            "protected = true\nallow_direct_up = true",
        ),
    );
    assert!(check_direct_up(&allowed, "production").is_ok());
}

#[test]
fn the_promotion_pair_defaults_to_the_environment_promoting_to_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let spec = load(dir.path(), SPEC);
    assert_eq!(
        promotion_pair(&spec, None, "production").unwrap(),
        ("staging".to_owned(), "production".to_owned())
    );
    assert!(promotion_pair(&spec, Some("production"), "staging").is_err());
    assert!(promotion_pair(&spec, None, "staging").is_err());
}
