//! The Railway provider against the schema-validating stand-in: every document the crate
//! sends is checked against Railway's published schema, and every test ends by asserting
//! that none was refused.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use staging_core::pipeline::{
    DeployStep, Pipeline, RunContext, StepStatus, VerifyCommitStep, WaitStep,
};
use staging_core::testkit::{COMMIT_A, COMMIT_B};
use staging_core::{DeployRequest, DeployStatus, DynProvider, Error, Provider, ProviderExt};
use support::{StandIn, TOKEN};

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn every_document_validates_against_the_published_schema() {
    let s = StandIn::start().await;
    for (name, document) in staging_provider_railway::DOCUMENTS {
        let errors = s.validate(document).await;
        assert!(errors.is_empty(), "{name} does not validate: {errors:?}");
    }
    // The stand-in does refuse what the schema does not have.
    let errors = s
        .validate("query Broken($id: String!) { deployment(id: $id) { id commit } }")
        .await;
    assert!(
        errors.iter().any(|e| e.contains("commit")),
        "a field the schema lacks was accepted: {errors:?}"
    );
}

#[test]
fn the_committed_schema_is_the_published_one() {
    // The compile-time check and the stand-in read the crate's copy; it must be Railway's.
    let committed = std::fs::read(support::schema_path()).unwrap();
    let published = std::fs::read(support::published_schema()).unwrap();
    assert!(
        committed == published,
        "schema/railway-schema.json differs from the published {}",
        support::published_schema().display()
    );
}

