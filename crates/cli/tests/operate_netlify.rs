//! Drift against what Netlify holds, from the CLI, against Netlify's own API description
//! (`prism proxy --errors`) in front of the team's stateful fake (the provider crate's test
//! support, reused as is): when production's context holds another value than staging for
//! a `same_as` variable, `diff` reports the rule broken on the platform side and `up` on
//! staging fails before anything is deployed.

mod common;
#[path = "../../provider-netlify/tests/support/mod.rs"]
mod netlify;

use std::path::Path;

use common::{run_staging, text};
use serde_json::json;

const COMMIT: &str = "1111111aaaaaaaabbbbbbbbccccccccddddddddd";

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

/// A site whose `develop` branch context (staging) and production context hold
/// `DEFAULT_ORGANIZATION_ID` as given, and a spec that says the two must be the same.
fn scene(staging_value: &str, production_value: &str) -> (String, tempfile::TempDir) {
    let fake = &netlify::stack().fake;
    let (site, _) = fake.add_site("orgs");
    fake.push(&site, "develop", COMMIT);
    fake.with_site(&site, |s| {
        s.env.push(json!({ "key": "DEFAULT_ORGANIZATION_ID", "scopes": ["builds"], "values": [
            { "id": "v1", "context": "production", "value": production_value },
            { "id": "v2", "context": "branch", "context_parameter": "develop", "value": staging_value },
        ]}));
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        format!(
            r#"[project]
name = "orgs"

[environments.staging]
provider = "netlify"
promotes_to = "production"
deploy_timeout = "2m"
settings = {{ site_id = "{site}", context = "branch:develop" }}

[environments.production]
provider = "netlify"
protected = true
settings = {{ site_id = "{site}", context = "production" }}

[services.web]

[vars.DEFAULT_ORGANIZATION_ID]
value = "org-shared-1"
rules = {{ same_as = "production" }}
"#
        ),
    )
    .unwrap();
    (site, dir)
}

#[test]
fn diff_reports_a_same_as_rule_broken_on_the_netlify_platform_side() {
    let (site, dir) = scene("org-shared-1", "org-prod-2");
    let out = run(dir.path(), &["diff", "staging", "production", "--json"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    for value in ["org-shared-1", "org-prod-2"] {
        assert!(!all.contains(value), "a value was shown ({value}): {all}");
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {all}"));
    let broken = doc.to_string();
    assert!(
        broken.contains("DEFAULT_ORGANIZATION_ID (service web, on the platform)")
            && broken.contains("from the platform")
            && broken.contains("same_as"),
        "{doc}"
    );
    // Human output names the platform side too.
    let out = run(dir.path(), &["diff", "staging", "production"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("from the platform"), "{}", text(&out));
    assert!(
        netlify::stack()
            .fake
            .calls(&site)
            .iter()
            .all(|c| c.starts_with("GET ")),
        "diff wrote to Netlify: {:?}",
        netlify::stack().fake.calls(&site)
    );
}

#[test]
fn diff_finds_no_broken_rule_when_the_netlify_contexts_agree() {
    let (_, dir) = scene("org-shared-1", "org-shared-1");
    let out = run(dir.path(), &["diff", "staging", "production"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn up_on_staging_fails_before_any_deploy_when_netlify_production_breaks_a_same_as_rule() {
    let (site, dir) = scene("org-shared-1", "org-prod-2");
    let out = run(
        dir.path(),
        &["up", "--env", "staging", "--commit", COMMIT, "--json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!all.contains("org-prod-2"), "{all}");
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {all}"));
    let step = |name: &str| {
        doc["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("no steps: {doc}"))
            .iter()
            .find(|s| s["step"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(step("drift")["status"], "failed", "{doc}");
    assert!(
        step("drift").to_string().contains("from the platform"),
        "{doc}"
    );
    assert_ne!(step("deploy")["status"], "passed", "{doc}");
    let calls = netlify::stack().fake.calls(&site);
    assert!(
        calls.iter().all(|c| c.starts_with("GET ")),
        "up wrote to Netlify before refusing: {calls:?}"
    );
    assert!(
        netlify::stack()
            .fake
            .with_site(&site, |s| s.deploys.is_empty()),
        "a build was started"
    );
}

/// A site in the production context whose spec names `domain` as a custom domain; the site
/// holds `custom_domain`, `aliases` and a certificate as given.
fn domain_scene(
    domain: &str,
    custom_domain: Option<&str>,
    aliases: &[&str],
    certificate: Option<(&str, &[&str])>,
) -> (String, String, tempfile::TempDir) {
    let fake = &netlify::stack().fake;
    let (site, name) = fake.add_site("domains");
    fake.with_site(&site, |s| {
        s.custom_domain = custom_domain.map(str::to_owned);
        s.domain_aliases = aliases.iter().map(|a| a.to_string()).collect();
        s.certificate = certificate.map(|(state, names)| {
            (
                state.to_owned(),
                names.iter().map(|n| n.to_string()).collect(),
            )
        });
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        format!(
            r#"[project]
name = "domains"

[environments.staging]
provider = "netlify"
settings = {{ site_id = "{site}", context = "production" }}

[services.web]
settings = {{ custom_domains = ["{domain}"] }}
"#
        ),
    )
    .unwrap();
    (site, name, dir)
}

fn smoke(dir: &Path) -> std::process::Output {
    run(dir, &["smoke", "--env", "staging", "--commit", COMMIT])
}

#[test]
fn a_netlify_custom_domain_covered_by_the_sites_certificate_passes_smoke() {
    let (site, _, dir) = domain_scene(
        "www.covered.example",
        Some("covered.example"),
        &["www.covered.example"],
        Some(("issued", &["covered.example", "www.covered.example"])),
    );
    let out = smoke(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("custom domain www.covered.example"),
        "{}",
        text(&out)
    );
    let calls = netlify::stack().fake.calls(&site);
    assert!(calls.iter().all(|c| c.starts_with("GET ")), "{calls:?}");
}

#[test]
fn an_unverified_netlify_custom_domain_fails_smoke_with_the_record_to_create() {
    let (_, name, dir) = domain_scene(
        "www.pending.example",
        Some("www.pending.example"),
        &[],
        None,
    );
    let out = smoke(dir.path());
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!("www.pending.example CNAME {name}.netlify.app")),
        "{all}"
    );
    assert!(all.contains("no certificate"), "{all}");
}

#[test]
fn a_custom_domain_not_on_the_netlify_site_fails_smoke_saying_so() {
    let (_, name, dir) = domain_scene(
        "www.elsewhere.example",
        Some("shop.example"),
        &["www.shop.example"],
        Some(("issued", &["shop.example", "www.shop.example"])),
    );
    let out = smoke(dir.path());
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!(
            "www.elsewhere.example is not a domain of site {name}"
        )) && all.contains("it has shop.example, www.shop.example"),
        "{all}"
    );
}

/// A site whose staging (branch `develop`) and production contexts are two environments,
/// production's smoke failing; production holds `EMAIL_PROVIDER` with another value than
/// the spec's, and lacks `NEW_FLAG`.
fn promote_scene() -> (String, tempfile::TempDir) {
    let fake = &netlify::stack().fake;
    let (site, _) = fake.add_site("promo");
    fake.push(&site, "develop", COMMIT);
    fake.push(&site, "main", COMMIT);
    fake.with_site(&site, |s| {
        s.env.push(json!({ "key": "EMAIL_PROVIDER", "scopes": ["builds", "functions", "runtime"], "values": [
            { "id": "v1", "context": "production", "value": "sendgrid" },
            { "id": "v2", "context": "branch", "context_parameter": "develop", "value": "log" },
        ]}));
        s.env.push(json!({ "key": "KEEP_ME", "scopes": ["builds"], "values": [
            { "id": "v3", "context": "all", "value": "untouched" },
        ]}));
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        format!(
            r#"[project]
name = "promo"

[environments.staging]
provider = "netlify"
promotes_to = "production"
deploy_timeout = "2m"
settings = {{ site_id = "{site}", context = "branch:develop" }}

[environments.production]
provider = "netlify"
protected = true
deploy_timeout = "2m"
settings = {{ site_id = "{site}", context = "production" }}

[services.web]
http = false

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
    )
    .unwrap();
    (site, dir)
}

#[test]
fn a_promote_whose_smoke_fails_on_netlify_leaves_productions_variables_as_they_were() {
    let (site, dir) = promote_scene();
    let fake = &netlify::stack().fake;
    let out = run(dir.path(), &["up", "--env", "staging", "--commit", COMMIT]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before = fake.with_site(&site, |s| s.env.clone());
    let calls_before = fake.calls(&site).len();
    let out = run(
        dir.path(),
        &["promote", "--to", "production", "--commit", COMMIT],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let during = fake.calls(&site)[calls_before..].to_vec();
    assert!(
        during
            .iter()
            .any(|c| !c.starts_with("GET ") && c.contains("env")),
        "the run wrote no variable: {during:?}"
    );
    // Every variable has the values per context it had; Netlify gives a value written again
    // a new id of its own, so ids are left out of the comparison.
    let values = |env: Vec<serde_json::Value>| {
        let mut out: Vec<(String, String, String, String)> = vec![];
        for var in env {
            for v in var["values"].as_array().cloned().unwrap_or_default() {
                out.push((
                    var["key"].as_str().unwrap_or_default().to_owned(),
                    v["context"].as_str().unwrap_or_default().to_owned(),
                    v["context_parameter"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    v["value"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        out.sort();
        out
    };
    let after = fake.with_site(&site, |s| s.env.clone());
    assert_eq!(values(after), values(before), "{all}");
    assert!(
        all.contains("set back: EMAIL_PROVIDER") && all.contains("NEW_FLAG"),
        "{all}"
    );
    netlify::stack().proxy.assert_no_violations();
}

#[test]
fn a_netlify_secret_whose_value_cannot_be_read_is_never_deleted_by_the_restore() {
    // Production's secret: Netlify never returns its value, so the restore cannot tell it
    // from a variable the run added. Deleting it would destroy production's secret: it is
    // left with the value the run set, and the rollback step says so and fails.
    let (site, dir) = promote_scene();
    let fake = &netlify::stack().fake;
    fake.with_site(&site, |s| {
        s.env.push(json!({ "key": "API_TOKEN", "scopes": ["builds", "functions", "runtime"], "is_secret": true, "values": [
            { "id": "s1", "context": "production", "value": "canary-production-secret-1" },
        ]}));
    });
    let spec = dir.path().join("staging.toml");
    let toml = std::fs::read_to_string(&spec)
        .unwrap()
        .replacen(
            "[[probes]]",
            "[vars.API_TOKEN]\nsecret = true\n\n[[probes]]",
            1,
        )
        .replace(
            "[environments.staging]\n",
            "[environments.staging]\nsecrets = { dotenv = \"staging.env\" }\n",
        )
        .replace(
            "[environments.production]\n",
            "[environments.production]\nsecrets = { dotenv = \"production.env\" }\n",
        );
    for (env, value) in [
        ("staging", "canary-staging-token"),
        ("production", "canary-new-token"),
    ] {
        std::fs::write(
            dir.path().join(format!("{env}.env")),
            format!("API_TOKEN={value}\n"),
        )
        .unwrap();
    }
    std::fs::write(&spec, toml).unwrap();
    let out = run(dir.path(), &["up", "--env", "staging", "--commit", COMMIT]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(
        dir.path(),
        &["promote", "--to", "production", "--commit", COMMIT],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let token = fake.with_site(&site, |s| {
        s.env
            .iter()
            .find(|v| v["key"] == "API_TOKEN")
            .cloned()
            .expect("production's secret was deleted")
    });
    assert!(
        token["values"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["context"] == "production"),
        "{token}"
    );
    assert!(all.contains("NOT restored: API_TOKEN"), "{all}");
    assert!(!all.contains("canary-"), "{all}");
}
