//! The environment lease with the real `staging` binary (issue 29), against Render's own API
//! description (`prism proxy --errors`) in front of the team's stateful fake, and on local:
//! one run at a time changes an environment, the other waits (`--wait-lock`) or exits 3
//! naming the holder; read-only commands never take the lease; SIGKILL and `lock release
//! --force`.
//!
//! A run is held inside its smoke step by a command probe that waits for a file the test
//! creates (`go`), so "while A holds the lease" is a state the test sets up, not a race it
//! hopes to win.

mod common;
#[path = "../../provider-render/tests/support/mod.rs"]
mod render;
#[path = "common/runs.rs"]
mod runs;

use common::{staging_command, text};
use render::{Kind, stand_in};
use runs::*;

#[test]
fn two_ups_of_different_commits_started_together_on_render_one_runs_the_other_exits_3_naming_it() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-pair-staging", Kind::Worker);
    let prod = fake.add_service("lease-pair-production", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let a = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A],
        &[],
    ));
    let b = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", B],
        &[],
    ));
    // One of them takes the lease and waits in smoke; the other cannot take it.
    wait_for("a run in smoke, the other ended", || {
        (dir.path().join(format!("in-smoke-{A}")).exists()
            || dir.path().join(format!("in-smoke-{B}")).exists())
            && (a.text().contains("is busy") || b.text().contains("is busy"))
    });
    let (winner, winner_commit, loser, loser_commit) = if a.text().contains("is busy") {
        (b, B, a, A)
    } else {
        (a, A, b, B)
    };
    let (code, out) = loser.finish();
    assert_eq!(code, Some(3), "{out}");
    for part in [
        format!("`up` of commit {}", &winner_commit[..12]),
        format!("on host {}", staging_evidence::lease::this_host()),
        " since ".to_owned(),
        "run ".to_owned(),
        "--wait-lock".to_owned(),
    ] {
        assert!(out.contains(&part), "{part} missing: {out}");
    }
    // The loser wrote nothing: no request about the service carries its commit.
    assert_eq!(
        mentioning(&fake.requests_for(&id), loser_commit),
        Vec::<String>::new()
    );

    std::fs::write(dir.path().join("go"), "").unwrap();
    let (code, out) = winner.finish();
    assert_eq!(code, Some(0), "{out}");
    let deploys: Vec<String> = fake
        .requests_for(&id)
        .into_iter()
        .filter(|r| r.starts_with("POST ") && r.contains("/deploys"))
        .collect();
    assert_eq!(deploys.len(), 1, "{deploys:?}");
    assert!(deploys[0].contains(winner_commit), "{deploys:?}");
    // Released: the next run goes ahead at once.
    let out = render_run(
        dir.path(),
        &["lock", "status", "--env", "staging", "--json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["lease"], serde_json::Value::Null, "{doc}");
}

#[test]
fn with_wait_lock_two_ups_on_render_complete_in_turn_and_their_writes_never_interleave() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-turns-staging", Kind::Worker);
    let prod = fake.add_service("lease-turns-production", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let a = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A, "--wait-lock", "5m"],
        &[],
    ));
    wait_for("A in smoke", || {
        dir.path().join(format!("in-smoke-{A}")).exists()
    });
    let b = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", B, "--wait-lock", "5m"],
        &[],
    ));
    wait_for("B waiting for A's lease", || {
        b.text().contains("waiting up to 5m")
    });
    assert!(
        b.text().contains(&A[..12]),
        "B names the holder: {}",
        b.text()
    );
    // While A holds the environment, B has not written anything to it.
    assert_eq!(mentioning(&fake.requests_for(&id), B), Vec::<String>::new());
    let out = render_run(dir.path(), &["lock", "status", "--env", "staging"]);
    assert!(text(&out).contains(&A[..12]), "{}", text(&out));

    std::fs::write(dir.path().join("go"), "").unwrap();
    let (code, out) = a.finish();
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = b.finish();
    assert_eq!(code, Some(0), "{out}");

    // Each run's writes (its RELEASE variable, its deploy) form one block, A's before B's.
    let requests = fake.requests_for(&id);
    let (a_first, a_last) = span(&requests, A).expect("A wrote");
    let (b_first, b_last) = span(&requests, B).expect("B wrote");
    assert!(
        a_first <= a_last && a_last < b_first && b_first <= b_last,
        "{requests:#?}"
    );
    let writes: Vec<&String> = requests.iter().filter(|r| !r.starts_with("GET ")).collect();
    assert!(
        writes.len() >= 4,
        "variables and deploys of both: {writes:#?}"
    );
    assert_eq!(fake.live_commit(&id).as_deref(), Some(B));
}

