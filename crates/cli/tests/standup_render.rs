//! Standing a Render environment up from nothing with the real `staging` binary (issue 21),
//! against Render's own API description (`prism proxy --errors`) in front of the team's
//! stateful fake: `plan` lists what `up` then creates, `up` creates the runbook's stack
//! (Rails web + worker + Postgres + Key Value + custom domain) and then deploys, verifies
//! and passes smoke, a second `up` creates nothing, and production's variable values go
//! nowhere. Each test uses names of its own (the stand-in is shared by the binary).

mod common;
#[path = "../../provider-render/tests/support/mod.rs"]
mod render;

use std::collections::BTreeSet;
use std::path::Path;

use common::{run_staging, text};
use render::fake::{Fake, Store};
use render::{API_KEY, stand_in};
use serde_json::json;

const NEW: &str = "2222222aaaaaaaabbbbbbbbccccccccdddddddd2";
const CANARY_SECRET: &str = "canary-prod-skb-61f0c2e9a7";
const CANARY_DB: &str = "canary-prod-dburl-3d9b7e15";

fn run_against(url: &str, dir: &Path, args: &[&str]) -> std::process::Output {
    run_staging(
        dir,
        args,
        &[("RENDER_API_KEY", API_KEY), ("RENDER_API_URL", url)],
    )
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    run_against(&stand_in().prism.url(), dir, args)
}

/// Production of the runbook, in the fake: a Rails web service with a disk, a Sidekiq
/// worker, a Postgres and a Key Value; secret values in the services' variables.
fn production(p: &str) {
    let fake = &stand_in().fake;
    let web = fake.add_defined_service(
        &format!("{p}-web"),
        json!({
            "type": "web_service", "repo": "https://github.com/acme/shop", "branch": "main",
            "serviceDetails": {
                "runtime": "ruby", "plan": "standard", "region": "virginia",
                "healthCheckPath": "/up",
                "envSpecificDetails": { "buildCommand": "./bin/render-build.sh",
                                        "startCommand": "bundle exec puma -C config/puma.rb" },
                "disk": { "name": "storage", "mountPath": "/rails/storage", "sizeGB": 20 }
            }
        }),
    );
    let worker = fake.add_defined_service(
        &format!("{p}-worker"),
        json!({
            "type": "background_worker", "repo": "https://github.com/acme/shop", "branch": "main",
            "serviceDetails": {
                "runtime": "ruby", "plan": "standard", "region": "virginia",
                "envSpecificDetails": { "buildCommand": "bundle install",
                                        "startCommand": "bundle exec sidekiq" }
            }
        }),
    );
    for id in [&web, &worker] {
        fake.set_env(id, "SECRET_KEY_BASE", CANARY_SECRET);
        fake.set_env(id, "DATABASE_URL", CANARY_DB);
        fake.add_live_deploy(id, NEW);
    }
    fake.add_datastore(
        Store::Postgres,
        &format!("{p}-db"),
        json!({ "plan": "pro_4gb", "version": "16", "region": "virginia",
                "enableHighAvailability": true, "diskSizeGB": 50,
                "databaseName": "shop_production", "databaseUser": "shop" }),
    );
    fake.add_datastore(
        Store::KeyValue,
        &format!("{p}-redis"),
        json!({ "plan": "standard", "region": "virginia", "maxmemoryPolicy": "noeviction" }),
    );
}

