//! Deploys, waits, verify, promote, rollback, cancel, logs and env vars of the Vercel
//! provider, through Prism serving Vercel's published API description in front of a
//! stateful fake (rollback: the hand-written double, not in the description).

mod support;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use staging_core::{DeployRequest, DeployStatus, Error, Provider, ProviderExt};
use staging_provider_vercel::Target;
use support::*;

const A: &str = "aaaaaaa1111111111111111111111111111111aa";
const B: &str = "bbbbbbb2222222222222222222222222222222bb";
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn conformance_suite_passes_on_production() {
    let _g = lock().await;
    reset(true).await;
    let p = retrying(Target::Production);
    staging_core::testkit::run_all(&p, "production", "web").await;
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn deploy_builds_the_commit_for_the_target_and_goes_ready_on_production_domains() {
    let _g = lock().await;
    let project = reset(true).await;
    let p = provider(Target::Production);
    let svc = p.locate("production", "web").await.unwrap();
    assert_eq!(svc.id, format!("{project}@production"));
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(A),
        )
        .await
        .unwrap();
    let live = p
        .wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(live.status, DeployStatus::Live);
    assert_eq!(live.commit.as_deref(), Some(A));
    p.verify_deployment(&svc, &d.id, A).await.unwrap();
    let st = state().await;
    let req = st["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/v13/deployments" && r["method"] == "POST")
        .unwrap()
        .clone();
    assert_eq!(req["body"]["target"], "production");
    assert_eq!(req["body"]["gitSource"]["sha"], A);
    assert_eq!(req["body"]["gitSource"]["org"], "acme");
    assert_eq!(req["query"]["teamId"], "team_fake", "{req}");
    let state = p.live_state(&svc).await.unwrap();
    assert_eq!(state.live_commit(), Some(A));
    assert_eq!(state.url.unwrap().as_str(), "https://web.example.com/");
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_deployment_built_from_another_commit_fails_verify_naming_both() {
    let _g = lock().await;
    reset(true).await;
    plan(&["other-commit"]).await;
    let p = provider(Target::Production);
    let svc = p.locate("production", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(A),
        )
        .await
        .unwrap();
    p.wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap();
    let err = p
        .verify_deployment(&svc, &d.id, A)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(A) && err.contains("0000000deadbeef"), "{err}");
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_production_deployment_the_domains_do_not_point_at_fails_verify() {
    let _g = lock().await;
    reset(false).await;
    let p = provider(Target::Production);
    let svc = p.locate("production", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(A),
        )
        .await
        .unwrap();
    p.wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap();
    let err = p
        .verify_deployment(&svc, &d.id, A)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("production domains point at"), "{err}");
}

