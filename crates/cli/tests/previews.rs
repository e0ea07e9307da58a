//! Instances of an ephemeral environment on the local provider, through the real binary:
//! what needs an instance, where an instance's records go, `list`, `down` without a ledger,
//! `down` twice, and `gc` of expired instances only.

mod common;

use std::path::Path;

use common::{SERVER, run_staging, text};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn spec(ttl: &str) -> String {
    format!(
        r#"[project]
name = "previews"

[environments.staging]
provider = "local"
promotes_to = "production"
deploy_timeout = "60s"

[environments.production]
provider = "local"
protected = true
deploy_timeout = "60s"

[environments.preview]
ephemeral = true
like = "staging"
ttl = "{ttl}"
deploy_timeout = "60s"

[services.web]
health_path = "/up"
settings = {{ command = ["python3", "server.py"], stop_timeout = "2s" }}

[vars.GREETING]
values = {{ staging = "hello staging", production = "hello", preview = "hello ${{instance}}" }}

[[probes]]
name = "health"
http = {{ url = "${{services.web.url}}/up", expect = {{ json = {{ "$.commit" = "${{commit}}" }} }} }}
"#
    )
}

fn workspace(ttl: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), spec(ttl)).unwrap();
    std::fs::write(dir.path().join("server.py"), SERVER).unwrap();
    dir
}

fn staging(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = run_staging(dir, args, &[]);
    (out.status.code(), text(&out))
}

fn up(dir: &Path, instance: &str) -> (Option<i32>, String) {
    staging(
        dir,
        &[
            "up",
            "--env",
            "preview",
            "--instance",
            instance,
            "--commit",
            COMMIT,
        ],
    )
}

fn list(dir: &Path, all: bool) -> serde_json::Value {
    let mut args = vec!["list", "--json"];
    if all {
        args.push("--all");
    }
    let (code, out) = staging(dir, &args);
    assert_eq!(code, Some(0), "{out}");
    let start = out.find('{').unwrap();
    serde_json::Deserializer::from_str(&out[start..])
        .into_iter::<serde_json::Value>()
        .next()
        .unwrap()
        .unwrap()
}