fn runbook_spec(dir: &Path, p: &str) {
    std::fs::write(
        dir.join("staging.toml"),
        format!(
            r#"[project]
name = "shop"

[environments.staging]
provider = "render"
promotes_to = "production"
deploy_timeout = "2m"

[environments.production]
provider = "render"
protected = true

[services.web]
health_path = "/up"
create = {{ like = "production" }}
settings = {{ service_name = "{p}-web" }}
overrides.staging = {{ service_name = "{p}-web-staging", branch = "staging", plan = "starter", custom_domains = ["staging.{p}.example"] }}

[services.worker]
http = false
create = {{ like = "production" }}
settings = {{ service_name = "{p}-worker" }}
overrides.staging = {{ service_name = "{p}-worker-staging", branch = "staging", plan = "starter" }}

[datastores.db]
create = {{ like = "production" }}
settings = {{ kind = "postgres", name = "{p}-db" }}
overrides.staging = {{ name = "{p}-db-staging", plan = "basic_256mb", disk_size_gb = 5, high_availability = false, database_name = "shop_staging" }}

[datastores.cache]
create = {{ like = "production" }}
settings = {{ kind = "key_value", name = "{p}-redis" }}
overrides.staging = {{ name = "{p}-redis-staging", plan = "starter" }}

[vars.DATABASE_URL]
secret = true
sources = {{ staging = {{ provider = "postgres:{p}-db-staging" }}, production = {{ provider = "postgres:{p}-db" }} }}
rules = {{ kind = "url" }}

[vars.REDIS_URL]
secret = true
sources = {{ staging = {{ provider = "key_value:{p}-redis-staging" }}, production = {{ provider = "key_value:{p}-redis" }} }}
rules = {{ kind = "url" }}

[vars.RAILS_ENV]
value = "production"

[[probes]]
name = "app answers"
command = {{ run = ["true"] }}
"#
        ),
    )
    .unwrap();
}

/// Every creation request the fake saw for names starting with `p`, as `(path, name)`.
fn creations(p: &str) -> Vec<(String, String)> {
    stand_in()
        .fake
        .requests_mentioning(p)
        .into_iter()
        .filter(|r| r.starts_with("POST "))
        .filter_map(|r| {
            let mut parts = r.splitn(3, ' ');
            let (_, path, body) = (parts.next()?, parts.next()?, parts.next()?);
            let is_create = matches!(path, "/services" | "/postgres" | "/key-value")
                || path.ends_with("/custom-domains");
            let body: serde_json::Value = serde_json::from_str(body).ok()?;
            let name = body["name"].as_str()?.to_owned();
            is_create.then(|| (path.to_owned(), name))
        })
        .collect()
}

fn assert_no_production_value(all: &str) {
    for canary in [CANARY_SECRET, CANARY_DB] {
        assert!(!all.contains(canary), "production's value leaked: {all}");
    }
}