#[test]
fn a_run_waiting_for_the_lease_stops_on_sigterm_without_taking_it() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-waitsig-staging", Kind::Worker);
    let prod = fake.add_service("lease-waitsig-production", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let a = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A],
        &[],
    ));
    wait_for("A in smoke", || {
        dir.path().join(format!("in-smoke-{A}")).exists()
    });
    let b = Bg::start(render_command(
        dir.path(),
        &[
            "up",
            "--env",
            "staging",
            "--commit",
            B,
            "--wait-lock",
            "10m",
        ],
        &[],
    ));
    wait_for("B waiting", || b.text().contains("waiting up to 10m"));
    b.signal(nix::sys::signal::Signal::SIGTERM);
    let (code, out) = b.finish();
    assert_eq!(code, Some(143), "{out}");
    assert_eq!(mentioning(&fake.requests_for(&id), B), Vec::<String>::new());
    // A still holds it, untouched.
    let out = render_run(
        dir.path(),
        &["lock", "status", "--env", "staging", "--json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["lease"]["commit"], A, "{doc}");
    std::fs::write(dir.path().join("go"), "").unwrap();
    let (code, out) = a.finish();
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn lease_options_that_are_no_durations_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), "srv-none", "srv-none2", "");
    for args in [
        vec![
            "up",
            "--env",
            "staging",
            "--commit",
            A,
            "--wait-lock",
            "5 minutes please",
        ],
        vec![
            "up",
            "--env",
            "staging",
            "--commit",
            A,
            "--lease-ttl",
            "-1s",
        ],
        vec!["up", "--env", "staging", "--commit", A, "--lease-ttl", "0s"],
    ] {
        let out = render_run(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
}

#[test]
fn plan_status_diff_and_logs_run_while_another_run_holds_the_lease() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-readers-staging", Kind::Worker);
    let prod = fake.add_service("lease-readers-production", Kind::Worker);
    fake.add_live_deploy(&prod, OTHER);
    fake.set_logs(&id, &["hello from the worker"]);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let a = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A],
        &[],
    ));
    wait_for("A in smoke", || {
        dir.path().join(format!("in-smoke-{A}")).exists()
    });
    for args in [
        vec!["plan", "--env", "staging", "--commit", B],
        vec!["status", "--env", "staging"],
        vec!["diff", "staging", "production"],
        vec!["logs", "--env", "staging", "--service", "worker"],
        vec!["lock", "status", "--env", "staging"],
    ] {
        let out = render_run(dir.path(), &args);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {all}");
        assert!(!all.contains("is busy"), "{args:?}: {all}");
    }
    // Every command that changes the environment, though, is refused at once, naming A.
    for args in [
        vec!["up", "--env", "staging", "--commit", B],
        vec!["secrets", "sync", "--env", "staging", "--apply"],
        vec!["secrets", "rotate", "RELEASE", "--env", "staging"],
        vec!["migrate", "apply", "--env", "staging"],
        vec!["migrate", "reset", "--env", "staging"],
        vec!["rollback", "--env", "staging"],
    ] {
        let out = render_run(dir.path(), &args);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {all}");
        assert!(
            all.contains("is busy") && all.contains(&A[..12]),
            "{args:?}: {all}"
        );
    }
    // With --json, the envelope names the kind.
    let out = render_run(
        dir.path(),
        &["up", "--env", "staging", "--commit", B, "--json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "locked", "{doc}");
    // Their dry runs only read: they go ahead.
    for args in [
        vec!["secrets", "sync", "--env", "staging"],
        vec!["migrate", "apply", "--env", "staging", "--dry-run"],
    ] {
        let out = render_run(dir.path(), &args);
        assert!(!text(&out).contains("is busy"), "{args:?}: {}", text(&out));
    }
    std::fs::write(dir.path().join("go"), "").unwrap();
    let (code, out) = a.finish();
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn two_ups_started_together_on_local_one_runs_the_other_exits_3_naming_it() {
    let dir = local_workspace("");
    let a = Bg::start(staging_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A],
        &[],
    ));
    let b = Bg::start(staging_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", B],
        &[],
    ));
    wait_for("one run busy", || {
        a.text().contains("is busy") || b.text().contains("is busy")
    });
    let (winner, winner_commit, loser) = if a.text().contains("is busy") {
        (b, B, a)
    } else {
        (a, A, b)
    };
    let (code, out) = loser.finish();
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains(&format!("`up` of commit {}", &winner_commit[..12])),
        "{out}"
    );
    std::fs::write(dir.path().join("go"), "").unwrap();
    let (code, out) = winner.finish();
    assert_eq!(code, Some(0), "{out}");
    // Only the winner's run is on record.
    let out = staging_command(
        dir.path(),
        &["evidence", "list", "--env", "staging", "--json"],
        &[],
    )
    .output()
    .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{doc}");
    assert_eq!(runs[0]["commit"], winner_commit, "{doc}");
    assert_eq!(runs[0]["ok"], true, "{doc}");
}