/// `staging --json ARGS`: one document, valid against `docs/json-output.schema.json`.
fn json(dir: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/json-output.schema.json"),
    )
    .unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run_staging(dir, &all, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let doc: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no single JSON document ({e}): {stdout}"));
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{doc:#}");
    (out.status.code(), doc)
}

fn instances(doc: &serde_json::Value) -> Vec<String> {
    doc["result"]["instances"]
        .as_array()
        .or_else(|| doc["instances"].as_array())
        .unwrap_or_else(|| panic!("no instances in {doc}"))
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["environment"].as_str().unwrap(),
                i["instance"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn an_ephemeral_environment_runs_only_through_an_instance_and_a_long_lived_one_never_through_one() {
    let dir = workspace("72h");
    let (code, out) = staging(dir.path(), &["up", "--env", "preview", "--commit", COMMIT]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("is ephemeral: name the instance"), "{out}");
    let (code, out) = staging(
        dir.path(),
        &[
            "up",
            "--env",
            "staging",
            "--instance",
            "pr-1",
            "--commit",
            COMMIT,
        ],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("is not ephemeral"), "{out}");
    // An instance name that is no label, in any spelling, before anything runs.
    for bad in ["PR-1", "../x", "pr_1", "pr-"] {
        let (code, out) = up(dir.path(), bad);
        assert_eq!(code, Some(2), "{bad}: {out}");
        assert!(out.contains("is not a valid instance name"), "{out}");
    }
    assert!(!dir.path().join(".staging/evidence").exists());
}

#[test]
fn an_instance_up_keeps_its_ledger_and_evidence_under_the_instance_and_list_shows_it() {
    let dir = workspace("72h");
    let (code, out) = up(dir.path(), "pr-7");
    assert_eq!(code, Some(0), "{out}");
    let doc = list(dir.path(), false);
    assert_eq!(instances(&doc), ["preview/pr-7"], "{doc}");
    let text = serde_json::to_string(&doc).unwrap();
    assert!(text.contains(COMMIT), "{doc}");
    // The run's evidence is the instance's, not the template's.
    let (code, out) = staging(
        dir.path(),
        &["evidence", "list", "--env", "preview.pr-7", "--json"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(COMMIT), "{out}");
    // The human listing names it with its commit and expiry.
    let (code, out) = staging(dir.path(), &["list"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("preview/pr-7"), "{out}");
    assert!(out.contains("expires in"), "{out}");
}

#[test]
fn down_of_an_instance_that_has_no_ledger_deletes_nothing_and_says_why() {
    let dir = workspace("72h");
    let (code, out) = staging(
        dir.path(),
        &["down", "--env", "preview", "--instance", "pr-9"],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("has no ledger"), "{out}");
    assert!(out.contains("nothing is deleted"), "{out}");
    // A long-lived environment is never torn down, with or without an instance.
    let (code, out) = staging(dir.path(), &["down", "--env", "staging"]);
    assert_eq!(code, Some(2), "{out}");
    let (code, out) = staging(
        dir.path(),
        &["down", "--env", "production", "--instance", "pr-9"],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("not ephemeral"), "{out}");
}

#[test]
fn down_twice_ends_clean_and_the_instance_leaves_the_listing() {
    let dir = workspace("72h");
    let (code, out) = up(dir.path(), "pr-3");
    assert_eq!(code, Some(0), "{out}");
    let down = |dir: &Path| staging(dir, &["down", "--env", "preview", "--instance", "pr-3"]);
    let (code, out) = down(dir.path());
    assert_eq!(code, Some(0), "{out}");
    let (code, doc) = json(
        dir.path(),
        &["down", "--env", "preview", "--instance", "pr-3"],
    );
    assert_eq!(code, Some(0), "a second down: {doc}");
    assert_eq!(doc["instance"], "pr-3", "{doc}");
    assert_eq!(doc["resources"].as_array().unwrap().len(), 0, "{doc}");
    assert!(instances(&list(dir.path(), false)).is_empty());
    assert_eq!(instances(&list(dir.path(), true)), ["preview/pr-3"]);
}

#[test]
fn gc_of_three_instances_of_different_ages_tears_down_only_the_expired_one() {
    let dir = workspace("30s");
    let (code, out) = up(dir.path(), "pr-old");
    assert_eq!(code, Some(0), "{out}");
    // Old enough: its ttl passes before the next instance is stood up.
    std::thread::sleep(std::time::Duration::from_secs(31));
    let (code, out) = up(dir.path(), "pr-mid");
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = up(dir.path(), "pr-new");
    assert_eq!(code, Some(0), "{out}");

    // Without --yes: a dry run that names only the expired one.
    let (code, out) = staging(dir.path(), &["gc"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("preview/pr-old"), "{out}");
    assert!(!out.contains("preview/pr-new"), "{out}");
    assert!(!out.contains("preview/pr-mid"), "{out}");
    assert!(out.contains("dry run"), "{out}");
    let mut all = instances(&list(dir.path(), false));
    all.sort();
    assert_eq!(all, ["preview/pr-mid", "preview/pr-new", "preview/pr-old"]);

    let (code, doc) = json(dir.path(), &["gc"]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["dry_run"], true, "{doc}");
    assert_eq!(doc["expired"].as_array().unwrap().len(), 1, "{doc}");

    let (code, out) = staging(dir.path(), &["gc", "--yes"]);
    assert_eq!(code, Some(0), "{out}");
    let mut left = instances(&list(dir.path(), false));
    left.sort();
    assert_eq!(left, ["preview/pr-mid", "preview/pr-new"]);
    // Its down is on record: `list --all` shows when.
    let (code, doc) = json(dir.path(), &["list", "--all"]);
    assert_eq!(code, Some(0), "{doc}");
    let old = doc["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instance"] == "pr-old")
        .unwrap()
        .clone();
    assert!(old["down_at"].is_u64(), "{old}");
}

#[test]
fn a_ledger_edited_after_it_was_written_is_not_trusted_and_nothing_is_torn_down() {
    let dir = workspace("72h");
    let (code, out) = up(dir.path(), "pr-2");
    assert_eq!(code, Some(0), "{out}");
    // The ledger's records, as the directory store keeps them.
    let ledgers = dir.path().join(".staging/evidence/instance-ledger");
    let mut edited = 0;
    for e in walk(&ledgers) {
        let text = std::fs::read_to_string(&e).unwrap();
        let changed = text.replace(COMMIT, "fedcba9876543210fedcba9876543210fedcba98");
        assert_ne!(changed, text, "the ledger names the commit");
        std::fs::write(&e, changed).unwrap();
        edited += 1;
    }
    assert!(edited > 0, "no ledger record under {}", ledgers.display());
    let (code, out) = staging(
        dir.path(),
        &["down", "--env", "preview", "--instance", "pr-2"],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("changed after it was written"), "{out}");
    let (code, out) = staging(dir.path(), &["gc", "--yes"]);
    assert_ne!(code, Some(0), "{out}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
