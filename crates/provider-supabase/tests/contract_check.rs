//! The in-process contract check in front of Prism (`staging_test_support::Checked`) catches a
//! malformed body and validates well-formed ones: Prism skips the Management API's schemas it
//! cannot compile (the action-run answers among them) without a word.

mod support;

use serde_json::json;
use support::{TOKEN, stand_in};

#[tokio::test]
async fn a_malformed_branch_body_is_caught_in_process_and_well_formed_answers_are_validated() {
    let base = stand_in().prism.url();
    let client = reqwest::Client::new();
    let _ = client
        .post(format!("{base}/v1/projects/abcdefghijklmnopqrst/branches"))
        .bearer_auth(TOKEN)
        .json(&json!({ "branch_name": 5, "git_branch": ["x"], "persistent": "yes" }))
        .send()
        .await
        .expect("the request goes through");
    let caught = stand_in().prism.checker.violations();
    assert!(
        caught
            .iter()
            .any(|v| v.contains("POST /v1/projects/{ref}/branches (request)")),
        "not caught: {caught:?}"
    );
    let parent = support::fake::parent("checked");
    stand_in().fake.existing_branch(&parent, "staging");
    let read = client
        .get(format!("{base}/v1/projects/{parent}/branches"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("the read goes through");
    assert!(read.status().is_success(), "{}", read.status());
    let share = stand_in().prism.checker.share();
    assert!(
        share.validated >= 1,
        "the branch list was not validated: {share:?}"
    );
}

#[tokio::test]
async fn a_502_on_a_branch_read_is_sent_again_within_the_bound() {
    use staging_core::DatabaseBranch;
    let parent = support::fake::parent("gateway");
    stand_in().fake.existing_branch(&parent, "staging");
    let branch = support::branch(support::spec(&parent, "staging"));
    let before = stand_in().fake.state().lists;
    stand_in().fake.state().bad_gateway_next = 1;
    branch
        .status()
        .await
        .expect("the read is sent again past the 502");
    let s = stand_in().fake.state();
    assert_eq!(s.bad_gateway_next, 0, "the 502 was not reached");
    assert!(
        s.lists - before >= 2,
        "not sent again: {} lists",
        s.lists - before
    );
}
