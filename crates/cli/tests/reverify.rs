//! Evidence a concurrent deploy cannot fake (issue 29), with the real `staging` binary
//! against the Render stand-in: a deploy of another commit made live while a run's probes
//! run fails the run at its `reverify` step, its record names the deploy it verified, and
//! the gate refuses the commit.

mod common;
#[path = "../../provider-render/tests/support/mod.rs"]
mod render;
#[path = "common/runs.rs"]
mod runs;

use common::text;
use render::{Kind, stand_in};
use runs::*;

#[test]
fn a_deploy_of_another_commit_during_smoke_fails_the_run_and_the_gate_refuses_the_commit() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-inject-staging", Kind::Worker);
    let prod = fake.add_service("lease-inject-production", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let a = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A, "--json"],
        &[],
    ));
    wait_for("A in smoke", || {
        dir.path().join(format!("in-smoke-{A}")).exists()
    });
    // Another deploy goes live (a dashboard click, a push's auto-deploy) while A's probes run.
    let injected = fake.add_live_deploy(&id, OTHER);
    std::fs::write(dir.path().join("go"), "").unwrap();
    let (code, out) = a.finish();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("another deploy replaced"), "{out}");
    assert!(out.contains(&injected), "names the deploy now live: {out}");
    assert!(out.contains(&OTHER[..12]), "names its commit: {out}");

    // The record says the run failed, and which deploy it had verified.
    let out = render_run(
        dir.path(),
        &["evidence", "list", "--env", "staging", "--json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{doc}");
    assert_eq!(runs[0]["ok"], false, "{doc}");
    assert_eq!(runs[0]["failed_step"], "reverify", "{doc}");
    let shown = render_run(
        dir.path(),
        &[
            "evidence",
            "show",
            runs[0]["id"].as_str().unwrap(),
            "--json",
        ],
    );
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let verified = shown["evidence"]["deploys"]["worker"]
        .as_str()
        .unwrap_or_else(|| panic!("no deploy ids recorded: {shown}"));
    assert!(
        verified.starts_with("dep-") && verified != injected,
        "the record names the deploy the run verified, not the one injected: {shown}"
    );

    let out = render_run(
        dir.path(),
        &["promote", "--to", "production", "--commit", A],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("REFUSED") && all.contains("reverify"), "{all}");
    let deploys: Vec<String> = fake
        .requests_for(&prod)
        .into_iter()
        .filter(|r| r.starts_with("POST "))
        .collect();
    assert_eq!(deploys, Vec::<String>::new(), "production was not touched");
}