#[test]
fn on_the_directory_store_a_holder_killed_by_sigkill_is_taken_over_at_once() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-dirkill-staging", Kind::Worker);
    let prod = fake.add_service("lease-dirkill-production", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let killed = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A],
        &[],
    ));
    wait_for("A in smoke", || {
        dir.path().join(format!("in-smoke-{A}")).exists()
    });
    killed.signal(nix::sys::signal::Signal::SIGKILL);
    let (code, _) = killed.finish();
    assert_eq!(code, None);
    // Its process is gone from this host: the lock is stale at once, an hour of TTL or not.
    let out = render_run(dir.path(), &["lock", "status", "--env", "staging"]);
    assert!(text(&out).contains("stale"), "{}", text(&out));
    std::fs::write(dir.path().join("go"), "").unwrap();
    let out = render_run(dir.path(), &["up", "--env", "staging", "--commit", B]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn lock_release_force_frees_the_environment_records_it_and_the_holder_stops() {
    let fake = &stand_in().fake;
    let id = fake.add_service("lease-force-staging", Kind::Worker);
    let prod = fake.add_service("lease-force-production", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    render_spec(dir.path(), &id, &prod, "");
    let held = Bg::start(render_command(
        dir.path(),
        &["up", "--env", "staging", "--commit", A, "--lease-ttl", "2s"],
        &[],
    ));
    wait_for("A in smoke", || {
        dir.path().join(format!("in-smoke-{A}")).exists()
    });
    let out = render_run(dir.path(), &["lock", "release", "--env", "staging"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "without --force: {}",
        text(&out)
    );
    let out = render_run(
        dir.path(),
        &["lock", "release", "--force", "--env", "staging"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(&A[..12]), "{}", text(&out));
    // The holder finds out at its next renewal and stops: exit 3, nothing recorded as passed.
    let (code, out) = held.finish();
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("no longer this run's"), "{out}");
    let out = render_run(
        dir.path(),
        &["evidence", "list", "--env", "staging", "--json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "only the forced release is on record: {doc}");
    assert_eq!(runs[0]["failed_step"], "lock", "{doc}");
    assert_eq!(runs[0]["commit"], A, "{doc}");
}
