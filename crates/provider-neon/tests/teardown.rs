//! Deleting the Neon branch an instance created (issue 35), through `prism proxy --errors`
//! of Neon's published API description in front of the stateful fake: every request and
//! every answer is checked against the contract. Each test has a project of its own, whose
//! whole state the fake's `digest` gives.

mod support;

use staging_core::teardown::{
    Created, CreatedBy, DeletionTarget, Found, Judgement, judge, now_secs,
};
use staging_core::{DatabaseBranch, Error};
use staging_provider_neon::{BRANCH_KIND, ENDPOINT_KIND};
use support::{branch, ensure, spec, stand_in};

/// A ledger entry of the branch, as `up` records it (`id` once Neon answered).
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

fn found(id: &str, name: &str) -> Found {
    Found {
        id: id.to_owned(),
        name: name.to_owned(),
        created_at: Some(now_secs()),
        marked_ours: None,
    }
}

fn target(created: Created, found: Found) -> DeletionTarget {
    DeletionTarget::unchecked_for_tests(created, found)
}

#[tokio::test]
async fn a_branch_created_by_ensure_is_found_deleted_with_its_endpoint_and_the_project_is_as_before()
 {
    let s = stand_in();
    s.fake.project("td-roundtrip");
    s.fake.existing_branch("td-roundtrip", "staging");
    let before = s.fake.digest("td-roundtrip");
    let b = branch(spec("td-roundtrip", "pr-7", "main"));
    let created = b.missing("database main").await.unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].kind, BRANCH_KIND);
    let status = ensure(&b).await.unwrap();
    assert!(status.created);
    assert!(s.fake.branch("td-roundtrip", "pr-7").unwrap().has_endpoint);
    assert_ne!(s.fake.digest("td-roundtrip"), before);

    let mut recorded = Created::requested(&created[0], CreatedBy::Database("main".into()));
    recorded.id = Some(status.id.clone());
    let teardown = b.teardown().expect("Neon deletes the branches it creates");
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
    teardown
        .delete(&target(recorded.clone(), ours))
        .await
        .unwrap();

    assert_eq!(
        s.fake.digest("td-roundtrip"),
        before,
        "the project as before `up`"
    );
    assert_eq!(
        s.fake.deletes("td-roundtrip"),
        [format!(
            "DELETE /projects/td-roundtrip/branches/{}",
            status.id
        )]
    );
    // The deletion's operations were waited for.
    let requests = s.fake.requests("td-roundtrip");
    let after_delete = requests
        .iter()
        .skip_while(|r| !r.starts_with("DELETE"))
        .filter(|r| r.contains("/operations/"))
        .count();
    assert!(after_delete >= 2, "{requests:#?}");
    // Gone: found as nothing, judged gone, a second delete is a no-op.
    assert_eq!(teardown.find(&recorded).await.unwrap(), None);
    assert_eq!(judge(&recorded, None), Judgement::Gone);
    teardown
        .delete(&target(recorded, found(&status.id, "pr-7")))
        .await
        .unwrap();
    assert_eq!(s.fake.deletes("td-roundtrip").len(), 1);
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn a_creation_whose_answer_never_came_is_found_by_name_and_judged_by_neons_creation_time() {
    let s = stand_in();
    s.fake.project("td-byname");
    s.fake.existing_branch("td-byname", "pr-8");
    let b = branch(spec("td-byname", "pr-8", "main"));
    let teardown = b.teardown().unwrap();
    let interrupted = entry("pr-8", None);
    let f = teardown.find(&interrupted).await.unwrap().expect("by name");
    assert_eq!(f.id, "br-pr-8-td-byname");
    assert!(matches!(judge(&interrupted, Some(f)), Judgement::Ours(_)));

    // Made by hand hours before the request: not this instance's.
    s.fake.backdate("td-byname", "pr-8", 3 * 3600);
    let f = teardown.find(&interrupted).await.unwrap().expect("by name");
    assert!(matches!(
        judge(&interrupted, Some(f)),
        Judgement::Refused(_)
    ));
    assert!(s.fake.deletes("td-byname").is_empty());
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn the_default_branch_is_refused_by_find_and_delete_with_zero_delete_requests() {
    let s = stand_in();
    s.fake.project("td-default");
    // Forked from staging, so that `main` is refused as the default branch, not as the
    // parent.
    s.fake.existing_branch("td-default", "staging");
    let b = branch(spec("td-default", "pr-9", "staging"));
    let teardown = b.teardown().unwrap();
    // A ledger that names the default branch, by id or by name: find refuses to answer.
    for e in [
        entry("main", Some("br-main-td-default")),
        entry("main", None),
    ] {
        let err = teardown.find(&e).await.unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
        assert!(err.to_string().contains("default branch"), "{err}");
    }
    // A target that says anything at all about the default branch's id.
    let err = teardown
        .delete(&target(
            entry("pr-9", Some("br-main-td-default")),
            found("br-main-td-default", "pr-9"),
        ))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("default branch"),
        "Neon's own word on the branch decides: {err}"
    );
    assert!(s.fake.deletes("td-default").is_empty());
    assert!(s.fake.branch("td-default", "main").is_some());
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn the_parent_and_a_protected_branch_are_never_deleted() {
    let s = stand_in();
    s.fake.project("td-parent");
    s.fake.existing_branch("td-parent", "staging");
    s.fake.existing_branch("td-parent", "shared");
    s.fake.protect("td-parent", "shared");
    // An instance's branch forked from staging: staging is the parent.
    let b = branch(spec("td-parent", "pr-10", "staging"));
    let teardown = b.teardown().unwrap();
    let requests = s.fake.requests("td-parent").len();
    let err = teardown
        .delete(&target(
            entry("staging", Some("br-staging-td-parent")),
            found("br-staging-td-parent", "staging"),
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("parent"), "{err}");
    assert_eq!(
        s.fake.requests("td-parent").len(),
        requests,
        "the parent named by the target is refused before any request"
    );
    assert!(matches!(
        teardown
            .find(&entry("staging", Some("br-staging-td-parent")))
            .await,
        Err(Error::PermissionDenied { .. })
    ));
    let err = teardown
        .find(&entry("shared", Some("br-shared-td-parent")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("protected"), "{err}");
    let err = teardown
        .delete(&target(
            entry("shared", Some("br-shared-td-parent")),
            found("br-shared-td-parent", "shared"),
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("protected"), "{err}");
    assert!(s.fake.deletes("td-parent").is_empty());
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn a_404_on_the_delete_is_success() {
    let s = stand_in();
    s.fake.project("td-404");
    s.fake.existing_branch("td-404", "pr-11");
    let b = branch(spec("td-404", "pr-11", "main"));
    let teardown = b.teardown().unwrap();
    let e = entry("pr-11", Some("br-pr-11-td-404"));
    let f = teardown.find(&e).await.unwrap().unwrap();
    // Gone between the read and the delete (another `down`).
    s.fake.fault_on("td-404", "DELETE", 404);
    teardown.delete(&target(e, f)).await.unwrap();
    assert_eq!(s.fake.deletes("td-404").len(), 1);
    s.prism.assert_no_violations();
}

#[tokio::test]
async fn a_read_that_fails_is_an_error_and_an_endpoint_entry_is_refused() {
    let s = stand_in();
    s.fake.project("td-fail");
    s.fake.existing_branch("td-fail", "pr-12");
    let b = branch(spec("td-fail", "pr-12", "main"));
    let teardown = b.teardown().unwrap();
    s.fake.fault_on("td-fail", "GET", 401);
    let err = teardown.find(&entry("pr-12", None)).await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    s.fake.fault_on("td-fail", "GET", 401);
    assert!(
        teardown
            .find(&entry("pr-12", Some("br-pr-12-td-fail")))
            .await
            .is_err()
    );
    let requests = s.fake.requests("td-fail").len();
    let mut endpoint = entry("pr-12", Some("br-pr-12-td-fail"));
    endpoint.kind = ENDPOINT_KIND.to_owned();
    assert!(teardown.find(&endpoint).await.is_err());
    assert!(
        teardown
            .delete(&target(endpoint, found("br-pr-12-td-fail", "pr-12")))
            .await
            .is_err()
    );
    assert_eq!(s.fake.requests("td-fail").len(), requests);
    assert!(s.fake.branch("td-fail", "pr-12").is_some());
}
