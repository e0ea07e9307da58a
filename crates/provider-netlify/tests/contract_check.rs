//! The in-process contract check in front of Prism (`staging_test_support::Checked`) catches a
//! malformed body (here a build hook whose `branch` is not a string) and validates
//! well-formed answers: Prism skips the schemas its validator cannot compile without a word.

mod support;

use serde_json::json;

#[tokio::test]
async fn a_malformed_build_hook_body_is_caught_in_process_and_well_formed_answers_are_validated() {
    let stack = support::stack();
    let (site, _) = stack.fake.add_site("checked");
    let client = reqwest::Client::new();
    let _ = client
        .post(format!("{}/sites/{site}/build_hooks", stack.proxy.url))
        .bearer_auth("test-token-canary-3141")
        .json(&json!({ "title": ["not", "a", "string"], "branch": 7 }))
        .send()
        .await
        .expect("the request goes through");
    let caught = stack.proxy.checker().violations();
    assert!(
        caught
            .iter()
            .any(|v| v.contains("POST /sites/{site_id}/build_hooks (request)")),
        "not caught: {caught:?}"
    );
    let read = client
        .get(format!("{}/sites/{site}", stack.proxy.url))
        .bearer_auth("test-token-canary-3141")
        .send()
        .await
        .expect("the read goes through");
    assert!(read.status().is_success(), "{}", read.status());
    let share = stack.proxy.checker().share();
    assert!(
        share.validated >= 1,
        "the site was not validated: {share:?}"
    );
}
