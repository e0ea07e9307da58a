//! Supabase branches through `prism proxy --errors` of the Management API's published
//! description in front of a stateful fake.

mod support;

use secrecy::ExposeSecret;
use staging_core::{BranchState, DatabaseBranch, Error, SecretStore};
use support::fake::{ANON_KEY, DB_PASS, SERVICE_KEY, parent};
use support::{branch, builder, ensure, spec, stand_in};

#[tokio::test]
async fn a_missing_branch_is_created_and_waited_for_until_ready() {
    let s = stand_in();
    let b = branch(spec(&parent("create"), "staging"));
    let st = ensure(&b).await.unwrap();
    assert!(st.created);
    assert_eq!(st.state, BranchState::Ready);
    assert!(s.fake.branch(&parent("create"), "staging").is_some());
    // Found, not created again.
    let again = ensure(&b).await.unwrap();
    assert!(!again.created);
    assert_eq!(
        s.fake
            .state()
            .branches
            .iter()
            .filter(|b| b.parent_ref == parent("create"))
            .count(),
        1
    );
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn reset_waits_for_the_action_run_to_finish() {
    let s = stand_in();
    s.fake.existing_branch(&parent("reset"), "staging");
    let st = branch(spec(&parent("reset"), "staging"))
        .reset_from_parent()
        .await
        .unwrap();
    assert_eq!(st.state, BranchState::Ready);
    assert_eq!(
        s.fake.branch(&parent("reset"), "staging").unwrap().resets,
        1
    );
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn a_failed_action_run_is_reported_with_its_log() {
    let s = stand_in();
    s.fake.existing_branch(&parent("fail"), "staging");
    s.fake.state().fail_next_run.insert(
        parent("fail"),
        "applying migration 20260101_users.sql\nERROR: relation \"users\" already exists".into(),
    );
    let e = branch(spec(&parent("fail"), "staging"))
        .reset_from_parent()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Failed { .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("relation \"users\" already exists"), "{m}");
    assert!(m.contains("migrate"), "{m}");
}

#[tokio::test]
async fn the_database_url_and_keys_are_secret_sources_of_the_branch() {
    let s = stand_in();
    s.fake.existing_branch(&parent("keys"), "staging");
    let own = s
        .fake
        .branch(&parent("keys"), "staging")
        .unwrap()
        .project_ref;
    let store = staging_provider_supabase::SupabaseSecrets::new(std::sync::Arc::new(branch(spec(
        &parent("keys"),
        "staging",
    ))));
    let url = store.get("database_url").await.unwrap().unwrap();
    assert!(
        url.expose_secret()
            .contains(&format!("@db.{own}.supabase.co:5432/postgres"))
    );
    let anon = store.get("anon_key").await.unwrap().unwrap();
    assert_eq!(anon.expose_secret(), format!("{ANON_KEY}-{own}"));
    let service = store.get("service_role_key").await.unwrap().unwrap();
    assert_eq!(service.expose_secret(), format!("{SERVICE_KEY}-{own}"));
    for shown in [
        format!("{url:?}"),
        format!("{anon:?}"),
        format!("{store:?}"),
    ] {
        assert!(
            !shown.contains(DB_PASS)
                && !shown.contains(ANON_KEY)
                && !shown.contains(support::TOKEN),
            "{shown}"
        );
    }
    assert_eq!(
        store.list(None).await.unwrap(),
        ["database_url", "anon_key", "service_role_key"]
    );
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn a_database_url_of_the_parent_is_caught() {
    let s = stand_in();
    s.fake.existing_branch(&parent("wrong"), "staging");
    s.fake.state().config_of_parent.push(parent("wrong"));
    let e = branch(spec(&parent("wrong"), "staging"))
        .connection_url()
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(m.contains("parent's database"), "{m}");
    assert!(!m.contains(DB_PASS));
}

#[tokio::test]
async fn every_request_carries_the_bearer_token_and_a_wrong_one_is_refused() {
    let s = stand_in();
    let before = s.fake.state().unauthorized;
    branch(spec(&parent("auth"), "staging")).status().await.ok();
    assert_eq!(s.fake.state().unauthorized, before, "our token was sent");
    let e = builder()
        .with_token("wrong-token-canary")
        .build(spec(&parent("auth"), "staging"))
        .unwrap()
        .status()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");
    assert!(e.to_string().contains("SUPABASE_ACCESS_TOKEN"));
    assert!(!e.to_string().contains("wrong-token-canary"));
}

#[tokio::test]
async fn the_projects_own_branch_is_refused_before_any_write() {
    let s = stand_in();
    let p = parent("default");
    // What Supabase lists as the project's default branch: the project itself.
    s.fake.existing_branch(&p, "main");
    s.fake.state().branches.last_mut().unwrap().project_ref = p.clone();
    let b = branch(spec(&p, "main"));
    let e = b.missing("database main").await.unwrap_err();
    assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
    assert!(e.to_string().contains("default branch"), "{e}");
    assert!(matches!(
        b.reset_from_parent().await.unwrap_err(),
        Error::PermissionDenied { .. }
    ));
    assert_eq!(s.fake.branch(&p, "main").unwrap().resets, 0);
    let of_p = s
        .fake
        .state()
        .branches
        .iter()
        .filter(|b| b.parent_ref == p)
        .count();
    assert_eq!(of_p, 1, "nothing created");
}

#[tokio::test]
async fn a_reset_of_a_missing_branch_is_refused_and_creates_nothing() {
    let s = stand_in();
    let p = parent("resetmissing");
    let e = branch(spec(&p, "staging"))
        .reset_from_parent()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("`staging up` creates it"), "{e}");
    assert!(s.fake.branch(&p, "staging").is_none());
}