#[tokio::test]
async fn a_failed_build_reports_error_with_build_events_as_log_tail() {
    let _g = lock().await;
    reset(true).await;
    plan(&["error"]).await;
    let p = provider(Target::Preview);
    let svc = p.locate("staging", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(A),
        )
        .await
        .unwrap();
    let err = p
        .wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ERROR"), "{err}");
    assert_eq!(
        p.deploy_status(&svc, &d.id).await.unwrap().status,
        DeployStatus::Failed
    );
    let lines = p.recent_logs(&svc, Some(&d.id), 5).await.unwrap();
    assert!(lines.iter().any(|l| l.contains("next build")), "{lines:?}");
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn preview_and_custom_environment_deploys_name_their_target() {
    let _g = lock().await;
    reset(true).await;
    let preview = provider(Target::Preview);
    let svc = preview.locate("preview", "web").await.unwrap();
    preview
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(A),
        )
        .await
        .unwrap();
    let custom = provider(Target::Custom("staging".into()));
    let svc = custom.locate("staging", "web").await.unwrap();
    let d = custom
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(B),
        )
        .await
        .unwrap();
    custom
        .wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        custom.live_state(&svc).await.unwrap().live_commit(),
        Some(B)
    );
    let st = state().await;
    let bodies: Vec<_> = st["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "/v13/deployments" && r["method"] == "POST")
        .map(|r| r["body"].clone())
        .collect();
    assert!(bodies[0].get("target").is_none(), "{:?}", bodies[0]);
    assert_eq!(bodies[1]["customEnvironmentSlugOrId"], "staging");
    // A custom environment that does not exist is found missing when located.
    let missing = provider(Target::Custom("qa".into()));
    let err = missing.locate("qa", "web").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_project_is_located_by_name_or_id_and_a_missing_one_is_not_found() {
    let _g = lock().await;
    let id = reset(true).await;
    let by_id = builder(Target::Production)
        .with_project(
            "web",
            staging_provider_vercel::ProjectRef {
                id_or_name: id.clone(),
                repo: None,
            },
        )
        .build()
        .unwrap();
    assert_eq!(
        by_id.locate("production", "web").await.unwrap().id,
        format!("{id}@production")
    );
    let p = provider(Target::Production);
    let err = p.locate("production", "nope").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn staged_promote_smokes_the_deployment_url_then_promotes_and_restores_auto_assign() {
    let _g = lock().await;
    reset(true).await;
    let p = provider(Target::Production);
    let svc = p.locate("production", "web").await.unwrap();
    // A is in production first.
    let a = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(A),
        )
        .await
        .unwrap();
    p.wait_until_live(&svc, &a.id, WAIT, &mut |_| {})
        .await
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen2 = seen.clone();
    let p2 = p.clone();
    let svc2 = svc.clone();
    let done = p
        .promote_staged(
            &staging_core::testkit::target(&svc),
            B,
            WAIT,
            move |url| async move {
                // While the smoke runs, production still serves A: the domains were held back.
                let live = p2.live_state(&svc2).await?;
                *seen2.lock().unwrap() =
                    Some((url.to_string(), live.live_commit().map(str::to_owned)));
                Ok(())
            },
        )
        .await
        .unwrap();
    let (url, during) = seen.lock().unwrap().clone().unwrap();
    assert!(
        url.ends_with(".vercel.app/") && !url.contains("example.com"),
        "{url}"
    );
    assert_eq!(
        during.as_deref(),
        Some(A),
        "production moved before promote"
    );
    assert_eq!(p.live_state(&svc).await.unwrap().live_commit(), Some(B));
    assert!(done.auto_assign_before);
    let st = state().await;
    assert_eq!(st["projects"]["prj_web"]["autoAssignCustomDomains"], true);
    // The deployment was created while automatic assignment was off.
    let reqs = st["requests"].as_array().unwrap();
    let off = reqs
        .iter()
        .position(|r| r["method"] == "PATCH" && r["body"]["autoAssignCustomDomains"] == false)
        .expect("auto-assign switched off");
    let created = reqs
        .iter()
        .rposition(|r| r["path"] == "/v13/deployments" && r["method"] == "POST")
        .unwrap();
    let promoted = reqs
        .iter()
        .position(|r| r["path"].as_str().unwrap().contains("/promote/"))
        .unwrap();
    assert!(
        off < created && created < promoted,
        "{off} {created} {promoted}"
    );
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn promote_resetting_auto_assign_is_set_back_to_what_it_was() {
    let _g = lock().await;
    reset(false).await;
    let p = provider(Target::Production);
    let svc = p.locate("production", "web").await.unwrap();
    let done = p
        .promote_staged(&staging_core::testkit::target(&svc), B, WAIT, |_| async {
            Ok(())
        })
        .await
        .unwrap();
    // The fake's promote turns it on (vercel/vercel #15095); it was off before the run.
    assert!(!done.auto_assign_before);
    assert!(done.auto_assign_restored);
    assert_eq!(
        state().await["projects"]["prj_web"]["autoAssignCustomDomains"],
        false
    );
    assert_eq!(p.live_state(&svc).await.unwrap().live_commit(), Some(B));
}

#[tokio::test]
async fn a_failed_smoke_promotes_nothing_and_restores_auto_assign() {
    let _g = lock().await;
    reset(true).await;
    let p = provider(Target::Production);
    let svc = p.locate("production", "web").await.unwrap();
    let a = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(A),
        )
        .await
        .unwrap();
    p.wait_until_live(&svc, &a.id, WAIT, &mut |_| {})
        .await
        .unwrap();
    let err = p
        .promote_staged(&staging_core::testkit::target(&svc), B, WAIT, |_| async {
            Err(Error::failed("health: status 500, expected 200"))
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("status 500"), "{err}");
    assert_eq!(p.live_state(&svc).await.unwrap().live_commit(), Some(A));
    let st = state().await;
    assert_eq!(st["projects"]["prj_web"]["autoAssignCustomDomains"], true);
    assert!(
        !st["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"].as_str().unwrap().contains("/promote/")),
        "promoted after a failed smoke"
    );
}

#[tokio::test]
async fn rollback_returns_production_to_the_previous_deployment_through_the_double() {
    let _g = lock().await;
    reset(true).await;
    let p = provider(Target::Production);
    let svc = p.locate("production", "web").await.unwrap();
    for c in [A, B] {
        let d = p
            .deploy(
                &staging_core::testkit::target(&svc),
                &DeployRequest::commit(c),
            )
            .await
            .unwrap();
        p.wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
            .await
            .unwrap();
    }
    let back = p
        .rollback(&staging_core::testkit::target(&svc))
        .await
        .unwrap();
    assert_eq!(back.commit.as_deref(), Some(A));
    assert_eq!(p.live_state(&svc).await.unwrap().live_commit(), Some(A));
    let st = state().await;
    assert!(
        st["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"].as_str().unwrap().contains("/rollback/")),
        "the rollback call did not reach the double"
    );
    // A preview environment has no production domains to move.
    let preview = provider(Target::Preview);
    assert!(
        preview
            .rollback(&staging_core::testkit::target(&svc))
            .await
            .is_err()
    );
}