#[tokio::test]
async fn a_document_the_schema_refuses_fails_the_call() {
    // The stand-in answers an invalid document as Railway does (400, validation failed);
    // the provider reports it as a non-retryable error naming the schema.
    let s = StandIn::start().await;
    let http = reqwest::Client::new();
    let answer = http
        .post(&s.url)
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"query": "query X { deployment(id: \"d\") { nope } }", "operationName": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(s.state().await["rejected"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_conformance_suite_passes() {
    let s = StandIn::start().await;
    let p: DynProvider = Arc::new(s.provider());
    staging_core::testkit::run_all(&p, "staging", "web").await;
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn deploy_builds_the_commit_and_waits_through_every_status() {
    let s = StandIn::start().await;
    let p = s.provider();
    let web = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&web),
            &DeployRequest::commit(COMMIT_A),
        )
        .await
        .unwrap();
    assert_eq!(d.status, DeployStatus::Queued, "{d:?}");
    let mut seen = vec![d.raw_status.clone()];
    let live = p
        .wait_until_live(&web, &d.id, TIMEOUT, &mut |w| {
            if seen.last() != Some(&w.deploy.raw_status) {
                seen.push(w.deploy.raw_status.clone());
            }
        })
        .await
        .unwrap();
    assert_eq!(
        seen,
        ["QUEUED", "INITIALIZING", "BUILDING", "DEPLOYING", "SUCCESS"]
    );
    assert_eq!(live.commit.as_deref(), Some(COMMIT_A));
    let state = p.live_state(&web).await.unwrap();
    assert_eq!(state.live_commit(), Some(COMMIT_A));
    assert_eq!(state.latest.unwrap().id, d.id);
    assert_eq!(
        state.url.unwrap().as_str(),
        "https://web-staging.up.railway.app/"
    );
    p.verify_live_commit(&web, COMMIT_A).await.unwrap();
    let mutations = s.mutations().await;
    assert_eq!(mutations, ["serviceInstanceDeployV2"]);
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn a_stale_image_fails_verify_naming_both_commits() {
    // Railway reports SUCCESS, but the live deployment runs the image it had: the old commit.
    let s = StandIn::start().await;
    s.behaviour("web", "stale").await;
    let p: DynProvider = Arc::new(s.provider());
    let spec = Arc::new(support::spec(&s.project_id, ""));
    let mut ctx = RunContext::new(spec, "staging", COMMIT_B).unwrap();
    staging_core::testkit::assume_isolated(&mut ctx);
    ctx.provider = Some(p);
    let report = Pipeline::new()
        .step(DeployStep)
        .step(WaitStep)
        .step(VerifyCommitStep)
        .run(&mut ctx)
        .await;
    let verify = report.steps.iter().find(|st| st.step == "verify").unwrap();
    assert_eq!(verify.status, StepStatus::Failed, "{report:?}");
    let text = format!("{verify:?}");
    assert!(
        text.contains(&COMMIT_B[..12]) && text.contains("0000000000"),
        "verify does not name the deployed and the served commit: {text}"
    );
    assert!(!s.mutations().await.iter().any(|m| m.contains("Redeploy")));
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn the_deploy_step_writes_variables_in_one_call_with_skip_deploys() {
    let s = StandIn::start().await;
    let p: DynProvider = Arc::new(s.provider());
    let spec = Arc::new(support::spec(
        &s.project_id,
        r#"
[vars.APP_ENV]
value = "staging"

[vars.LOG_LEVEL]
value = "info"

[vars.FEATURE_X]
value = "on"
"#,
    ));
    let mut ctx = RunContext::new(spec, "staging", COMMIT_A).unwrap();
    staging_core::testkit::assume_isolated(&mut ctx);
    for (k, v) in [
        ("APP_ENV", "staging"),
        ("LOG_LEVEL", "info"),
        ("FEATURE_X", "on"),
    ] {
        ctx.vars
            .insert(k.to_owned(), SecretString::from(v.to_owned()));
    }
    ctx.provider = Some(p.clone());
    let report = Pipeline::new()
        .step(DeployStep)
        .step(WaitStep)
        .step(VerifyCommitStep)
        .run(&mut ctx)
        .await;
    assert!(report.ok, "{report:?}");
    let state = s.state().await;
    let upserts = state["upserts"].as_array().unwrap();
    assert_eq!(upserts.len(), 1, "one write for all variables: {upserts:?}");
    assert_eq!(
        upserts[0]["names"],
        serde_json::json!(["APP_ENV", "FEATURE_X", "LOG_LEVEL"])
    );
    assert_eq!(upserts[0]["skipDeploys"], true);
    assert_eq!(upserts[0]["replace"], false);
    // One deployment for the run: the variables started none of their own.
    assert_eq!(
        s.mutations().await,
        ["variableCollectionUpsert", "serviceInstanceDeployV2"]
    );
    // A variable the spec does not declare is still there.
    let web = p.locate("staging", "web").await.unwrap();
    let vars = p.env_vars(&web).await.unwrap();
    assert_eq!(vars["PORT"].expose_secret(), "8080");
    assert_eq!(vars["APP_ENV"].expose_secret(), "staging");
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn variables_read_write_and_delete_leave_the_others() {
    let s = StandIn::start().await;
    let p = s.provider();
    let web = p.locate("staging", "web").await.unwrap();
    let canary = "rw-canary-value-91c2";
    p.set_env_vars(
        &staging_core::testkit::target(&web),
        &BTreeMap::from([
            ("A".to_owned(), SecretString::from(canary.to_owned())),
            ("B".to_owned(), SecretString::from("b".to_owned())),
        ]),
    )
    .await
    .unwrap();
    p.delete_env_var(&staging_core::testkit::target(&web), "B")
        .await
        .unwrap();
    let vars = p.env_vars(&web).await.unwrap();
    assert_eq!(vars.keys().collect::<Vec<_>>(), ["A", "PORT"]);
    assert!(!format!("{vars:?}").contains(canary));
    let store = p.variable_store(staging_core::testkit::target(&web));
    use staging_core::SecretStore;
    assert_eq!(
        store.get("A").await.unwrap().unwrap().expose_secret(),
        canary
    );
    assert_eq!(store.list(None).await.unwrap(), ["A", "PORT"]);
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn rollback_returns_to_the_deployment_before() {
    let s = StandIn::start().await;
    let p = s.provider();
    let web = p.locate("staging", "web").await.unwrap();
    for commit in [COMMIT_A, COMMIT_B] {
        let d = p
            .deploy(
                &staging_core::testkit::target(&web),
                &DeployRequest::commit(commit),
            )
            .await
            .unwrap();
        p.wait_until_live(&web, &d.id, TIMEOUT, &mut |_| {})
            .await
            .unwrap();
    }
    let back = p
        .rollback(&staging_core::testkit::target(&web))
        .await
        .unwrap();
    p.wait_until_live(&web, &back.id, TIMEOUT, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        p.live_state(&web).await.unwrap().live_commit(),
        Some(COMMIT_A)
    );
    assert!(
        s.mutations()
            .await
            .contains(&"deploymentRollback".to_owned())
    );
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn a_rollback_that_brings_the_earlier_deployment_back_is_waited_for() {
    let s = StandIn::start().await;
    let p = s.provider();
    let web = p.locate("staging", "web").await.unwrap();
    let mut ids = vec![];
    for commit in [COMMIT_A, COMMIT_B] {
        let d = p
            .deploy(
                &staging_core::testkit::target(&web),
                &DeployRequest::commit(commit),
            )
            .await
            .unwrap();
        p.wait_until_live(&web, &d.id, TIMEOUT, &mut |_| {})
            .await
            .unwrap();
        ids.push(d.id);
    }
    s.behaviour("web", "rollback_in_place").await;
    let back = p
        .rollback_to(&staging_core::testkit::target(&web), &ids[0])
        .await
        .unwrap();
    assert_eq!(back.id, ids[0]);
    p.wait_until_live(&web, &back.id, TIMEOUT, &mut |_| {})
        .await
        .unwrap();
    p.verify_live_commit(&web, COMMIT_A).await.unwrap();
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn cancel_stops_a_deployment_before_it_is_live() {
    let s = StandIn::start().await;
    s.behaviour("web", "slow").await;
    let p = s.provider();
    let web = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&web),
            &DeployRequest::commit(COMMIT_A),
        )
        .await
        .unwrap();
    let canceled = p
        .cancel_deploy(&staging_core::testkit::target(&web), &d.id)
        .await
        .unwrap();
    assert_eq!(canceled.status, DeployStatus::Canceled, "{canceled:?}");
    assert_eq!(canceled.raw_status, "REMOVED");
    // The deployment that served before still serves.
    assert_eq!(
        p.live_state(&web).await.unwrap().live_commit(),
        Some("0000000000000000000000000000000000000000")
    );
    assert!(s.mutations().await.contains(&"deploymentCancel".to_owned()));
    s.assert_no_rejected().await;
}

async fn wait_failure(mode: &str) -> (String, Vec<String>) {
    let s = StandIn::start().await;
    s.behaviour("web", mode).await;
    let p: DynProvider = Arc::new(s.provider());
    let spec = Arc::new(support::spec(&s.project_id, ""));
    let mut ctx = RunContext::new(spec, "staging", COMMIT_A).unwrap();
    staging_core::testkit::assume_isolated(&mut ctx);
    ctx.provider = Some(p.clone());
    let report = Pipeline::new()
        .step(DeployStep)
        .step(WaitStep)
        .run(&mut ctx)
        .await;
    let wait = report.steps.iter().find(|st| st.step == "wait").unwrap();
    assert_eq!(wait.status, StepStatus::Failed, "{report:?}");
    let web = p.locate("staging", "web").await.unwrap();
    let lines = p.recent_logs(&web, None, 20).await.unwrap();
    s.assert_no_rejected().await;
    (format!("{wait:?}"), lines)
}

#[tokio::test]
async fn a_failed_build_fails_the_wait_with_the_build_log_tail() {
    let (report, lines) = wait_failure("fail_build").await;
    assert!(report.contains("FAILED"), "{report}");
    assert!(
        report.contains("pip install"),
        "no build log tail: {report}"
    );
    assert!(
        lines.iter().any(|l| l.contains("Building with Railpack")),
        "{lines:?}"
    );
}

/// Railway writes "Healthcheck failed!" in the build log while the app keeps writing its
/// own: the failure shows both tails, and a long deploy log does not push the verdict out.
#[tokio::test]
async fn a_failed_healthcheck_shows_railways_verdict_from_the_build_log() {
    let (report, lines) = wait_failure("healthcheck").await;
    assert!(report.contains("FAILED"), "{report}");
    assert!(
        report.contains("Healthcheck failed!"),
        "no build log verdict: {report}"
    );
    assert!(
        report.contains("GET / 503 waiting for the database (29)"),
        "no deploy log tail: {report}"
    );
    assert!(
        lines.iter().any(|l| l.contains("Healthcheck failed!")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_crash_fails_the_wait_with_the_deploy_log_tail() {
    let (report, _) = wait_failure("crash").await;
    assert!(report.contains("CRASHED"), "{report}");
    assert!(
        report.contains("AUTH_JWT_SECRET_KEY is not set"),
        "no deploy log tail: {report}"
    );
}

#[tokio::test]
async fn logs_since_a_time_reach_railway_as_start_date() {
    let s = StandIn::start().await;
    let p = s.provider();
    let web = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&web),
            &DeployRequest::commit(COMMIT_A),
        )
        .await
        .unwrap();
    p.wait_until_live(&web, &d.id, TIMEOUT, &mut |_| {})
        .await
        .unwrap();
    let all = p
        .logs(&web, &staging_core::LogQuery::last(50))
        .await
        .unwrap();
    let texts: Vec<&str> = all.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Building with Railpack",
            "Uvicorn running on http://0.0.0.0:8080"
        ]
    );
    // The fake's clock is in 2026-01-01; a later `since` leaves nothing.
    let later = staging_core::LogQuery {
        deploy_id: Some(d.id.clone()),
        lines: 50,
        since: Some(std::time::SystemTime::now() + Duration::from_secs(365 * 24 * 3600)),
    };
    assert!(p.logs(&web, &later).await.unwrap().is_empty());
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let s = StandIn::start().await;
    let p = s.retrying();
    let web = p.locate("staging", "web").await.unwrap();
    let before = s.state().await["requests"].as_array().unwrap().len();
    s.fault("rate_limit", 2, 1).await;
    s.fault("server_error", 2, 0).await;
    let state = p.live_state(&web).await.unwrap();
    assert!(state.live.is_some());
    let after = s.state().await["requests"].as_array().unwrap().len();
    // Four refused attempts, then the deployments and the service instance.
    assert_eq!(after - before, 6);
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn a_rate_limit_says_how_long_to_wait() {
    let s = StandIn::start().await;
    // The client waits a rate limit out itself; with less time left than asked for, the
    // rate limit is the answer, with the wait still to run.
    let p = s
        .builder()
        .with_retry(staging_core::RetryPolicy {
            deadline: Duration::from_secs(2),
            ..support::fast_retries()
        })
        .build()
        .unwrap();
    s.fault("rate_limit", 1, 7).await;
    let err = p.locate("staging", "web").await.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d > Duration::from_secs(5) && d <= Duration::from_secs(7)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_status_read_answered_429_503_or_timeout_never_sends_the_deploy_mutation_twice() {
    for (kind, after) in [("rate_limit", 1), ("server_error", 0), ("slow", 3)] {
        let s = StandIn::start().await;
        let raw = s
            .builder()
            .with_timeout(Duration::from_secs(1))
            .with_retry(support::fast_retries())
            .build()
            .unwrap();
        let p = staging_core::RetryProvider::new(raw, support::fast_retries());
        let web = p.locate("staging", "web").await.unwrap();
        let target = staging_core::testkit::target(&web);
        // The read of the new deployment inside `deploy` fails first, then a poll of it.
        s.fault_on("Deployment", kind, 1, after).await;
        let d = p
            .deploy(&target, &DeployRequest::commit(COMMIT_A))
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        s.fault_on("Deployment", kind, 1, after).await;
        p.wait_until_live(&web, &d.id, Duration::from_secs(60), &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let deploys = s
            .mutations()
            .await
            .into_iter()
            .filter(|m| m == "serviceInstanceDeployV2")
            .count();
        assert_eq!(deploys, 1, "{kind}");
        s.assert_no_rejected().await;
    }
}

#[tokio::test]
async fn a_deploy_mutation_answered_503_is_read_back_before_it_is_sent_again() {
    let s = StandIn::start().await;
    let raw = s
        .builder()
        .with_retry(support::fast_retries())
        .build()
        .unwrap();
    let web = raw.locate("staging", "web").await.unwrap();
    // Refused before it ran: nothing under way, so it is sent again, once.
    s.fault_on("DeployCommit", "server_error", 1, 0).await;
    raw.deploy(
        &staging_core::testkit::target(&web),
        &DeployRequest::commit(COMMIT_B),
    )
    .await
    .expect("sent again after the read-back");
    let deploys = s
        .mutations()
        .await
        .into_iter()
        .filter(|m| m == "serviceInstanceDeployV2")
        .count();
    assert_eq!(deploys, 1);
    let ops: Vec<String> = s.state().await["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["operation"].as_str().map(str::to_owned))
        .collect();
    let first = ops.iter().position(|o| o == "DeployCommit").unwrap();
    assert_eq!(
        ops[first + 1],
        "Deployments",
        "the deployments are read back before the mutation is sent again: {ops:?}"
    );
    assert_eq!(ops.iter().filter(|o| *o == "DeployCommit").count(), 2);
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn a_malformed_answer_is_reported_and_retried() {
    let s = StandIn::start().await;
    let raw = s.provider();
    s.fault("malformed", 1, 0).await;
    let err = raw.locate("staging", "web").await.unwrap_err();
    let text = staging_core::error::error_chain(&err);
    assert!(
        text.contains("Project") && text.contains("unexpected response body"),
        "{text}"
    );
    assert!(err.is_retryable(), "{err:?}");
    // Behind the retry decorator, one malformed answer costs one more request.
    s.fault("malformed", 1, 0).await;
    s.retrying().locate("staging", "web").await.unwrap();
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn a_refused_token_is_unauthenticated_and_never_shown() {
    let s = StandIn::start().await;
    let p = s
        .builder()
        .with_api_token(SecretString::from("bad-token".to_owned()))
        .build()
        .unwrap();
    let err = p.locate("staging", "web").await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    assert_eq!(err.class().exit_code(), 3);
    assert!(!format!("{err:?} {err}").contains("bad-token"));
    assert!(!format!("{p:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_project_token_goes_in_its_own_header_and_names_the_project() {
    let s = StandIn::start().await;
    let p = staging_provider_railway::RailwayBuilder::new()
        .with_project_token(SecretString::from(TOKEN.to_owned()))
        .with_url(s.url.clone())
        .with_environment(staging_provider_railway::Ref::Name("staging".into()))
        .build()
        .unwrap();
    p.locate("staging", "web").await.unwrap();
    let state = s.state().await;
    let requests = state["requests"].as_array().unwrap();
    assert!(
        requests.iter().all(|r| r["credential"] == "project"),
        "{requests:?}"
    );
    assert_eq!(requests[0]["operation"], "ProjectToken");
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn environment_and_service_are_found_by_id_as_by_name() {
    let s = StandIn::start().await;
    let state = s.state().await;
    let id_of = |table: &str, name: &str| {
        state[table]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(id, _)| id.clone())
            .unwrap()
    };
    let (env_id, web_id) = (id_of("environments", "staging"), id_of("services", "web"));
    let by_id = s
        .builder()
        .with_environment(staging_provider_railway::Ref::Id(env_id))
        .with_service("web", staging_provider_railway::Ref::Id(web_id.clone()))
        .build()
        .unwrap();
    let by_name = s
        .builder()
        .with_service("web", staging_provider_railway::Ref::Name("web".into()))
        .build()
        .unwrap();
    let a = by_id.locate("staging", "web").await.unwrap();
    let b = by_name.locate("staging", "web").await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.id, web_id);
    assert_eq!(
        by_id.live_state(&a).await.unwrap().url.unwrap().as_str(),
        "https://web-staging.up.railway.app/"
    );
    s.assert_no_rejected().await;
}

#[tokio::test]
async fn an_unknown_service_is_not_found_naming_it() {
    let s = StandIn::start().await;
    let err = s.provider().locate("staging", "worker").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("`worker`"), "{err}");
    s.assert_no_rejected().await;
}