#[test]
fn up_stands_the_runbook_stack_up_from_nothing_then_deploys_verifies_and_a_second_up_creates_nothing()
 {
    let p = "rbk";
    production(p);
    stand_in()
        .fake
        .dns_ready_for(&format!("staging.{p}.example"));
    let dir = tempfile::tempdir().unwrap();
    runbook_spec(dir.path(), p);

    // `plan` lists every resource to create, with its settings, and writes nothing.
    let out = run(
        dir.path(),
        &["plan", "--env", "staging", "--commit", NEW, "--json"],
    );
    let plan_text = text(&out);
    assert_eq!(out.status.code(), Some(0), "{plan_text}");
    assert_no_production_value(&plan_text);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {plan_text}"));
    let planned: BTreeSet<(String, String)> = doc["create"]
        .as_array()
        .unwrap_or_else(|| panic!("no create: {doc}"))
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_owned(),
                c["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("render postgres", format!("{p}-db-staging")),
        ("render key value", format!("{p}-redis-staging")),
        ("render web service", format!("{p}-web-staging")),
        ("render background worker", format!("{p}-worker-staging")),
        ("render custom domain", format!("staging.{p}.example")),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n))
    .collect();
    assert_eq!(planned, expected, "{doc}");
    let web_plan = doc["create"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "render web service")
        .unwrap();
    assert_eq!(web_plan["like"], "production");
    assert_eq!(web_plan["settings"]["region"], "virginia", "{doc}");
    assert_eq!(web_plan["settings"]["branch"], "staging", "{doc}");
    assert!(creations(p).is_empty(), "plan created: {:?}", creations(p));

    // `up` creates exactly that, then deploys, verifies and smoke-tests.
    let out = run(
        dir.path(),
        &["up", "--env", "staging", "--commit", NEW, "--json"],
    );
    let up_text = text(&out);
    assert_eq!(out.status.code(), Some(0), "{up_text}");
    assert_no_production_value(&up_text);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let provision = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "provision")
        .unwrap_or_else(|| panic!("no provision step: {report}"));
    assert_eq!(provision["status"], "passed", "{report}");
    let created: BTreeSet<String> = creations(p).into_iter().map(|(_, n)| n).collect();
    let planned_names: BTreeSet<String> = planned.iter().map(|(_, n)| n.clone()).collect();
    assert_eq!(created, planned_names, "plan listed what up created");
    assert_eq!(creations(p).len(), 5, "{:?}", creations(p));

    let fake = &stand_in().fake;
    for name in [format!("{p}-web-staging"), format!("{p}-worker-staging")] {
        let ids = fake.services_named(&name);
        assert_eq!(ids.len(), 1, "{name}");
        assert_eq!(
            fake.live_commit(&ids[0]).as_deref(),
            Some(NEW),
            "{name} was not deployed"
        );
        // Staging's own connection strings, set by the variables step.
        let puts: Vec<String> = fake
            .requests_for(&ids[0])
            .into_iter()
            .filter(|r| r.starts_with("PUT ") && r.contains("/env-vars/DATABASE_URL"))
            .collect();
        assert_eq!(puts.len(), 1, "{puts:?}");
    }
    assert_eq!(
        fake.datastores_named(&format!("{p}-db-staging"))[0].1,
        "available"
    );
    // The copy is production's shape with staging's settings.
    let web_body = stand_in()
        .fake
        .requests_mentioning(&format!("\"name\":\"{p}-web-staging\""))
        .into_iter()
        .find(|r| r.starts_with("POST /services "))
        .unwrap();
    for part in [
        "\"buildCommand\":\"./bin/render-build.sh\"",
        "\"region\":\"virginia\"",
        "\"plan\":\"starter\"",
        "\"branch\":\"staging\"",
        "\"mountPath\":\"/rails/storage\"",
        "\"healthCheckPath\":\"/up\"",
    ] {
        assert!(web_body.contains(part), "{part} not in {web_body}");
    }
    assert!(!web_body.contains("envVars"), "{web_body}");
    let kv_body = stand_in()
        .fake
        .requests_mentioning(&format!("\"name\":\"{p}-redis-staging\""))
        .into_iter()
        .find(|r| r.starts_with("POST /key-value "))
        .unwrap();
    assert!(
        kv_body.contains("\"maxmemoryPolicy\":\"noeviction\""),
        "{kv_body}"
    );

    // A second `up` finds everything and creates nothing.
    let out = run(dir.path(), &["up", "--env", "staging", "--commit", NEW]);
    let again = text(&out);
    assert_eq!(out.status.code(), Some(0), "{again}");
    assert!(again.contains("nothing to create"), "{again}");
    assert_eq!(creations(p).len(), 5, "{:?}", creations(p));
    assert_no_production_value(&again);

    // No production variable value was sent anywhere, nor read.
    for r in stand_in().fake.requests() {
        assert_no_production_value(&r);
    }
    let prod_web = &fake.services_named(&format!("{p}-web"))[0];
    assert!(
        fake.requests_for(prod_web)
            .iter()
            .all(|r| !r.contains("/env-vars")),
        "production's variables were read"
    );
    stand_in().prism.assert_no_violations();
}

fn protected_spec(dir: &Path, extra_production: &str, build_key: &str) {
    std::fs::write(
        dir.join("staging.toml"),
        format!(
            r#"[project]
name = "guarded"

[environments.staging]
provider = "render"
promotes_to = "production"

[environments.production]
provider = "render"
protected = true
allow_direct_up = true
{extra_production}
[services.web]
create = true
settings = {{ service_name = "guarded-web", runtime = "node", repo = "https://github.com/acme/guarded", {build_key} = "npm ci", start_command = "npm start" }}
overrides.staging = {{ service_name = "guarded-web-staging" }}
"#
        ),
    )
    .unwrap();
}

