//! Deleting the Supabase branch an instance created (issue 35), through the checking proxy
//! and `prism proxy --errors` of the Management API's published description in front of the
//! stateful fake. Each test has a parent project of its own, whose branches the fake's
//! `digest` gives whole.

mod support;

use staging_core::teardown::{
    Created, CreatedBy, DeletionTarget, Found, Judgement, judge, now_secs,
};
use staging_core::{DatabaseBranch, Error};
use staging_provider_supabase::BRANCH_KIND;
use support::fake::parent;
use support::{branch, ensure, spec, stand_in};

fn entry(name: &str, id: Option<&str>) -> Created {
    Created {
        kind: BRANCH_KIND.to_owned(),
        name: name.to_owned(),
        owner: "database main".to_owned(),
        namespace: None,
        by: CreatedBy::Database("main".to_owned()),
        id: id.map(str::to_owned),
        requested_at: now_secs(),
        deleted_at: None,
    }
}

fn target(created: Created, id: &str, name: &str) -> DeletionTarget {
    DeletionTarget::unchecked_for_tests(
        created,
        Found {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at: Some(now_secs()),
            marked_ours: None,
        },
    )
}

fn deletes_of(branch_ref: &str) -> usize {
    stand_in()
        .fake
        .deletes()
        .iter()
        .filter(|d| d.ends_with(branch_ref))
        .count()
}

