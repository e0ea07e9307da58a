//! Standing a Netlify staging environment up from the CLI (issue 21), against Netlify's own
//! API description (`prism proxy --errors`) in front of the provider crate's stateful fake:
//! `plan` lists the branch deploy to enable before `up` enables it, sets staging's variables
//! for that branch's context and deploys; a second `up` creates nothing; creation on a
//! protected environment without `allow_create` is refused before any request.

mod common;
#[path = "../../provider-netlify/tests/support/mod.rs"]
mod netlify;

use std::path::Path;

use common::{run_staging, text};

const COMMIT: &str = "3333333aaaaaaaabbbbbbbbccccccccddddddddd";

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    let url = netlify::stack().proxy.url.clone();
    run_staging(
        dir,
        args,
        &[
            ("NETLIFY_AUTH_TOKEN", "test-token-canary-3141"),
            ("NETLIFY_API_URL", url.as_str()),
        ],
    )
}

/// A site that deploys `main` (production) and `develop`, whose `staging` branch holds
/// `COMMIT`, and a spec whose `staging` environment is the `branch:staging` context of it,
/// with `create` on service `web` (`production_table` is added to production's table).
fn scene(create: &str, production_table: &str) -> (String, tempfile::TempDir) {
    let fake = &netlify::stack().fake;
    let (site, _) = fake.add_site("standup");
    fake.push(&site, "staging", COMMIT);
    fake.with_site(&site, |s| {
        s.allowed_branches = vec!["main".into(), "develop".into()]
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        format!(
            r#"[project]
name = "standup"

[environments.staging]
provider = "netlify"
promotes_to = "production"
deploy_timeout = "2m"
settings = {{ site_id = "{site}", context = "branch:staging", account_id = "acct-1" }}

[environments.production]
provider = "netlify"
protected = true
{production_table}
settings = {{ site_id = "{site}", context = "production", account_id = "acct-1" }}

[services.web]
create = {create}

[vars.API_URL]
value = "https://staging-api.example.com"
"#
        ),
    )
    .unwrap();
    (site, dir)
}

fn writes(site: &str) -> Vec<String> {
    netlify::stack()
        .fake
        .calls(site)
        .into_iter()
        .filter(|c| !c.starts_with("GET "))
        .collect()
}

#[test]
fn plan_lists_the_branch_deploy_then_up_enables_it_and_a_second_up_creates_nothing() {
    let (site, dir) = scene(r#"{ like = "production" }"#, "");
    let out = run(
        dir.path(),
        &["plan", "--env", "staging", "--commit", COMMIT, "--json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {all}"));
    let create = doc["create"].as_array().unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(create.len(), 1, "{doc}");
    assert_eq!(create[0]["kind"], "netlify branch deploy", "{doc}");
    assert_eq!(create[0]["name"], "staging", "{doc}");
    assert_eq!(create[0]["owner"], "service web", "{doc}");
    assert_eq!(
        create[0]["settings"]["allowed_branches"], "main, develop + staging",
        "{doc}"
    );
    assert!(writes(&site).is_empty(), "plan wrote: {:?}", writes(&site));
    let human = run(
        dir.path(),
        &["plan", "--env", "staging", "--commit", COMMIT],
    );
    assert!(
        text(&human).contains("create netlify branch deploy `staging` (service web"),
        "{}",
        text(&human)
    );

    let out = run(
        dir.path(),
        &["up", "--env", "staging", "--commit", COMMIT, "--json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let fake = &netlify::stack().fake;
    assert_eq!(
        fake.with_site(&site, |s| s.allowed_branches.clone()),
        ["main", "develop", "staging"]
    );
    // Staging's variable is set for the branch's own context, and the branch was built.
    let env = fake.with_site(&site, |s| s.env.clone());
    let api = env
        .iter()
        .find(|v| v["key"] == "API_URL")
        .unwrap_or_else(|| panic!("API_URL not set: {env:?}"));
    assert_eq!(
        api["values"],
        serde_json::json!([{ "context": "branch", "context_parameter": "staging",
            "value": "https://staging-api.example.com", "id": api["values"][0]["id"] }]),
        "{api}"
    );
    let calls = writes(&site);
    let patch = calls.iter().position(|c| c == "PATCH site").expect("PATCH");
    let env_write = calls
        .iter()
        .position(|c| c == "POST env")
        .expect("POST env");
    let build = calls
        .iter()
        .position(|c| c == "POST builds staging")
        .expect("a build of staging");
    assert!(patch < env_write && env_write < build, "{calls:?}");

    let out = run(
        dir.path(),
        &["up", "--env", "staging", "--commit", COMMIT, "--json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let provision = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "provision")
        .cloned()
        .unwrap_or_else(|| panic!("no provision step: {doc}"));
    assert!(
        provision.to_string().contains("nothing to create"),
        "{provision}"
    );
    assert_eq!(
        writes(&site).iter().filter(|c| *c == "PATCH site").count(),
        1,
        "{:?}",
        writes(&site)
    );
    let plan = run(
        dir.path(),
        &["plan", "--env", "staging", "--commit", COMMIT, "--json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(doc["create"], serde_json::json!([]), "{doc}");
}

#[test]
fn creation_on_a_protected_netlify_environment_without_allow_create_is_refused_before_any_request()
{
    // Direct `up` is allowed there, so what refuses is `create` without `allow_create`.
    let (site, dir) = scene("true", "allow_direct_up = true");
    for args in [
        &["up", "--env", "production", "--commit", COMMIT][..],
        &["plan", "--env", "production", "--commit", COMMIT][..],
    ] {
        let out = run(dir.path(), args);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        assert!(
            all.contains("allow_create = true") && all.contains("staging.toml:"),
            "{all}"
        );
    }
    assert!(
        netlify::stack().fake.calls(&site).is_empty(),
        "a request reached Netlify: {:?}",
        netlify::stack().fake.calls(&site)
    );
}

/// The variables `plan --json` says the deploy writes (add or change), by name.
fn planned_writes(doc: &serde_json::Value) -> std::collections::BTreeSet<String> {
    doc["services"]
        .as_array()
        .unwrap_or_else(|| panic!("no services: {doc}"))
        .iter()
        .flat_map(|s| s["vars"].as_array().cloned().unwrap_or_default())
        .filter(|v| v["action"] == "add" || v["action"] == "change")
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn plan_json_and_the_up_that_follows_agree_on_every_variable_and_creation() {
    let (site, dir) = scene(r#"{ like = "production" }"#, "");
    let fake = &netlify::stack().fake;
    let plan = run(
        dir.path(),
        &["plan", "--env", "staging", "--commit", COMMIT, "--json"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let doc: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let env_before = fake.with_site(&site, |s| s.env.clone());

    let up = run(
        dir.path(),
        &["up", "--env", "staging", "--commit", COMMIT, "--json"],
    );
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    let report: serde_json::Value = serde_json::from_slice(&up.stdout).unwrap();
    // The steps plan showed are the steps up ran, in order.
    let ran: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    let planned_steps: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(ran, planned_steps, "plan: {doc}\nup: {report}");
    // Every variable up wrote is one plan said it would add or change, and no other.
    let env_after = fake.with_site(&site, |s| s.env.clone());
    let written: std::collections::BTreeSet<String> = env_after
        .iter()
        .filter(|v| !env_before.contains(v))
        .map(|v| v["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        written,
        planned_writes(&doc),
        "plan: {doc}\nenv: {env_after:?}"
    );
    assert!(!written.is_empty(), "{doc}");
    // Every creation plan listed was made: planned again, nothing is left to create or
    // write.
    let again = run(
        dir.path(),
        &["plan", "--env", "staging", "--commit", COMMIT, "--json"],
    );
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(doc["create"].as_array().map(Vec::len), Some(1), "{doc}");
    assert_eq!(again["create"], serde_json::json!([]), "{again}");
    assert!(planned_writes(&again).is_empty(), "{again}");
}
