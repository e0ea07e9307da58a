//! The promotion gate against the directory store: each way around it is refused, with the
//! reason, and the honest case is allowed.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use common::{SPEC, evidence, evidence_of_steps, load, sha, step_json};
use staging_core::pipeline::{Evidence, Finding, Pipeline, RunContext, Step, StepReport};
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
    let ev = evidence(
        "staging",
        &sha('a'),
        &s.spec.effective_hash,
        None,
        SystemTime::now(),
    );
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
async fn a_short_commit_id_is_not_a_commit_at_the_gate() {
    // The CLI resolves a short id through git first; the gate itself takes full ids only.
    let s = setup();
    let ev = evidence(
        "staging",
        &sha('a'),
        &s.spec.effective_hash,
        None,
        SystemTime::now(),
    );
    s.store.record(&ev).await.unwrap();
    for given in [&sha('a')[..8], "release-1", "", &sha('g')] {
        let err = check_gate(&s.store, &request(&s, given)).await.unwrap_err();
        assert_eq!(err.class().exit_code(), 2, "{given}: {err}");
        assert!(err.to_string().contains("not a full commit id"), "{err}");
    }
}

/// Issue 13, event 5: after staging ran `abcdef1`, promoting `abcdef1fff…` (another commit)
/// passed, because ids matched by prefix in both directions.
#[tokio::test]
async fn evidence_of_a_commit_does_not_let_another_commit_with_the_same_prefix_through() {
    let s = setup();
    let ran = "abcdef1000000000000000000000000000000000";
    let other = "abcdef1fff000000000000000000000000000000";
    s.store
        .record(&evidence(
            "staging",
            ran,
            &s.spec.effective_hash,
            None,
            SystemTime::now(),
        ))
        .await
        .unwrap();
    // A record whose commit is only a prefix (written by hand or by an older version).
    s.store
        .record(&evidence(
            "staging",
            "abcdef1",
            &s.spec.effective_hash,
            None,
            SystemTime::now(),
        ))
        .await
        .unwrap();
    let decision = check_gate(&s.store, &request(&s, other)).await.unwrap();
    assert!(
        matches!(refusal(&decision), Refusal::OtherCommitOnly { .. }),
        "{decision:?}"
    );
    // The commit that ran still passes, in either case of its hex digits.
    let decision = check_gate(&s.store, &request(&s, &ran.to_ascii_uppercase()))
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
            &s.spec.effective_hash,
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
            &s.spec.effective_hash,
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
        .record(&evidence(
            "staging",
            &sha('a'),
            &s.spec.effective_hash,
            None,
            earlier,
        ))
        .await
        .unwrap();
    s.store
        .record(&evidence(
            "staging",
            &sha('a'),
            &s.spec.effective_hash,
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

/// A smoke step whose one probe passed, reported the way the smoke step reports it.
#[derive(Debug)]
struct PassingSmoke;

#[async_trait]
impl Step for PassingSmoke {
    fn name(&self) -> &'static str {
        "smoke"
    }
    async fn run(&self, _ctx: &mut RunContext) -> staging_core::Result<StepReport> {
        Ok(smoke_passed())
    }
}

fn smoke_passed() -> StepReport {
    StepReport::from_findings(
        "smoke",
        "1 passed, 0 failed, 0 skipped",
        vec![Finding::ok("health", "200 in 12ms").with_duration(Duration::from_millis(12))],
    )
}

/// The smoke step of an environment every probe leaves out: skipped, each probe listed as
/// skipped.
fn smoke_without_probes() -> StepReport {
    let mut r = StepReport::skipped("smoke", "no probes to run (0 passed, 0 failed, 2 skipped)");
    r.findings = vec![
        Finding::ok("health", "skipped: not run in staging"),
        Finding::ok("login-flow", "skipped: not run in staging"),
    ];
    r
}

#[tokio::test]
async fn a_passing_pipeline_run_recorded_by_the_evidence_step_allows_promotion() {
    let s = setup();
    let store: staging_evidence::DynEvidenceStore = Arc::new(s.store.clone());
    let pipeline = Pipeline::new()
        .step(Passing("validate"))
        .step(PassingSmoke)
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
            &s.spec.effective_hash,
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
            &s.spec.effective_hash,
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
            &s.spec.effective_hash,
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
            &s.spec.effective_hash,
            None,
            SystemTime::now(),
        ))
        .await
        .unwrap();
    // Someone changes the spec after staging passed (a comment alone would not count).
    let edited = load(
        s._dir.path(),
        &format!("{SPEC}\n[vars.LOG_LEVEL]\nvalue = \"debug\"\n"),
    );
    assert_ne!(edited.effective_hash, s.spec.effective_hash);
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
            assert_eq!(evidence_spec_hash, &s.spec.effective_hash);
            assert_eq!(current_spec_hash, &edited.effective_hash);
        }
        other => panic!("{other:?}"),
    }
}