/// Deploys A then B to production, live; the handle of the project.
async fn two_production_deploys(
    p: &staging_provider_vercel::VercelProvider,
) -> staging_core::ServiceHandle {
    let svc = p.locate("production", "web").await.unwrap();
    for c in [A, B] {
        let d = p
            .deploy(
                &staging_core::testkit::target(&svc),
                &DeployRequest::commit(c),
            )
            .await
            .unwrap();
        p.wait_until_live(&svc, &d.id, WAIT, &mut |_| {})
            .await
            .unwrap();
    }
    svc
}

#[tokio::test]
async fn rollback_waits_for_vercels_background_job_before_answering() {
    let _g = lock().await;
    reset(true).await;
    let p = provider(Target::Production);
    let svc = two_production_deploys(&p).await;
    // The job stays `pending` for 2 s after Vercel's 201, as instant rollback does.
    alias_job(2.0, "succeeded", &[]).await;
    let back = p
        .rollback(&staging_core::testkit::target(&svc))
        .await
        .unwrap();
    assert_eq!(back.commit.as_deref(), Some(A));
    assert_eq!(p.live_state(&svc).await.unwrap().live_commit(), Some(A));
    let st = state().await;
    assert_eq!(
        st["projects"]["prj_web"]["lastAliasRequest"]["jobStatus"], "succeeded",
        "answered before the job finished"
    );
    let polls = st["requests"]
        .as_array()
        .unwrap()
        .iter()
        .skip_while(|r| !r["path"].as_str().unwrap().contains("/rollback/"))
        .filter(|r| r["path"] == "/v9/projects/web" || r["path"] == "/v9/projects/prj_web")
        .count();
    assert!(
        polls >= 2,
        "the project was not polled while the job was pending"
    );
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_failed_rollback_job_reports_vercels_reason() {
    let _g = lock().await;
    reset(true).await;
    let p = provider(Target::Production);
    let svc = two_production_deploys(&p).await;
    alias_job(0.5, "failed", &[("web.example.com", "failed")]).await;
    let err = p
        .rollback(&staging_core::testkit::target(&svc))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("rollback job"), "{text}");
    assert!(text.contains("failed"), "{text}");
    assert!(text.contains("web.example.com (failed)"), "{text}");
    assert_eq!(err.class().exit_code(), 1, "{text}");
    // Production stayed where it was.
    assert_eq!(p.live_state(&svc).await.unwrap().live_commit(), Some(B));
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn promote_waits_for_its_background_job_and_a_failed_job_is_an_error() {
    let _g = lock().await;
    reset(true).await;
    let p = provider(Target::Production);
    let svc = two_production_deploys(&p).await;
    // Point production back at A through a rollback, then promote B again.
    p.rollback(&staging_core::testkit::target(&svc))
        .await
        .unwrap();
    let list = state().await;
    let b_id = list["deployments"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, d)| d["meta"]["githubCommitSha"] == B)
        .map(|(id, _)| id.clone())
        .unwrap();
    alias_job(1.0, "succeeded", &[]).await;
    p.promote(&staging_core::testkit::target(&svc), &b_id)
        .await
        .unwrap();
    assert_eq!(p.live_state(&svc).await.unwrap().live_commit(), Some(B));
    // The attack: a job Vercel fails is not a success.
    p.rollback(&staging_core::testkit::target(&svc))
        .await
        .unwrap();
    alias_job(0.2, "failed", &[]).await;
    let err = p
        .promote(&staging_core::testkit::target(&svc), &b_id)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("promote job"), "{err}");
    assert_eq!(p.live_state(&svc).await.unwrap().live_commit(), Some(A));
}

#[tokio::test]
async fn cancel_stops_a_building_deployment() {
    let _g = lock().await;
    reset(true).await;
    plan(&["slow"]).await;
    let p = provider(Target::Production);
    let svc = p.locate("production", "web").await.unwrap();
    let d = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit(A),
        )
        .await
        .unwrap();
    let c = p
        .cancel_deploy(&staging_core::testkit::target(&svc), &d.id)
        .await
        .unwrap();
    assert_eq!(c.status, DeployStatus::Canceled);
    assert_eq!(
        p.deploy_status(&svc, &d.id).await.unwrap().status,
        DeployStatus::Canceled
    );
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_refused_token_is_unauthenticated_and_never_shown() {
    let _g = lock().await;
    reset(true).await;
    let p = builder(Target::Production)
        .with_token("vc_wrong_canary_token".to_owned())
        .build()
        .unwrap();
    let err = p.locate("production", "web").await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    assert_eq!(err.class().exit_code(), 3);
    assert!(!format!("{err:?} {err}").contains("canary"));
}

