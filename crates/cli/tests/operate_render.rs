//! Operating a Render environment from the CLI, against Render's own API description
//! (`prism proxy --errors`) in front of the team's stateful fake (the provider crate's test
//! support, reused as is): `plan` shows the change and only reads, custom domains are
//! checked by the smoke step, and a background worker without a health path passes `up`.

mod common;
#[path = "../../provider-render/tests/support/mod.rs"]
mod render;

use std::path::Path;

use common::{run_staging, staging_command, text};
use render::{API_KEY, Kind, stand_in};

const OLD: &str = "0000000aaaaaaaabbbbbbbbccccccccdddddddd0";
const NEW: &str = "1111111aaaaaaaabbbbbbbbccccccccddddddddd";

/// The canary the platform holds for the secret, and the one the spec sets.
const CANARY_HELD: &str = "canary-held-7f3e1b9c2d4a";
const CANARY_SPEC: &str = "canary-spec-9a8b7c6d5e4f";

fn render_env() -> Vec<(&'static str, String)> {
    vec![
        ("RENDER_API_KEY", API_KEY.to_owned()),
        ("RENDER_API_URL", stand_in().prism.url()),
    ]
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    let env = render_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_staging(dir, args, &env)
}

fn command(dir: &Path, args: &[&str]) -> std::process::Command {
    let env = render_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    staging_command(dir, args, &env)
}

fn spec(dir: &Path, body: &str) {
    std::fs::write(dir.join("staging.toml"), body).unwrap();
}