/// The spec as `RX` set in the process environment makes it, loaded from `dir`.
fn load_with_rx(dir: &std::path::Path, rx: Option<&str>) -> Arc<staging_core::spec::LoadedSpec> {
    let source = format!(
        "{SPEC}\n[[probes]]\nname = \"health\"\nhttp = {{ url = \"${{services.web.url}}/up\", expect = {{ body_regex = \"${{RX:-^ok$}}\" }} }}\n"
    );
    let path = dir.join("staging.toml");
    std::fs::write(&path, source).unwrap();
    let rx = rx.map(str::to_owned);
    let env = move |name: &str| (name == "RX").then(|| rx.clone()).flatten();
    Arc::new(
        staging_core::spec::LoadedSpec::load(
            &path,
            staging_core::spec::LoadOptions {
                env: &env,
                known_providers: &["local"],
                instance: None,
            },
        )
        .unwrap(),
    )
}

/// Issue 13, event 6: a probe loosened through an environment variable on the staging run
/// (`body_regex = "${RX:-^ok$}"` with `RX='.*'`) counted as "the same spec", since only the
/// file's bytes were hashed.
#[tokio::test]
async fn a_probe_loosened_through_an_env_var_on_staging_is_another_effective_spec() {
    let s = setup();
    let loosened = load_with_rx(s._dir.path(), Some(".*"));
    let strict = load_with_rx(s._dir.path(), None);
    assert_eq!(loosened.hash, strict.hash, "the same file");
    assert_ne!(loosened.effective_hash, strict.effective_hash);
    // What the pipeline records for the loosened staging run: both hashes.
    let mut ev = evidence(
        "staging",
        &sha('a'),
        &loosened.effective_hash,
        None,
        SystemTime::now(),
    );
    ev.spec_hash = loosened.hash.clone();
    ev.content_hash = ev.compute_hash();
    s.store.record(&ev).await.unwrap();

    let decision = check_gate(
        &s.store,
        &GateRequest::new(&strict, "staging", "production", &sha('a')),
    )
    .await
    .unwrap();
    match refusal(&decision) {
        r @ Refusal::SpecChanged { same_file, .. } => {
            assert!(same_file, "{r:?}");
            assert!(r.to_string().contains("environment variable"), "{r}");
        }
        other => panic!("{other:?}"),
    }
    // Promoting under the same environment as the staging run is allowed.
    let decision = check_gate(
        &s.store,
        &GateRequest::new(&loosened, "staging", "production", &sha('a')),
    )
    .await
    .unwrap();
    assert!(decision.is_allowed(), "{decision:?}");
}

/// A record written before `effective_spec_hash` existed cannot show which spec ran.
#[tokio::test]
async fn a_record_without_an_effective_spec_hash_is_refused() {
    let s = setup();
    let mut ev = evidence("staging", &sha('a'), &s.spec.hash, None, SystemTime::now());
    ev.effective_spec_hash = None;
    ev.content_hash = ev.compute_hash();
    s.store.record(&ev).await.unwrap();
    let decision = check_gate(&s.store, &request(&s, &sha('a'))).await.unwrap();
    assert!(
        matches!(refusal(&decision), Refusal::EffectiveSpecUnknown { .. }),
        "{decision:?}"
    );
}

