//! Commit identity (issue 13, event 5): `--commit` names one commit by its full id. A short
//! id or a ref is resolved through git in the spec's checkout (refused when git cannot
//! resolve it, or finds it ambiguous); the gate compares full ids, so `release-1` on staging
//! does not let `release-10` through, nor `abcdef1` let `abcdef1fff…` through.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

mod common;
use common::SERVER;

const SPEC: &str = r#"[project]
name = "commits"

[environments.staging]
provider = "local"
promotes_to = "production"
deploy_timeout = "60s"

[environments.production]
provider = "local"
protected = true
deploy_timeout = "60s"

[services.web]
health_path = "/up"
settings = { command = ["python3", "server.py"], stop_timeout = "2s" }

[[probes]]
name = "health"
http = { url = "${services.web.url}/up", expect = { json = { "$.commit" = "${commit}" } } }
"#;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A checkout holding the spec, with two commits tagged `release-1` and `release-10`.
fn checkout() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("staging.toml"), SPEC).unwrap();
    std::fs::write(d.join("server.py"), SERVER).unwrap();
    git(d, &["init", "-q"]);
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "one"]);
    git(d, &["tag", "release-1"]);
    let first = git(d, &["rev-parse", "HEAD"]);
    git(d, &["commit", "-q", "--allow-empty", "-m", "two"]);
    git(d, &["tag", "release-10"]);
    let second = git(d, &["rev-parse", "HEAD"]);
    (dir, first, second)
}

fn staging(dir: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("staging")
        .unwrap()
        .args(args)
        .arg("-f")
        .arg(dir.join("staging.toml"))
        .env_remove("STAGING_ENV")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn recorded_commits(dir: &Path) -> Vec<String> {
    let out = staging(dir, &["evidence", "list", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["commit"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_tag_on_staging_does_not_let_a_tag_it_prefixes_through_the_gate() {
    let (dir, first, second) = checkout();
    let dir = dir.path();
    let out = staging(dir, &["up", "--env", "staging", "--commit", "release-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The run is recorded under the full id the tag names, not under the tag.
    assert_eq!(recorded_commits(dir), std::slice::from_ref(&first));

    let out = staging(
        dir,
        &["promote", "--to", "production", "--commit", "release-10"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "release-10 passed the gate on release-1's evidence: {}",
        text(&out)
    );
    assert!(text(&out).contains(&second), "{}", text(&out));

    // The short id of the commit that ran resolves to it, and passes.
    let out = staging(
        dir,
        &["promote", "--to", "production", "--commit", &first[..7]],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_commit_that_only_shares_a_prefix_with_the_one_that_ran_is_refused() {
    let (dir, first, _) = checkout();
    let dir = dir.path();
    let out = staging(dir, &["up", "--env", "staging", "--commit", &first]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Another full id that begins with the same seven digits.
    let other = format!("{}{}", &first[..7], "f".repeat(33));
    assert_ne!(other, first);
    let out = staging(dir, &["promote", "--to", "production", "--commit", &other]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("other commits"), "{}", text(&out));
}

#[test]
fn a_ref_git_cannot_resolve_is_refused_with_exit_2_before_anything_runs() {
    let (dir, _, _) = checkout();
    let dir = dir.path();
    for given in ["release-2", "deadbee", "no such ref"] {
        let out = staging(dir, &["up", "--env", "staging", "--commit", given]);
        assert_eq!(out.status.code(), Some(2), "{given}: {}", text(&out));
        assert!(
            !dir.join(".staging/evidence").exists(),
            "{given}: a run started"
        );
        let out = staging(dir, &["promote", "--to", "production", "--commit", given]);
        assert_eq!(out.status.code(), Some(2), "{given}: {}", text(&out));
    }
}

#[test]
fn a_short_id_outside_a_checkout_is_refused_asking_for_the_full_id() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("staging.toml"), SPEC).unwrap();
    let out = staging(
        dir,
        &["promote", "--to", "production", "--commit", "abcdef1"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("full 40-character SHA"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_ambiguous_short_id_is_refused_naming_the_candidates() {
    let (dir, _, _) = checkout();
    let dir = dir.path();
    // Commits until two share their first four hex digits (deterministic: fixed dates).
    let mut seen = std::collections::BTreeMap::new();
    let prefix = (0..2000)
        .find_map(|i| {
            git(
                dir,
                &["commit", "-q", "--allow-empty", "-m", &format!("c{i}")],
            );
            let id = git(dir, &["rev-parse", "HEAD"]);
            seen.insert(id[..4].to_owned(), id.clone())
                .map(|_| id[..4].to_owned())
        })
        .expect("two commits sharing a 4-digit prefix");
    let out = staging(dir, &["promote", "--to", "production", "--commit", &prefix]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("ambiguous"), "{}", text(&out));
    assert!(text(&out).contains("it begins"), "{}", text(&out));
}