#[test]
fn plan_json_on_render_shows_changes_by_fingerprint_and_only_reads() {
    let fake = &stand_in().fake;
    let id = fake.add_service("plan-web", Kind::StaticSite);
    fake.add_live_deploy(&id, OLD);
    fake.set_env(&id, "GREETING", "hello-old");
    fake.set_env(&id, "API_TOKEN", CANARY_HELD);
    fake.set_env(&id, "UNCHANGED", "same");

    let dir = tempfile::tempdir().unwrap();
    spec(
        dir.path(),
        &format!(
            r#"[project]
name = "shop"

[environments.staging]
provider = "render"
secrets = {{ dotenv = "staging.env" }}

[services.web]
settings = {{ service_id = "{id}" }}

[vars.GREETING]
value = "hello-new"

[vars.UNCHANGED]
value = "same"

[vars.NEW_FLAG]
value = "on"

[vars.API_TOKEN]
secret = true

[vars.DATABASE_URL]
secret = true

[databases.main]
url_var = "DATABASE_URL"
migrations = {{ dir = "migrations" }}
"#
        ),
    );
    let db = dir.path().join("app.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        format!(
            "API_TOKEN={CANARY_SPEC}\nDATABASE_URL=sqlite://{}\n",
            db.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/1_orders.sql"),
        "CREATE TABLE orders (id integer);",
    )
    .unwrap();

    let out = run(
        dir.path(),
        &["plan", "--env", "staging", "--commit", NEW, "--json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    for canary in [CANARY_HELD, CANARY_SPEC, "hello-old", "hello-new"] {
        assert!(!all.contains(canary), "a value leaked ({canary}): {all}");
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {all}"));
    let plan = &doc["services"][0];
    assert_eq!(plan["service"], "web", "{doc}");
    assert_eq!(plan["id"], id.as_str(), "{doc}");
    assert_eq!(plan["live_commit"], OLD, "{doc}");
    assert_eq!(plan["commit"], NEW, "{doc}");
    assert_eq!(plan["changes_commit"], true, "{doc}");
    let var = |name: &str| {
        plan["vars"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {doc}"))
            .clone()
    };
    for (name, action) in [
        ("GREETING", "change"),
        ("API_TOKEN", "change"),
        ("NEW_FLAG", "add"),
        ("UNCHANGED", "unchanged"),
    ] {
        assert_eq!(var(name)["action"], action, "{name}: {doc}");
    }
    // Changed: two different fingerprints; unchanged: the same one on both sides.
    let token = var("API_TOKEN");
    assert!(token["spec"].is_string() && token["platform"].is_string());
    assert_ne!(token["spec"], token["platform"], "{doc}");
    assert_eq!(var("UNCHANGED")["spec"], var("UNCHANGED")["platform"]);
    assert_eq!(token["secret"], true);
    let pending = &doc["databases"][0]["pending"];
    assert_eq!(pending, &serde_json::json!(["1"]), "{doc}");

    // Every request about the service came from `plan` (the scene was set in the fake
    // directly); other tests of this binary use other services.
    let seen = fake.requests_for(&id);
    assert!(!seen.is_empty(), "plan read nothing from Render");
    let writes: Vec<&String> = seen.iter().filter(|r| !r.starts_with("GET ")).collect();
    assert!(writes.is_empty(), "plan wrote to Render: {writes:?}");
    // Nor to the database: the migration is still pending.
    let out = run(
        dir.path(),
        &["plan", "--env", "staging", "--commit", NEW, "--json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["databases"][0]["pending"], serde_json::json!(["1"]));
    stand_in().prism.assert_no_violations();
}

fn worker_spec(dir: &Path, id: &str) {
    spec(
        dir,
        &format!(
            r#"[project]
name = "jobs"

[environments.staging]
provider = "render"
deploy_timeout = "2m"

[services.worker]
http = false
settings = {{ service_id = "{id}" }}
"#
        ),
    );
}

#[test]
fn a_background_worker_without_a_health_path_passes_up_on_render() {
    let fake = &stand_in().fake;
    let id = fake.add_service("queue-worker", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    worker_spec(dir.path(), &id);
    let out = run(
        dir.path(),
        &["up", "--env", "staging", "--commit", NEW, "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true, "{doc}");
    // It went live with the commit on Render, not merely "no error".
    let deploys: Vec<String> = fake
        .requests_for(&id)
        .into_iter()
        .filter(|r| r.starts_with("POST ") && r.contains("/deploys"))
        .collect();
    assert_eq!(deploys.len(), 1, "{deploys:?}");
    assert!(deploys[0].contains(NEW), "{deploys:?}");

    let out = run(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("no health check") && text(&out).contains("worker"),
        "{}",
        text(&out)
    );
}

/// A second `up` of the commit already serving, with the same variables, changes nothing on
/// Render (as `plan` says "unchanged"); `--redeploy` forces the deploy.
#[test]
fn a_second_up_of_the_same_commit_makes_no_deploy_and_redeploy_forces_one() {
    let fake = &stand_in().fake;
    let id = fake.add_service("noop-worker", Kind::Worker);
    let dir = tempfile::tempdir().unwrap();
    worker_spec(dir.path(), &id);
    let deploys = || {
        fake.requests_for(&id)
            .into_iter()
            .filter(|r| r.starts_with("POST ") && r.contains("/deploys"))
            .count()
    };
    let up = |extra: &[&str]| {
        let mut args = vec!["up", "--env", "staging", "--commit", NEW];
        args.extend_from_slice(extra);
        let out = run(dir.path(), &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        text(&out)
    };
    up(&[]);
    assert_eq!(deploys(), 1);
    let second = up(&[]);
    assert_eq!(deploys(), 1, "the second up deployed again: {second}");
    assert!(second.contains("already serves"), "{second}");
    up(&["--redeploy"]);
    assert_eq!(deploys(), 2);
    // The attack: another commit is deployed, whatever ran before.
    let out = run(dir.path(), &["up", "--env", "staging", "--commit", OLD]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(deploys(), 3);
}

/// A worker whose deploy fails on Render fails `up`: passing is the platform's word, not
/// the absence of a check.
#[test]
fn a_background_worker_whose_deploy_fails_fails_up_on_render() {
    let fake = &stand_in().fake;
    let id = fake.add_service("broken-worker", Kind::Worker);
    fake.plan_next_deploy(&id, &["build_in_progress", "build_failed"]);
    let dir = tempfile::tempdir().unwrap();
    worker_spec(dir.path(), &id);
    let out = run(dir.path(), &["up", "--env", "staging", "--commit", NEW]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

fn domain_spec(dir: &Path, id: &str, domains: &[&str]) {
    let list = domains
        .iter()
        .map(|d| format!("\"{d}\""))
        .collect::<Vec<_>>()
        .join(", ");
    spec(
        dir,
        &format!(
            r#"[project]
name = "site"

[environments.staging]
provider = "render"
deploy_timeout = "2m"

[services.web]
settings = {{ service_id = "{id}", custom_domains = [{list}] }}
"#
        ),
    );
}

fn smoke_json(dir: &Path) -> (Option<i32>, serde_json::Value, String) {
    let out = run(dir, &["up", "--env", "staging", "--commit", NEW, "--json"]);
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)));
    (out.status.code(), doc, text(&out))
}

#[test]
fn a_verified_render_custom_domain_passes_up() {
    let fake = &stand_in().fake;
    let id = fake.add_service("verified-site", Kind::StaticSite);
    fake.add_custom_domain(&id, "www.verified.example", true, false);
    let dir = tempfile::tempdir().unwrap();
    domain_spec(dir.path(), &id, &["www.verified.example"]);
    let (code, doc, all) = smoke_json(dir.path());
    assert_eq!(code, Some(0), "{all}");
    assert!(
        doc.to_string()
            .contains("custom domain www.verified.example"),
        "the domain was not checked: {doc}"
    );
    // Verified already: no re-check was asked for.
    assert!(
        !fake.requests_for(&id).iter().any(|r| r.contains("/verify")),
        "{:?}",
        fake.requests_for(&id)
    );
}

#[test]
fn an_unverified_render_custom_domain_fails_up_with_the_record_to_create() {
    let fake = &stand_in().fake;
    let id = fake.add_service("unverified-site", Kind::StaticSite);
    fake.add_custom_domain(&id, "www.unverified.example", false, false);
    fake.add_custom_domain(&id, "unverified.example", false, false);
    let dir = tempfile::tempdir().unwrap();
    domain_spec(
        dir.path(),
        &id,
        &["www.unverified.example", "unverified.example"],
    );
    let (code, doc, all) = smoke_json(dir.path());
    assert_eq!(code, Some(1), "{all}");
    // Render was asked to check the DNS again before the run gave up.
    let verifies = fake
        .requests_for(&id)
        .into_iter()
        .filter(|r| r.starts_with("POST ") && r.contains("/verify"))
        .count();
    assert_eq!(verifies, 2, "{:?}", fake.requests_for(&id));
    // The records: a CNAME to the service's own host for the subdomain, ALIAS or A for the
    // apex.
    assert!(
        all.contains("www.unverified.example CNAME unverified-site.onrender.com"),
        "{all}"
    );
    assert!(
        all.contains("unverified.example A 216.24.57.1")
            && all.contains("unverified.example ALIAS unverified-site.onrender.com"),
        "{all}"
    );
    assert_eq!(doc["ok"], false);
    stand_in().prism.assert_no_violations();
}

#[test]
fn a_render_custom_domain_whose_dns_is_now_right_passes_after_the_re_check() {
    let fake = &stand_in().fake;
    let id = fake.add_service("recheck-site", Kind::StaticSite);
    fake.add_custom_domain(&id, "www.recheck.example", false, true);
    let dir = tempfile::tempdir().unwrap();
    domain_spec(dir.path(), &id, &["www.recheck.example"]);
    let (code, _, all) = smoke_json(dir.path());
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("verified after a re-check"), "{all}");
}

#[test]
fn a_custom_domain_not_added_to_the_render_service_fails_up_saying_so() {
    let fake = &stand_in().fake;
    let id = fake.add_service("missing-domain-site", Kind::StaticSite);
    fake.add_custom_domain(&id, "www.other.example", true, false);
    let dir = tempfile::tempdir().unwrap();
    domain_spec(dir.path(), &id, &["www.missing.example"]);
    let (code, _, all) = smoke_json(dir.path());
    assert_eq!(code, Some(1), "{all}");
    assert!(
        all.contains("www.missing.example is not added to web")
            && all.contains("it has www.other.example"),
        "{all}"
    );
}

#[test]
fn a_custom_domain_that_is_not_a_host_is_refused_at_its_place_with_no_request() {
    let fake = &stand_in().fake;
    let id = fake.add_service("typo-site", Kind::StaticSite);
    let dir = tempfile::tempdir().unwrap();
    domain_spec(dir.path(), &id, &["https://www.example.com"]);
    let out = run(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // At its place: the line and column of the value, with what is wrong.
    assert!(
        text(&out).contains("staging.toml:9:") && text(&out).contains("no scheme"),
        "{}",
        text(&out)
    );
    assert!(fake.requests_for(&id).is_empty());
    // A misspelt key is refused too, with a suggestion.
    spec(
        dir.path(),
        &format!(
            r#"[project]
name = "site"

[environments.staging]
provider = "render"

[services.web]
settings = {{ service_id = "{id}", custom_domain = ["www.example.com"] }}
"#
        ),
    );
    let out = run(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("custom_domains"), "{}", text(&out));
}

/// The secret a service prints, as is and base64-encoded (alone, and after `user:` as an
/// HTTP Basic credential, so at another alignment).
const LOG_CANARY: &str = "canary-logs-5d2e8f1a9b3c7d6e";
const LOG_CANARY_B64: &str = "Y2FuYXJ5LWxvZ3MtNWQyZThm";
const LOG_CANARY_BASIC_B64: &str = "YW5hcnktbG9ncy01ZDJlOGYx";

fn chatty_service(name: &str) -> (String, tempfile::TempDir) {
    let fake = &stand_in().fake;
    let id = fake.add_service(name, Kind::StaticSite);
    fake.set_logs(
        &id,
        &[
            "booting",
            &format!("connecting with token {LOG_CANARY}"),
            "encoded Y2FuYXJ5LWxvZ3MtNWQyZThmMWE5YjNjN2Q2ZQ== here",
            "Authorization: Basic dXNlcjpjYW5hcnktbG9ncy01ZDJlOGYxYTliM2M3ZDZl",
            "ready",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    spec(
        dir.path(),
        &format!(
            r#"[project]
name = "chatty"

[environments.staging]
provider = "render"
secrets = {{ dotenv = "staging.env" }}

[services.web]
settings = {{ service_id = "{id}" }}

[vars.API_TOKEN]
secret = true
"#
        ),
    );
    std::fs::write(
        dir.path().join("staging.env"),
        format!("API_TOKEN={LOG_CANARY}\n"),
    )
    .unwrap();
    (id, dir)
}

fn assert_no_canary(text: &str) {
    for form in [LOG_CANARY, LOG_CANARY_B64, LOG_CANARY_BASIC_B64] {
        assert!(
            !text.contains(form),
            "the secret leaked as `{form}`: {text}"
        );
    }
}

#[test]
fn logs_of_a_render_service_are_redacted_in_human_and_json_output() {
    let (_, dir) = chatty_service("chatty-web");
    let out = run(
        dir.path(),
        &["logs", "--env", "staging", "--service", "web"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    // The lines are there, in order, with the secret masked in each form.
    let booting = all.find("booting").unwrap_or_else(|| panic!("{all}"));
    let ready = all.find("ready").unwrap_or_else(|| panic!("{all}"));
    assert!(booting < ready, "{all}");
    assert!(all.contains("connecting with token"), "{all}");
    assert_no_canary(&all);

    let out = run(
        dir.path(),
        &["logs", "--env", "staging", "--service", "web", "--json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_no_canary(&all);
    assert!(all.contains("connecting with token"), "{all}");
}

#[test]
fn logs_follow_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let (_, dir) = chatty_service("followed-web");
    let mut child = command(
        dir.path(),
        &["logs", "--env", "staging", "--service", "web", "--follow"],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Following: the first batch is printed and the command is still running.
    let mut seen = vec![];
    while !seen.iter().any(|l: &String| l.contains("ready")) {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no lines from `logs --follow` ({e}): {seen:?}");
            }
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "--follow did not follow"
    );
    assert_no_canary(&seen.join("\n"));

    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    // A bound against a hang, not a timing claim.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("`logs --follow` did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_no_canary(&stderr);
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn a_promote_whose_smoke_fails_on_render_returns_production_to_the_deploy_live_before() {
    let fake = &stand_in().fake;
    let staging_id = fake.add_service("promo-staging", Kind::Worker);
    let production_id = fake.add_service("promo-production", Kind::Worker);
    let live_before = fake.add_live_deploy(&production_id, OLD);
    let dir = tempfile::tempdir().unwrap();
    spec(
        dir.path(),
        &format!(
            r#"[project]
name = "promo"

[environments.staging]
provider = "render"
promotes_to = "production"
deploy_timeout = "2m"

[environments.production]
provider = "render"
protected = true
deploy_timeout = "2m"

[services.worker]
http = false
settings = {{ service_id = "{staging_id}" }}
overrides.production = {{ service_id = "{production_id}" }}

[[probes]]
name = "staging-check"
environments = ["staging"]
command = {{ run = ["true"] }}

[[probes]]
name = "production-check"
environments = ["production"]
command = {{ run = ["false"] }}
"#
        ),
    );
    let out = run(dir.path(), &["up", "--env", "staging", "--commit", NEW]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = run(
        dir.path(),
        &["promote", "--to", "production", "--commit", NEW, "--json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    // Render was asked to return to the deploy live before, and that commit is live again.
    let rollbacks: Vec<String> = fake
        .requests_for(&production_id)
        .into_iter()
        .filter(|r| r.starts_with("POST ") && r.contains("/rollback"))
        .collect();
    assert_eq!(rollbacks.len(), 1, "{rollbacks:?}: {all}");
    assert!(rollbacks[0].contains(&live_before), "{rollbacks:?}");
    assert_eq!(fake.live_commit(&production_id).as_deref(), Some(OLD));
    // The report says so, verified.
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {all}"));
    let rollback = doc["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {doc}"))
        .iter()
        .find(|s| s["step"] == "rollback")
        .unwrap_or_else(|| panic!("no rollback step: {doc}"))
        .clone();
    assert_eq!(rollback["status"], "passed", "{doc}");
    assert!(rollback.to_string().contains("serving 0000000"), "{doc}");
    // And production's evidence records it.
    let recorded = files_under(&dir.path().join(".staging"))
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .any(|t| t.contains("\"production\"") && t.contains("serving 0000000"));
    assert!(
        recorded,
        "production's evidence does not record the rollback"
    );
    stand_in().prism.assert_no_violations();
}

/// The spec of the promote tests below: a worker, production's smoke failing, and two
/// production variables (one production already has with another value, one it lacks).
fn promote_spec(dir: &Path, staging_id: &str, production_id: &str) {
    spec(
        dir,
        &format!(
            r#"[project]
name = "promo"

[environments.staging]
provider = "render"
promotes_to = "production"
deploy_timeout = "2m"

[environments.production]
provider = "render"
protected = true
deploy_timeout = "2m"

[services.worker]
http = false
settings = {{ service_id = "{staging_id}" }}
overrides.production = {{ service_id = "{production_id}" }}

[vars.EMAIL_PROVIDER]
values = {{ staging = "log", production = "postmark" }}

[vars.NEW_FLAG]
values = {{ staging = "on", production = "on" }}

[[probes]]
name = "staging-check"
environments = ["staging"]
command = {{ run = ["true"] }}

[[probes]]
name = "production-check"
environments = ["production"]
command = {{ run = ["false"] }}
"#
        ),
    );
}

#[test]
fn a_promote_whose_smoke_fails_on_render_leaves_productions_variables_as_they_were() {
    let fake = &stand_in().fake;
    let staging_id = fake.add_service("vars-staging", Kind::Worker);
    let production_id = fake.add_service("vars-production", Kind::Worker);
    let live_before = fake.add_live_deploy(&production_id, OLD);
    fake.set_env(&production_id, "EMAIL_PROVIDER", "sendgrid");
    fake.set_env(&production_id, "KEEP_ME", "untouched");
    let before = fake.env(&production_id);
    let dir = tempfile::tempdir().unwrap();
    promote_spec(dir.path(), &staging_id, &production_id);
    let out = run(dir.path(), &["up", "--env", "staging", "--commit", NEW]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(
        dir.path(),
        &["promote", "--to", "production", "--commit", NEW],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    // The run did write them (so the restore is what put them back) ...
    let writes = fake
        .requests_for(&production_id)
        .into_iter()
        .filter(|r| r.contains("/env-vars") && !r.starts_with("GET "))
        .count();
    assert!(writes >= 2, "{all}");
    // ... and production's variables are what they were: the changed one has its old value,
    // the added one is gone, the others untouched.
    assert_eq!(fake.env(&production_id), before, "{all}");
    // The live deploy changed, so it was rolled back, after the variables were set back.
    let reqs = fake.requests_for(&production_id);
    let rollback = reqs
        .iter()
        .position(|r| r.starts_with("POST ") && r.contains("/rollback"))
        .unwrap_or_else(|| panic!("no rollback: {all}"));
    assert!(reqs[rollback].contains(&live_before));
    let last_env_write = reqs
        .iter()
        .rposition(|r| r.contains("/env-vars") && !r.starts_with("GET "))
        .unwrap();
    assert!(last_env_write < rollback, "{reqs:?}");
    assert_eq!(fake.live_commit(&production_id).as_deref(), Some(OLD));
    assert!(all.contains("worker variables"), "{all}");
    stand_in().prism.assert_no_violations();
}

#[test]
fn a_promote_whose_deploy_never_goes_live_on_render_restores_the_variables_and_rolls_nothing_back()
{
    let fake = &stand_in().fake;
    let staging_id = fake.add_service("dead-staging", Kind::Worker);
    let production_id = fake.add_service("dead-production", Kind::Worker);
    fake.add_live_deploy(&production_id, OLD);
    fake.set_env(&production_id, "EMAIL_PROVIDER", "sendgrid");
    let before = fake.env(&production_id);
    let dir = tempfile::tempdir().unwrap();
    promote_spec(dir.path(), &staging_id, &production_id);
    let out = run(dir.path(), &["up", "--env", "staging", "--commit", NEW]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    fake.plan_next_deploy(&production_id, &["build_in_progress", "build_failed"]);
    let out = run(
        dir.path(),
        &["promote", "--to", "production", "--commit", NEW],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert_eq!(fake.env(&production_id), before, "{all}");
    assert!(
        !fake
            .requests_for(&production_id)
            .iter()
            .any(|r| r.contains("/rollback")),
        "a deploy that never went live was rolled back: {all}"
    );
    assert_eq!(fake.live_commit(&production_id).as_deref(), Some(OLD));
    stand_in().prism.assert_no_violations();
}