#[tokio::test]
async fn gate_refuses_evidence_older_than_the_maximum_age() {
    let s = setup();
    let recorded = SystemTime::now();
    s.store
        .record(&evidence(
            "staging",
            &sha('a'),
            &s.spec.effective_hash,
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
        .record(&evidence(
            "staging",
            &sha('a'),
            &spec.effective_hash,
            None,
            recorded,
        ))
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

/// Record `steps` as the newest staging run of commit `a`, and ask the gate.
async fn gate_on_steps(s: &Setup, steps: Vec<StepReport>) -> (String, GateDecision) {
    let ev = evidence_of_steps(
        "staging",
        &sha('a'),
        &s.spec.effective_hash,
        steps.iter().map(step_json).collect(),
        SystemTime::now(),
    );
    assert!(ev.ok, "the run must pass as the pipeline judges it: {ev:?}");
    let id = s.store.record(&ev).await.unwrap();
    let decision = check_gate(&s.store, &request(s, &sha('a'))).await.unwrap();
    (id, decision)
}

fn nothing_validated(d: &GateDecision) -> (&str, &str) {
    match refusal(d) {
        Refusal::NothingValidated { id, reason, .. } => (id, reason),
        other => panic!("expected nothing_validated, got {other:?}"),
    }
}

#[tokio::test]
async fn the_gate_refuses_a_staging_run_that_skipped_every_step() {
    let s = setup();
    let steps = [
        "validate", "secrets", "migrate", "deploy", "wait", "verify", "smoke",
    ]
    .into_iter()
    .map(|n| StepReport::skipped(n, "nothing to do"))
    .collect();
    let (id, decision) = gate_on_steps(&s, steps).await;
    assert_eq!(
        nothing_validated(&decision),
        (id.as_str(), "skipped every step")
    );
    assert_eq!(decision.exit_code(), 1);
    let message = refusal(&decision).to_string();
    assert!(
        message.contains(&format!(
            "staging run {id} for commit {} skipped every step",
            sha('a')
        )),
        "{message}"
    );
    assert!(message.contains("staging up --env staging"), "{message}");
    let json = decision.to_json();
    assert_eq!(json["refusal"]["kind"], "nothing_validated");
    assert_eq!(json["refusal"]["id"], id.as_str());
}

#[tokio::test]
async fn the_gate_refuses_a_staging_run_whose_smoke_step_was_skipped_for_want_of_probes() {
    let s = setup();
    let (id, decision) = gate_on_steps(
        &s,
        vec![
            StepReport::passed("validate", "spec is valid"),
            smoke_without_probes(),
        ],
    )
    .await;
    let (refused_id, reason) = nothing_validated(&decision);
    assert_eq!(refused_id, id);
    assert!(reason.starts_with("skipped the smoke step"), "{reason}");
    assert!(reason.contains("0 passed, 0 failed, 2 skipped"), "{reason}");
}

#[tokio::test]
async fn the_gate_refuses_a_staging_run_whose_smoke_step_ran_zero_probes() {
    let s = setup();
    // Passed, but with no probe behind it: nothing was checked.
    let (_, decision) = gate_on_steps(
        &s,
        vec![
            StepReport::passed("validate", "spec is valid"),
            StepReport::passed("smoke", "0 passed, 0 failed, 0 skipped"),
        ],
    )
    .await;
    assert!(
        nothing_validated(&decision)
            .1
            .starts_with("ran no probe in its smoke step"),
        "{decision:?}"
    );

    // Every probe listed, each one skipped.
    let s = setup();
    let (_, decision) = gate_on_steps(
        &s,
        vec![
            StepReport::passed("validate", "spec is valid"),
            StepReport::from_findings(
                "smoke",
                "0 passed, 0 failed, 1 skipped",
                vec![Finding::ok("health", "skipped: fail-fast")],
            ),
        ],
    )
    .await;
    assert!(
        nothing_validated(&decision)
            .1
            .starts_with("ran no probe in its smoke step"),
        "{decision:?}"
    );

    // The finding's own `skipped` mark counts, whatever its message says.
    let s = setup();
    let (_, decision) = gate_on_steps(
        &s,
        vec![
            StepReport::passed("validate", "spec is valid"),
            StepReport::from_findings(
                "smoke",
                "0 passed, 0 failed, 1 skipped",
                vec![Finding {
                    skipped: true,
                    ..Finding::ok("health", "left out of this environment")
                }],
            ),
        ],
    )
    .await;
    assert!(
        nothing_validated(&decision)
            .1
            .starts_with("ran no probe in its smoke step"),
        "{decision:?}"
    );
}

#[tokio::test]
async fn the_gate_refuses_a_staging_run_that_has_no_smoke_step() {
    let s = setup();
    let (id, decision) = gate_on_steps(
        &s,
        vec![
            StepReport::passed("validate", "spec is valid"),
            StepReport::passed("deploy", "web deployed"),
        ],
    )
    .await;
    assert_eq!(
        nothing_validated(&decision),
        (id.as_str(), "never ran a smoke step")
    );
}

#[tokio::test]
async fn the_gate_allows_a_run_whose_smoke_step_passed_a_probe_though_others_were_skipped() {
    let s = setup();
    let (_, decision) = gate_on_steps(
        &s,
        vec![
            StepReport::passed("validate", "spec is valid"),
            StepReport::skipped("migrate", "no databases"),
            StepReport::from_findings(
                "smoke",
                "1 passed, 0 failed, 1 skipped",
                vec![
                    Finding::ok("health", "200 in 12ms").with_duration(Duration::from_millis(12)),
                    Finding::ok("ses", "skipped: not run in staging"),
                ],
            ),
        ],
    )
    .await;
    assert!(decision.is_allowed(), "{decision:?}");
}

#[tokio::test]
async fn a_run_that_validated_nothing_after_one_that_did_is_refused_because_the_newest_decides() {
    let s = setup();
    let earlier = SystemTime::now() - Duration::from_secs(600);
    s.store
        .record(&evidence(
            "staging",
            &sha('a'),
            &s.spec.effective_hash,
            None,
            earlier,
        ))
        .await
        .unwrap();
    let (id, decision) = gate_on_steps(
        &s,
        vec![
            StepReport::passed("validate", "spec is valid"),
            smoke_without_probes(),
        ],
    )
    .await;
    assert_eq!(nothing_validated(&decision).0, id);
}

#[tokio::test]
async fn a_pipeline_run_whose_smoke_step_had_no_probe_is_recorded_as_passing_and_refused() {
    let s = setup();
    let store: staging_evidence::DynEvidenceStore = Arc::new(s.store.clone());
    let pipeline = Pipeline::new()
        .step(Passing("validate"))
        .step(Passing("smoke"))
        .step(RecordEvidence::new(store.clone()));
    let mut ctx = RunContext::new(s.spec.clone(), "staging", sha('a')).unwrap();
    assert!(pipeline.run(&mut ctx).await.ok);
    let decision = check_gate(&*store, &request(&s, &sha('a'))).await.unwrap();
    assert!(
        nothing_validated(&decision).1.starts_with("ran no probe"),
        "{decision:?}"
    );
}

/// Run a promotion the way `staging promote` does: the gate, then the target's pipeline
/// recording evidence that names the record the gate accepted.
async fn promote(s: &Setup, store: &staging_evidence::DynEvidenceStore) -> (String, String) {
    let decision = check_gate(&**store, &request(s, &sha('a'))).await.unwrap();
    let GateDecision::Allowed { evidence } = &decision else {
        panic!("refused: {decision:?}");
    };
    let pipeline = Pipeline::new()
        .step(Passing("validate"))
        .step(PassingSmoke)
        .step(RecordEvidence::new(store.clone()).promoted_from(evidence.reference()));
    let mut ctx = RunContext::new(s.spec.clone(), "production", sha('a')).unwrap();
    let report = pipeline.run(&mut ctx).await;
    assert!(report.ok, "{report:?}");
    let production = store
        .list(&EvidenceFilter::new().environment("production"))
        .await
        .unwrap();
    assert_eq!(production.entries.len(), 1);
    (evidence.id.clone(), production.entries[0].id.clone())
}

#[tokio::test]
async fn production_evidence_names_the_staging_evidence_that_allowed_it() {
    let s = setup();
    let store: staging_evidence::DynEvidenceStore = Arc::new(s.store.clone());
    let staging = evidence(
        "staging",
        &sha('a'),
        &s.spec.effective_hash,
        None,
        SystemTime::now(),
    );
    let staging_id = store.record(&staging).await.unwrap();

    let (allowed_by, production_id) = promote(&s, &store).await;
    assert_eq!(allowed_by, staging_id);

    let production = store.get(&production_id).await.unwrap();
    assert!(
        production.intact,
        "naming the source keeps the record intact"
    );
    let source = production
        .evidence
        .promoted_from
        .as_ref()
        .expect("production evidence names the staging evidence");
    assert_eq!(source.environment, "staging");
    assert_eq!(source.id, staging_id);
    assert_eq!(source.content_hash, staging.content_hash);
    // The name leads back to the very record, unchanged.
    let relied_on = store.get(&source.id).await.unwrap();
    assert!(relied_on.intact);
    assert_eq!(relied_on.evidence.content_hash, source.content_hash);

    // Staging's own record names nothing.
    assert_eq!(
        store.get(&staging_id).await.unwrap().evidence.promoted_from,
        None
    );
    let text = std::fs::read_to_string(s.store.root().join(&staging_id)).unwrap();
    assert!(!text.contains("promoted_from"), "{text}");
}

#[tokio::test]
async fn pointing_production_evidence_at_other_staging_evidence_is_detected_as_an_edit() {
    let s = setup();
    let store: staging_evidence::DynEvidenceStore = Arc::new(s.store.clone());
    let staging = evidence(
        "staging",
        &sha('a'),
        &s.spec.effective_hash,
        None,
        SystemTime::now(),
    );
    let staging_id = store.record(&staging).await.unwrap();
    let (_, production_id) = promote(&s, &store).await;

    let path = s.store.root().join(&production_id);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replace(&staging_id, "aaaaaaa/staging-some-other-run.json");
    assert_ne!(text, edited);
    std::fs::write(&path, edited).unwrap();
    assert!(!store.get(&production_id).await.unwrap().intact);
}

/// A record as written before `promoted_from` existed, with the content hash the tool
/// computed then.
const RECORD_WITHOUT_PROMOTED_FROM: &str = r#"{
  "project": "shop",
  "environment": "staging",
  "commit": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "spec_hash": "SPEC",
  "tool_version": "0.1.0",
  "recorded_at": "2025-01-02T03:04:05.678Z",
  "ok": true,
  "steps": [
    { "step": "validate", "status": "passed", "summary": "spec is valid", "duration_ms": 3 },
    {
      "step": "smoke",
      "status": "passed",
      "summary": "1 passed, 0 failed, 0 skipped",
      "findings": [{ "name": "health", "ok": true, "message": "200 in 12ms", "duration_ms": 12 }],
      "duration_ms": 15
    }
  ],
  "content_hash": "3601d8a2890e95f6860ead6a40be75148119e98d6ca670d80d26e9d3ff2e629a"
}"#;

#[tokio::test]
async fn evidence_recorded_before_records_named_their_source_still_reads_intact() {
    let evidence: Evidence = serde_json::from_str(RECORD_WITHOUT_PROMOTED_FROM).unwrap();
    assert_eq!(evidence.promoted_from, None);
    assert!(
        evidence.is_intact(),
        "an old record must not turn into an edited one"
    );

    let s = setup();
    let dir = s.store.root().join(sha('a'));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("staging-old.json"), RECORD_WITHOUT_PROMOTED_FROM).unwrap();
    let listing = s.store.list(&EvidenceFilter::new()).await.unwrap();
    assert!(listing.unreadable.is_empty(), "{listing:?}");
    assert_eq!(listing.entries.len(), 1);
    assert!(listing.entries[0].intact);
}