fn value(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

#[tokio::test]
async fn env_vars_are_written_per_target_as_encrypted_never_plain_and_other_targets_untouched() {
    let _g = lock().await;
    reset(true).await;
    let prod = provider(Target::Production);
    let svc = prod.locate("production", "web").await.unwrap();
    prod.set_env_var(
        &staging_core::testkit::target(&svc),
        "EMAIL_PROVIDER",
        &value("postmark-prod"),
    )
    .await
    .unwrap();
    let staging = provider(Target::Custom("staging".into()));
    staging
        .set_env_var(
            &staging_core::testkit::target(&svc),
            "EMAIL_PROVIDER",
            &value("log"),
        )
        .await
        .unwrap();
    staging
        .set_env_var(
            &staging_core::testkit::target(&svc),
            "API_KEY",
            &value("canary-staging-key-91"),
        )
        .await
        .unwrap();
    // Written again: edited in place, still one record for the target.
    staging
        .set_env_var(
            &staging_core::testkit::target(&svc),
            "API_KEY",
            &value("canary-staging-key-92"),
        )
        .await
        .unwrap();
    let st = state().await;
    let envs = st["envs"]["prj_web"].as_array().unwrap();
    assert_eq!(envs.len(), 3, "{envs:?}");
    assert!(envs.iter().all(|e| e["type"] == "encrypted"), "{envs:?}");
    let prod_vars = prod.env_vars(&svc).await.unwrap();
    assert_eq!(prod_vars["EMAIL_PROVIDER"].expose_secret(), "postmark-prod");
    assert!(!prod_vars.contains_key("API_KEY"));
    let st_vars = staging.env_vars(&svc).await.unwrap();
    assert_eq!(st_vars["EMAIL_PROVIDER"].expose_secret(), "log");
    assert_eq!(st_vars["API_KEY"].expose_secret(), "canary-staging-key-92");
    staging
        .delete_env_var(&staging_core::testkit::target(&svc), "EMAIL_PROVIDER")
        .await
        .unwrap();
    assert_eq!(
        prod.env_vars(&svc).await.unwrap()["EMAIL_PROVIDER"].expose_secret(),
        "postmark-prod"
    );
    assert!(!format!("{st_vars:?}").contains("canary-staging"));
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_record_shared_with_other_targets_is_split_not_edited() {
    let _g = lock().await;
    reset(true).await;
    // A var set in the dashboard for production and preview at once.
    let prod = provider(Target::Production);
    let svc = prod.locate("production", "web").await.unwrap();
    let preview = provider(Target::Preview);
    // Create a shared record through the API as the dashboard would.
    reqwest::Client::new()
        .post(format!("{}/v10/projects/prj_web/env", stand_in().prism.url()))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"key": "SHARED", "value": "both", "type": "encrypted", "target": ["production", "preview"], "gitBranch": null}))
        .send()
        .await
        .unwrap();
    prod.set_env_var(
        &staging_core::testkit::target(&svc),
        "SHARED",
        &value("prod-only"),
    )
    .await
    .unwrap();
    let st = state().await;
    let envs = st["envs"]["prj_web"].as_array().unwrap();
    let shared = envs.iter().find(|e| e["value"] == "both").unwrap();
    assert_eq!(shared["target"], serde_json::json!(["preview"]), "{envs:?}");
    assert_eq!(
        prod.env_vars(&svc).await.unwrap()["SHARED"].expose_secret(),
        "prod-only"
    );
    let _ = preview;
}

#[tokio::test]
async fn sensitive_secret_type_is_written_as_sensitive() {
    let _g = lock().await;
    reset(true).await;
    let p = builder(Target::Production)
        .with_secret_type(staging_provider_vercel::SecretType::Sensitive)
        .build()
        .unwrap();
    let svc = p.locate("production", "web").await.unwrap();
    let store = p.env_store(staging_core::testkit::target(&svc));
    staging_core::SecretStore::put(&store, "STRIPE_KEY", &value("sk_canary_1"))
        .await
        .unwrap();
    let st = state().await;
    assert_eq!(st["envs"]["prj_web"][0]["type"], "sensitive");
    // Write-only on Vercel: it cannot be read back.
    assert!(
        staging_core::SecretStore::get(&store, "STRIPE_KEY")
            .await
            .unwrap()
            .is_none()
    );
}
