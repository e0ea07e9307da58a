//! The real-Blueprint-shaped fixtures of `tests/fixtures/imports/*/render.yaml` stand their
//! whole stack up (issue 34): each is imported in a checkout whose `origin` is its GitHub
//! repository (the Blueprints name no `repo`: Render builds from the Blueprint's own), the
//! spec validates as generated, and `staging plan --env staging` on the Render stand-in
//! (Prism over Render's published API description in front of the fake) exits 0 listing
//! every service (web, worker, cron, private) and every datastore (Postgres, Key Value) of
//! the Blueprint as a creation, writing nothing.

mod common;
#[path = "../../provider-render/tests/support/mod.rs"]
mod render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{run_staging, text};
use render::{API_KEY, stand_in};
use serde_json::Value;

const COMMIT: &str = "3333333aaaaaaaabbbbbbbbccccccccdddddddd3";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imports")
}

/// Every `render.yaml` fixture, by directory name.
fn blueprints() -> BTreeMap<String, PathBuf> {
    std::fs::read_dir(fixtures())
        .unwrap()
        .flatten()
        .map(|e| e.path().join("render.yaml"))
        .filter(|p| p.exists())
        .map(|p| {
            let name = p.parent().unwrap().file_name().unwrap();
            (name.to_string_lossy().into_owned(), p)
        })
        .collect()
}

/// What `plan` must list for the Blueprint: `(kind, Blueprint name)` of every service and
/// datastore, merged across a `projects:` Blueprint's environments.
fn resources(yaml: &str) -> Vec<(String, String)> {
    let doc: Value = serde_saphyr::from_str(yaml).unwrap();
    let mut services: Vec<Value> = doc["services"].as_array().cloned().unwrap_or_default();
    let mut databases: Vec<Value> = doc["databases"].as_array().cloned().unwrap_or_default();
    for project in doc["projects"].as_array().into_iter().flatten() {
        for env in project["environments"].as_array().into_iter().flatten() {
            services.extend(env["services"].as_array().cloned().unwrap_or_default());
            databases.extend(env["databases"].as_array().cloned().unwrap_or_default());
        }
    }
    let mut out = vec![];
    for s in services {
        let runtime = s["runtime"].as_str().or(s["env"].as_str());
        let kind = match (s["type"].as_str().unwrap(), runtime) {
            ("web", Some("static")) => "render static site",
            ("web", _) => "render web service",
            ("worker", _) => "render background worker",
            ("cron", _) => "render cron job",
            ("pserv", _) => "render private service",
            ("keyvalue" | "redis", _) => "render key value",
            (other, _) => panic!("a Blueprint service type this test does not know: {other}"),
        };
        out.push((kind.to_owned(), s["name"].as_str().unwrap().to_owned()));
    }
    for d in databases {
        out.push((
            "render postgres".to_owned(),
            d["name"].as_str().unwrap().to_owned(),
        ));
    }
    out.sort();
    out
}

/// A checkout of the app: the Blueprint at its root, `origin` on GitHub.
fn checkout(dir: &Path, name: &str, blueprint: &Path) -> PathBuf {
    let app = dir.join(name);
    std::fs::create_dir_all(&app).unwrap();
    std::fs::copy(blueprint, app.join("render.yaml")).unwrap();
    for args in [
        vec!["init", "-q"],
        vec![
            "remote",
            "add",
            "origin",
            &format!("git@github.com:acme-examples/{name}.git"),
        ],
    ] {
        let ok = std::process::Command::new("git")
            .args(&args)
            .current_dir(&app)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }
    app
}

/// The whole acceptance: all ten, cron jobs and static sites included.
#[test]
fn ten_real_blueprint_shaped_fixtures_import_validate_and_plan_their_whole_stack() {
    let all = blueprints();
    assert!(
        all.len() >= 10,
        "the repo holds {} Blueprint fixtures, not 10: {:?}",
        all.len(),
        all.keys()
    );
    check(&all);
}

fn check(all: &BTreeMap<String, PathBuf>) {
    let env = [
        ("RENDER_API_KEY", API_KEY.to_owned()),
        ("RENDER_API_URL", stand_in().prism.url()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut failures = vec![];
    for (name, blueprint) in all {
        let dir = tempfile::tempdir().unwrap();
        let app = checkout(dir.path(), name, blueprint);
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("staging"))
            .current_dir(&app)
            .args(["import", "render.yaml", "-o", "staging.toml"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}: import: {}", text(&out));
        let spec = std::fs::read_to_string(app.join("staging.toml")).unwrap();
        assert!(
            spec.contains(&format!("https://github.com/acme-examples/{name}")),
            "{name}: the checkout's origin is not the repo:\n{spec}"
        );
        if let Some(line) = spec.lines().find(|l| l.starts_with("# create = true")) {
            failures.push(format!("{name}: a resource is left uncreatable: {line}"));
            continue;
        }

        let out = run_staging(&app, &["validate"], &env);
        if out.status.code() != Some(0) {
            failures.push(format!("{name}: validate: {}\n{spec}", text(&out)));
            continue;
        }

        let before = stand_in().fake.requests().len();
        let out = run_staging(
            &app,
            &["plan", "--env", "staging", "--commit", COMMIT, "--json"],
            &env,
        );
        let all_text = text(&out);
        if out.status.code() != Some(0) {
            failures.push(format!("{name}: plan: {all_text}\n{spec}"));
            continue;
        }
        let writes: Vec<String> = stand_in().fake.requests()[before..]
            .iter()
            .filter(|r| !r.starts_with("GET "))
            .cloned()
            .collect();
        assert!(writes.is_empty(), "{name}: plan wrote: {writes:?}");
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {all_text}"));
        let planned: Vec<(String, String)> = doc["create"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: nothing to create: {doc}"))
            .iter()
            .map(|c| {
                (
                    c["kind"].as_str().unwrap_or_default().to_owned(),
                    c["name"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .filter(|(kind, _)| kind != "render custom domain")
            .collect();
        let wanted = resources(&std::fs::read_to_string(blueprint).unwrap());
        // Each Blueprint resource is planned once, as its own kind, under staging's own name
        // (the Blueprint's name is production's).
        let mut missing = vec![];
        for (kind, bp_name) in &wanted {
            let found = planned
                .iter()
                .filter(|(k, n)| k == kind && n.starts_with(bp_name.as_str()) && n != bp_name)
                .count();
            if found != 1 {
                missing.push(format!("{kind} {bp_name} (planned {found} times)"));
            }
        }
        if !missing.is_empty() || planned.len() != wanted.len() {
            failures.push(format!(
                "{name}: the plan is not the whole stack: missing {missing:?}; planned {planned:?}; Blueprint {wanted:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