#[tokio::test]
async fn a_branch_created_by_ensure_is_found_deleted_and_the_project_is_as_before() {
    let s = stand_in();
    let p = parent("tdround");
    s.fake.existing_branch(&p, "staging");
    let before = s.fake.digest(&p);
    let b = branch(spec(&p, "pr-7"));
    let creations = b.missing("database main").await.unwrap();
    assert_eq!(creations[0].kind, BRANCH_KIND);
    let status = ensure(&b).await.unwrap();
    assert!(status.created);
    assert_ne!(s.fake.digest(&p), before);

    let mut recorded = Created::requested(&creations[0], CreatedBy::Database("main".into()));
    recorded.id = Some(status.id.clone());
    let teardown = b
        .teardown()
        .expect("Supabase deletes the branches it creates");
    let there = teardown.find(&recorded).await.unwrap().expect("there");
    assert_eq!(there.id, status.id);
    assert!(
        there
            .created_at
            .is_some_and(|at| at.abs_diff(recorded.requested_at) < 60),
        "{there:?}"
    );
    let Judgement::Ours(ours) = judge(&recorded, Some(there)) else {
        panic!("the branch ensure created is the one recorded");
    };
    let branch_ref = s.fake.branch(&p, "pr-7").unwrap().project_ref;
    teardown
        .delete(&DeletionTarget::unchecked_for_tests(recorded.clone(), ours))
        .await
        .unwrap();
    assert_eq!(s.fake.digest(&p), before, "the project as before `up`");
    assert_eq!(
        s.fake
            .deletes()
            .iter()
            .filter(|d| d.ends_with(&branch_ref))
            .collect::<Vec<_>>(),
        [&format!("DELETE /v1/branches/{branch_ref}")],
        "deleted by the branch's own project ref"
    );
    // Gone: found as nothing; a second delete sends nothing and is success.
    assert_eq!(teardown.find(&recorded).await.unwrap(), None);
    teardown
        .delete(&target(recorded, &status.id, "pr-7"))
        .await
        .unwrap();
    assert_eq!(deletes_of(&branch_ref), 1);
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn a_creation_whose_answer_never_came_is_found_by_name_and_judged_by_its_creation_time() {
    let s = stand_in();
    let p = parent("tdbyname");
    let recent = s.fake.preview_branch(&p, "pr-8", 30);
    let b = branch(spec(&p, "pr-8"));
    let teardown = b.teardown().unwrap();
    let interrupted = entry("pr-8", None);
    let f = teardown.find(&interrupted).await.unwrap().expect("by name");
    assert_eq!(f.id, recent);
    assert!(matches!(judge(&interrupted, Some(f)), Judgement::Ours(_)));

    let p = parent("tdold");
    s.fake.preview_branch(&p, "pr-8", 5 * 3600);
    let old = branch(spec(&p, "pr-8"));
    let f = old
        .teardown()
        .unwrap()
        .find(&interrupted)
        .await
        .unwrap()
        .expect("by name");
    assert!(
        matches!(judge(&interrupted, Some(f)), Judgement::Refused(_)),
        "made hours before the request: not this instance's"
    );
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn the_default_and_a_persistent_branch_are_refused_with_zero_delete_requests() {
    let s = stand_in();
    let p = parent("tddefault");
    // What Supabase lists as the project's default branch: the project itself.
    s.fake.existing_branch(&p, "main");
    let main_id = {
        let mut st = s.fake.state();
        let b = st.branches.last_mut().unwrap();
        b.project_ref = p.clone();
        b.persistent = false;
        b.id.clone()
    };
    // A long-lived branch someone keeps.
    s.fake.existing_branch(&p, "qa");
    let qa = s.fake.branch(&p, "qa").unwrap();
    let b = branch(spec(&p, "pr-9"));
    let teardown = b.teardown().unwrap();
    for e in [entry("main", Some(&main_id)), entry("main", None)] {
        let err = teardown.find(&e).await.unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
        assert!(err.to_string().contains("default branch"), "{err}");
    }
    let err = teardown.find(&entry("qa", Some(&qa.id))).await.unwrap_err();
    assert!(err.to_string().contains("persistent"), "{err}");
    // Targets that name them, whatever else they say.
    for (id, said) in [
        (main_id.as_str(), "pr-9"),
        (qa.id.as_str(), "qa"),
        (p.as_str(), "pr-9"),
    ] {
        let err = teardown
            .delete(&target(entry("pr-9", Some(id)), id, said))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::PermissionDenied { .. }),
            "{id}: {err:?}"
        );
    }
    assert_eq!(
        deletes_of(&p) + deletes_of(&qa.project_ref),
        0,
        "zero DELETE requests"
    );
    assert!(s.fake.branch(&p, "main").is_some() && s.fake.branch(&p, "qa").is_some());
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn a_404_on_the_delete_is_success() {
    let s = stand_in();
    let p = parent("tdnotfound");
    let id = s.fake.preview_branch(&p, "pr-11", 0);
    let branch_ref = s.fake.branch(&p, "pr-11").unwrap().project_ref;
    let b = branch(spec(&p, "pr-11"));
    let teardown = b.teardown().unwrap();
    let e = entry("pr-11", Some(&id));
    let f = teardown.find(&e).await.unwrap().unwrap();
    // Another `down` deletes it between the read and the DELETE: Supabase answers 404.
    s.fake.state().gone_before_next_delete = true;
    teardown
        .delete(&DeletionTarget::unchecked_for_tests(e, f))
        .await
        .unwrap();
    assert_eq!(deletes_of(&branch_ref), 1);
    assert!(s.fake.branch(&p, "pr-11").is_none());
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn a_read_that_fails_is_an_error_and_another_kind_is_refused() {
    let s = stand_in();
    let p = parent("tdfail");
    let id = s.fake.preview_branch(&p, "pr-12", 0);
    let b = branch(spec(&p, "pr-12"));
    let teardown = b.teardown().unwrap();
    let unauthorized = support::builder()
        .with_token("sbp_wrong_token")
        .build(spec(&p, "pr-12"))
        .unwrap();
    let err = unauthorized
        .teardown()
        .unwrap()
        .find(&entry("pr-12", Some(&id)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    let mut other = entry("pr-12", Some(&id));
    other.kind = "supabase edge function".to_owned();
    assert!(teardown.find(&other).await.is_err());
    assert!(teardown.delete(&target(other, &id, "pr-12")).await.is_err());
    assert!(s.fake.branch(&p, "pr-12").is_some());
}
