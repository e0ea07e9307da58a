//! Neon branches through `prism proxy --errors` of Neon's published API description in front
//! of a stateful fake: every request and every answer is checked against the contract.

mod support;

use secrecy::ExposeSecret;
use staging_core::{BranchState, DatabaseBranch, Error};
use support::{branch, ensure, spec, stand_in};

#[tokio::test]
async fn a_missing_branch_is_created_from_its_parent_and_waited_for() {
    let s = stand_in();
    s.fake.project("proj-create");
    let b = branch(spec("proj-create", "staging", "main"));
    let status = ensure(&b).await.unwrap();
    assert!(status.created);
    assert_eq!(status.state, BranchState::Ready, "{status:?}");
    assert_eq!(status.parent_id.as_deref(), Some("br-main-proj-create"));
    let made = s.fake.branch("proj-create", "staging").unwrap();
    assert_eq!(made.data_of, "main");
    // Both operations the create started were read until finished.
    let reqs = s.fake.requests("proj-create");
    assert!(
        reqs.iter().filter(|r| r.contains("/operations/")).count() >= 4,
        "{reqs:#?}"
    );
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn a_present_branch_is_found_and_not_created_again() {
    let s = stand_in();
    s.fake.project("proj-found");
    s.fake.existing_branch("proj-found", "staging");
    let status = ensure(&branch(spec("proj-found", "staging", "main")))
        .await
        .unwrap();
    assert!(!status.created);
    assert_eq!(status.id, "br-staging-proj-found");
    assert!(
        !s.fake
            .requests("proj-found")
            .iter()
            .any(|r| r.starts_with("POST")),
        "nothing is written when the branch exists"
    );
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn a_present_branch_without_a_compute_endpoint_gets_one() {
    let s = stand_in();
    s.fake.project("proj-noendpoint");
    s.fake.existing_branch("proj-noendpoint", "staging");
    s.fake
        .with("proj-noendpoint", |p| p.branches[1].has_endpoint = false);
    let b = branch(spec("proj-noendpoint", "staging", "main"));
    assert!(!ensure(&b).await.unwrap().created);
    assert!(
        s.fake
            .branch("proj-noendpoint", "staging")
            .unwrap()
            .has_endpoint
    );
    // And the branch can now be connected to.
    b.connection_url().await.unwrap();
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn reset_restores_the_branch_from_its_parent_and_keeps_the_old_state_by_name() {
    let s = stand_in();
    s.fake.project("proj-reset");
    s.fake.existing_branch("proj-reset", "staging");
    let mut sp = spec("proj-reset", "staging", "main");
    sp.preserve_under_name = Some("staging-before-refresh".into());
    let status = branch(sp).reset_from_parent().await.unwrap();
    assert_eq!(status.state, BranchState::Ready);
    let staging = s.fake.branch("proj-reset", "staging").unwrap();
    assert_eq!(
        staging.data_of, "main",
        "the branch now holds its parent's data"
    );
    assert_eq!(staging.resets, 1);
    let kept = s
        .fake
        .branch("proj-reset", "staging-before-refresh")
        .unwrap();
    assert_eq!(
        kept.data_of, "staging-own",
        "the old state is kept for undo"
    );
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn rate_limits_server_errors_and_a_locked_project_are_waited_out() {
    let s = stand_in();
    s.fake.project("proj-locked");
    s.fake.existing_branch("proj-locked", "staging");
    s.fake.fault("proj-locked", 429, Some(0));
    s.fake.fault("proj-locked", 503, None);
    s.fake.fault_on("proj-locked", "POST", 423);
    let status = branch(spec("proj-locked", "staging", "main"))
        .reset_from_parent()
        .await
        .unwrap();
    assert_eq!(status.state, BranchState::Ready);
    let reqs = s.fake.requests("proj-locked");
    let restores = reqs.iter().filter(|r| r.ends_with("/restore")).count();
    assert_eq!(restores, 2, "the locked restore is sent again: {reqs:#?}");
    assert_eq!(
        s.fake.branch("proj-locked", "staging").unwrap().resets,
        1,
        "and done once"
    );
}

#[tokio::test]
async fn a_503_on_a_restore_is_sent_again_as_neon_documents_it_safe() {
    let s = stand_in();
    s.fake.project("proj-503");
    s.fake.existing_branch("proj-503", "staging");
    s.fake.fault_on("proj-503", "POST", 503);
    let status = branch(spec("proj-503", "staging", "main"))
        .reset_from_parent()
        .await
        .expect("the restore is retried after Neon's 503");
    assert_eq!(status.state, BranchState::Ready);
    let reqs = s.fake.requests("proj-503");
    let restores = reqs.iter().filter(|r| r.ends_with("/restore")).count();
    assert_eq!(restores, 2, "refused once, sent again: {reqs:#?}");
    assert_eq!(s.fake.branch("proj-503", "staging").unwrap().resets, 1);
}

#[tokio::test]
async fn a_failed_operation_is_reported_with_neons_error() {
    let s = stand_in();
    s.fake.project("proj-fail");
    s.fake.existing_branch("proj-fail", "staging");
    s.fake.with("proj-fail", |p| {
        p.next_op_fails = Some("timeline creation failed: disk quota exceeded".into())
    });
    let e = branch(spec("proj-fail", "staging", "main"))
        .reset_from_parent()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Failed { .. }), "{e:?}");
    let m = e.to_string();
    assert!(
        m.contains("disk quota exceeded") && m.contains("staging"),
        "{m}"
    );
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn the_connection_url_names_the_requested_branch_and_is_secret() {
    let s = stand_in();
    s.fake.project("proj-url");
    s.fake.existing_branch("proj-url", "staging");
    let b = branch(spec("proj-url", "staging", "main"));
    let url = b.connection_url().await.unwrap();
    assert!(
        url.expose_secret()
            .contains("@ep-br-staging-proj-url.us-east-2.aws.neon.tech/neondb"),
        "the URL is the branch's own"
    );
    assert!(!format!("{url:?}").contains("npg_canary_password_91f3"));
    assert!(!format!("{b:?}").contains(support::API_KEY));
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn a_connection_url_of_the_parent_is_caught() {
    let s = stand_in();
    s.fake.project("proj-parent-url");
    s.fake.existing_branch("proj-parent-url", "staging");
    s.fake.with("proj-parent-url", |p| p.uri_of_parent = true);
    let e = branch(spec("proj-parent-url", "staging", "main"))
        .connection_url()
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(m.contains("not one of the branch's endpoints"), "{m}");
    assert!(!m.contains("npg_canary_password_91f3"), "{m}");
}

#[tokio::test]
async fn a_refused_key_says_which_variable_to_check() {
    let s = stand_in();
    s.fake.project("proj-auth");
    let e = staging_provider_neon::NeonBuilder::new()
        .with_api_key("wrong-key-canary")
        .with_base_url(s.prism.url())
        .build(spec("proj-auth", "staging", "main"))
        .unwrap()
        .status()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");
    assert!(e.to_string().contains("NEON_API_KEY"));
    assert!(!e.to_string().contains("wrong-key-canary"));
}

#[test]
fn a_missing_key_fails_when_building() {
    let e = staging_provider_neon::NeonBuilder::new()
        .build(spec("p", "staging", "main"))
        .unwrap_err();
    assert!(e.to_string().contains("NEON_API_KEY"), "{e}");
}

#[tokio::test]
async fn a_branch_named_like_the_projects_default_branch_is_refused_before_any_write() {
    let s = stand_in();
    s.fake.project("proj-default");
    // The spec's parent is spelled apart, so only the platform can tell it is production's.
    let b = branch(spec("proj-default", "main", "prod"));
    let e = b.missing("database main").await.unwrap_err();
    assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
    assert!(e.to_string().contains("default branch"), "{e}");
    assert!(matches!(
        b.reset_from_parent().await.unwrap_err(),
        Error::PermissionDenied { .. }
    ));
    assert!(b.connection_url().await.is_err());
    assert!(
        !s.fake
            .requests("proj-default")
            .iter()
            .any(|r| r.starts_with("POST")),
        "nothing was written to production's branch"
    );
}

#[tokio::test]
async fn a_creation_target_issued_for_another_resource_is_refused() {
    let s = stand_in();
    s.fake.project("proj-target");
    let b = branch(spec("proj-target", "staging", "main"));
    let boundary = staging_core::boundary::unchecked_boundary_for_tests("staging");
    let mut other = b.missing("database main").await.unwrap().remove(0);
    other.name = "main".into();
    let target = boundary.creation(&other).unwrap();
    let e = b.create(&target).await.unwrap_err();
    assert_eq!(e.class(), staging_core::ErrorClass::Usage, "{e}");
    assert!(s.fake.branch("proj-target", "main").is_some());
    assert!(
        !s.fake
            .requests("proj-target")
            .iter()
            .any(|r| r.starts_with("POST")),
        "nothing was created"
    );
}

#[tokio::test]
async fn a_reset_of_a_missing_branch_is_refused_and_creates_nothing() {
    let s = stand_in();
    s.fake.project("proj-reset-missing");
    let e = branch(spec("proj-reset-missing", "staging", "main"))
        .reset_from_parent()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("`staging up` creates it"), "{e}");
    assert!(s.fake.branch("proj-reset-missing", "staging").is_none());
}

#[tokio::test]
async fn missing_lists_the_branch_then_nothing_once_it_exists() {
    let s = stand_in();
    s.fake.project("proj-missing");
    let b = branch(spec("proj-missing", "staging", "main"));
    let missing = b.missing("database main").await.unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].kind, staging_provider_neon::BRANCH_KIND);
    assert_eq!(missing[0].settings["endpoint"], "read_write");
    assert_eq!(missing[0].settings["parent"], "main");
    ensure(&b).await.unwrap();
    assert!(
        s.fake
            .branch("proj-missing", "staging")
            .unwrap()
            .has_endpoint
    );
    assert!(b.missing("database main").await.unwrap().is_empty());
    let posts = s
        .fake
        .requests("proj-missing")
        .iter()
        .filter(|r| r.starts_with("POST"))
        .count();
    ensure(&b).await.unwrap();
    let again = s
        .fake
        .requests("proj-missing")
        .iter()
        .filter(|r| r.starts_with("POST"))
        .count();
    assert_eq!(posts, again, "a second ensure writes nothing");
    s.prism.assert_no_violations();
}
