//! The in-process contract check catches what Prism skips: Prism cannot compile the schemas
//! of `vercel-openapi.json` that cover every body a Vercel run exchanges and lets them
//! through unchecked; the checking proxy in front of it (`support::Checked`) validates each
//! body again and reports a malformed one.

mod support;

use serde_json::json;
use support::{TOKEN, stand_in};

#[tokio::test]
async fn a_malformed_env_body_that_prism_lets_through_is_caught_in_process() {
    let _guard = support::lock().await;
    let project = support::reset(false).await;
    let answer = reqwest::Client::new()
        .post(format!("{}/v10/projects/{project}/env", stand_in().prism.url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "key": 5, "value": ["not", "a", "string"], "type": "bogus", "target": "production" }))
        .send()
        .await
        .expect("the request goes through");
    let caught = stand_in().prism.checker.violations();
    assert!(
        caught
            .iter()
            .any(|v| v.contains("POST /v10/projects/{idOrName}/env (request)")),
        "not caught (answer {}): {caught:?}",
        answer.status()
    );
    // A well-formed exchange is validated, not skipped: the project read's answer.
    let read = reqwest::Client::new()
        .get(format!("{}/v9/projects/{project}", stand_in().prism.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("the read goes through");
    assert!(read.status().is_success(), "{}", read.status());
    let share = stand_in().prism.checker.share();
    assert!(share.validated >= 1, "{share:?}");
}