#[test]
fn creation_on_a_protected_environment_without_allow_create_is_refused_before_any_request() {
    // A fake of its own: its request log is this test's only.
    let fake = Fake::start();
    let dir = tempfile::tempdir().unwrap();
    protected_spec(dir.path(), "", "build_command");
    for args in [
        &["up", "--env", "production", "--commit", NEW][..],
        &["plan", "--env", "production", "--commit", NEW][..],
    ] {
        let out = run_against(&fake.url(), dir.path(), args);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        assert!(
            all.contains("allow_create") && all.contains("staging.toml:14:"),
            "{args:?}: {all}"
        );
        assert!(fake.requests().is_empty(), "{:?}", fake.requests());
    }
}

#[test]
fn a_misspelt_creation_setting_is_refused_at_its_place_with_a_suggestion_before_any_request() {
    let fake = Fake::start();
    let dir = tempfile::tempdir().unwrap();
    protected_spec(dir.path(), "allow_create = true\n", "bulid_command");
    for args in [
        &["validate"][..],
        &["up", "--env", "staging", "--commit", NEW][..],
    ] {
        let out = run_against(&fake.url(), dir.path(), args);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        assert!(
            all.contains("staging.toml:16:")
                && all.contains("bulid_command")
                && all.contains("did you mean `build_command`"),
            "{args:?}: {all}"
        );
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

const RUNBOOK_BLUEPRINT: &str = r#"
services:
  - type: web
    name: imp-web
    runtime: ruby
    repo: https://github.com/acme/imp
    branch: main
    plan: standard
    region: ohio
    buildCommand: ./bin/render-build.sh
    startCommand: bundle exec puma
    healthCheckPath: /up
    disk:
      name: storage
      mountPath: /rails/storage
      sizeGB: 5
    domains:
      - imp.example.com
    envVars:
      - key: DATABASE_URL
        fromDatabase:
          name: imp-db
          property: connectionString
      - key: REDIS_URL
        fromService:
          type: keyvalue
          name: imp-cache
          property: connectionString
  - type: worker
    name: imp-worker
    runtime: ruby
    repo: https://github.com/acme/imp
    plan: starter
    region: ohio
    buildCommand: bundle install
    startCommand: bundle exec sidekiq
  - type: keyvalue
    name: imp-cache
    plan: starter
    region: ohio
    ipAllowList: []
databases:
  - name: imp-db
    plan: basic-256mb
    region: ohio
    postgresMajorVersion: "16"
    databaseName: imp
    user: imp
"#;

#[test]
fn an_imported_blueprint_validates_and_plans_the_whole_stack_against_an_empty_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("render.yaml");
    std::fs::write(&yaml, RUNBOOK_BLUEPRINT).unwrap();
    let spec_path = dir.path().join("staging.toml");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("staging"))
        .args(["import", yaml.to_str().unwrap(), "-o"])
        .arg(&spec_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    assert!(spec.contains("create = true"), "{spec}");
    let out = run(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{spec}", text(&out));
    let out = run(
        dir.path(),
        &["plan", "--env", "staging", "--commit", NEW, "--json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}\n{spec}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let planned: BTreeSet<(String, String)> = doc["create"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"))
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_owned(),
                c["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("render postgres", "imp-db-staging"),
        ("render key value", "imp-cache-staging"),
        ("render web service", "imp-web-staging"),
        ("render background worker", "imp-worker-staging"),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n.to_owned()))
    .collect();
    assert_eq!(planned, expected, "{doc}\n{spec}");
    let db = doc["create"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "render postgres")
        .unwrap();
    assert_eq!(db["settings"]["plan"], "basic_256mb", "{doc}");
    assert_eq!(db["settings"]["version"], "16", "{doc}");
    let kv = doc["create"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "render key value")
        .unwrap();
    assert_eq!(kv["settings"]["maxmemory_policy"], "noeviction", "{doc}");
    assert!(creations("imp-").is_empty());
    stand_in().prism.assert_no_violations();
}

/// The variables `plan --json` says the deploy writes (add or change), as `(service, name)`.
fn planned_writes(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    doc["services"]
        .as_array()
        .unwrap_or_else(|| panic!("no services: {doc}"))
        .iter()
        .flat_map(|s| {
            let service = s["service"].as_str().unwrap().to_owned();
            s["vars"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|v| v["action"] == "add" || v["action"] == "change")
                .map(move |v| (service.clone(), v["name"].as_str().unwrap().to_owned()))
        })
        .collect()
}

#[test]
fn plan_json_and_the_up_that_follows_agree_on_every_variable_and_creation() {
    let p = "agree";
    let fake = &stand_in().fake;
    // Staging's web exists with one variable as the spec has it, one with another value
    // and one the spec does not declare; its worker is created by `up`.
    let web = fake.add_defined_service(
        &format!("{p}-web-staging"),
        json!({ "type": "web_service", "repo": "https://github.com/acme/shop", "branch": "staging",
                "serviceDetails": { "runtime": "ruby", "plan": "starter", "region": "virginia",
                                    "healthCheckPath": "/up" } }),
    );
    fake.set_env(&web, "SAME", "kept");
    fake.set_env(&web, "OLD", "before");
    fake.set_env(&web, "EXTRA", "only-on-the-platform");
    fake.add_live_deploy(&web, "1111111aaaaaaaabbbbbbbbccccccccdddddddd1");
    fake.add_defined_service(
        &format!("{p}-worker"),
        json!({ "type": "background_worker", "repo": "https://github.com/acme/shop", "branch": "main",
                "serviceDetails": { "runtime": "ruby", "plan": "standard", "region": "virginia",
                                    "envSpecificDetails": { "buildCommand": "bundle install",
                                                            "startCommand": "bundle exec sidekiq" } } }),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        format!(
            r#"[project]
name = "agree"

[environments.staging]
provider = "render"
promotes_to = "production"
deploy_timeout = "2m"

[environments.production]
provider = "render"
protected = true

[services.web]
health_path = "/up"
settings = {{ service_name = "{p}-web" }}
overrides.staging = {{ service_name = "{p}-web-staging" }}

[services.worker]
http = false
create = {{ like = "production" }}
settings = {{ service_name = "{p}-worker" }}
overrides.staging = {{ service_name = "{p}-worker-staging", branch = "staging", plan = "starter" }}

[vars.SAME]
value = "kept"

[vars.OLD]
value = "after"

[vars.NEW]
value = "added"

[[probes]]
name = "app answers"
command = {{ run = ["true"] }}
"#
        ),
    )
    .unwrap();

    let plan = run(
        dir.path(),
        &["plan", "--env", "staging", "--commit", NEW, "--json"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let doc: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let web_vars: Vec<(String, String)> = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "web")
        .unwrap()["vars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [
        ("SAME", "unchanged"),
        ("OLD", "change"),
        ("NEW", "add"),
        ("EXTRA", "remove"),
    ] {
        assert!(
            web_vars.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} not in {web_vars:?}"
        );
    }

    let up = run(
        dir.path(),
        &["up", "--env", "staging", "--commit", NEW, "--json"],
    );
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    // What up wrote, per service: each PUT of a variable.
    let worker = fake.services_named(&format!("{p}-worker-staging"));
    assert_eq!(worker.len(), 1, "the worker plan listed was created");
    let mut written = BTreeSet::new();
    for (service, id) in [("web", web.clone()), ("worker", worker[0].clone())] {
        for r in fake.requests_for(&id) {
            let Some(rest) = r.strip_prefix("PUT ") else {
                continue;
            };
            if let Some((_, key)) = rest
                .split(' ')
                .next()
                .unwrap_or("")
                .split_once("/env-vars/")
            {
                written.insert((service.to_owned(), key.to_owned()));
            }
        }
    }
    assert_eq!(written, planned_writes(&doc), "plan: {doc}");
    let created: BTreeSet<String> = creations(p).into_iter().map(|(_, n)| n).collect();
    let planned: BTreeSet<String> = doc["create"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(created, planned, "plan: {doc}");
    assert!(
        fake.env(&web)
            .contains(&("EXTRA".into(), "only-on-the-platform".into()))
    );
    stand_in().prism.assert_no_violations();
}
