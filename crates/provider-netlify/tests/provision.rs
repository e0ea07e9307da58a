//! Creation on Netlify (`create` in the spec, issue 21) against Netlify's own API
//! description: `prism proxy --errors` in front of the stateful fake, so every request that
//! enables a branch deploy or creates a site, and every answer, is checked against it;
//! `prism mock` for the reads of the site as the description shapes them.

mod support;

use std::time::Duration;

use serde_json::json;
use staging_core::Error;
use staging_core::provision::Provisioner;
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_provider_netlify::NetlifyProvisioner;
use support::fake::Fault;

/// A spec with a `staging` environment on `staging_site` (`site_id = "…"` or
/// `site_name = "…"`) in `context`, a protected `production` on `production_site`, and
/// service `web` with `create` and `service_settings`.
fn spec(staging: &str, production: &str, create: &str, service_settings: &str) -> LoadedSpec {
    parse(spec_text(staging, production, create, service_settings))
}

fn parse(text: String) -> LoadedSpec {
    LoadedSpec::parse("staging.toml", text, LoadOptions::new(&["netlify"]))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn spec_text(staging: &str, production: &str, create: &str, service_settings: &str) -> String {
    format!(
        r#"[project]
name = "shop"

[environments.staging]
provider = "netlify"
promotes_to = "production"
settings = {{ {staging} }}

[environments.production]
provider = "netlify"
protected = true
settings = {{ {production}, context = "production" }}

[services.web]
create = {create}
settings = {{ {service_settings} }}
"#
    )
}

fn provisioner_at(base: &str, spec: &LoadedSpec, environment: &str) -> NetlifyProvisioner {
    NetlifyProvisioner::for_spec(spec, environment, support::builder(base).build().unwrap())
        .unwrap()
        .with_confirm_wait(Duration::from_secs(5))
}

/// Through the validating proxy in front of the fake.
fn provisioner(spec: &LoadedSpec, environment: &str) -> NetlifyProvisioner {
    provisioner_at(&support::stack().proxy.url, spec, environment)
}

/// A site of the fake that deploys `main` (production) and `develop`.
fn site_with_branches(branches: &[&str]) -> (String, String) {
    let fake = &support::stack().fake;
    let (id, name) = fake.add_site("shop");
    fake.with_site(&id, |s| {
        s.allowed_branches = branches.iter().map(|b| b.to_string()).collect()
    });
    (id, name)
}

fn branches(site: &str) -> Vec<String> {
    support::stack()
        .fake
        .with_site(site, |s| s.allowed_branches.clone())
}

fn writes(site: &str) -> Vec<String> {
    support::stack()
        .fake
        .calls(site)
        .into_iter()
        .filter(|c| !c.starts_with("GET "))
        .collect()
}

#[tokio::test]
async fn a_missing_branch_context_is_enabled_keeping_every_branch_and_a_second_run_creates_nothing()
{
    let (site, name) = site_with_branches(&["main", "develop"]);
    let spec = spec(
        &format!(r#"site_id = "{site}", context = "branch:staging""#),
        &format!(r#"site_id = "{site}""#),
        "true",
        "",
    );
    // `create = true` applies to production too, which is protected: refused offline.
    assert!(spec.check_creation_allowed("production").is_err());
    let p = provisioner(&spec, "staging");

    let missing = p.missing().await.expect("getSite");
    assert_eq!(missing.len(), 1, "{missing:?}");
    let c = &missing[0];
    assert_eq!(
        (c.kind.as_str(), c.name.as_str(), c.owner.as_str()),
        ("netlify branch deploy", "staging", "service web")
    );
    assert_eq!(c.settings["site"], name);
    assert_eq!(c.settings["allowed_branches"], "main, develop + staging");
    assert!(
        writes(&site).is_empty(),
        "missing() wrote: {:?}",
        writes(&site)
    );

    let id = p
        .create(&staging_core::testkit::creation_target(c))
        .await
        .expect("updateSite, accepted by the contract");
    assert_eq!(id, site);
    assert_eq!(branches(&site), ["main", "develop", "staging"]);
    let updates = support::stack()
        .fake
        .with_site(&site, |s| s.updates.clone());
    assert_eq!(
        updates,
        [json!({ "build_settings": { "allowed_branches": ["main", "develop", "staging"] } })],
        "the update sends the branch list and nothing else"
    );

    let again = provisioner(&spec, "staging").missing().await.unwrap();
    assert!(again.is_empty(), "{again:?}");
    // Creating it again (a retried step) changes nothing either.
    assert_eq!(
        p.create(&staging_core::testkit::creation_target(c))
            .await
            .unwrap(),
        site
    );
    assert_eq!(writes(&site), ["PATCH site"]);
}

#[tokio::test]
async fn a_branch_deploy_context_enables_its_branch_setting() {
    let (site, _) = site_with_branches(&["main"]);
    let spec = spec(
        &format!(r#"site_id = "{site}", context = "branch-deploy", branch = "qa""#),
        &format!(r#"site_id = "{site}""#),
        r#"{ like = "production" }"#,
        "",
    );
    let p = provisioner(&spec, "staging");
    let missing = p.missing().await.unwrap();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].name, "qa");
    p.create(&staging_core::testkit::creation_target(&missing[0]))
        .await
        .unwrap();
    assert_eq!(branches(&site), ["main", "qa"]);
}

#[tokio::test]
async fn a_site_that_deploys_every_branch_or_a_production_context_has_nothing_to_create() {
    // An empty list deploys every branch: adding one would narrow it to that branch.
    let (all, _) = site_with_branches(&[]);
    let spec_all = spec(
        &format!(r#"site_id = "{all}", context = "branch:staging""#),
        &format!(r#"site_id = "{all}""#),
        r#"{ like = "production" }"#,
        "",
    );
    assert!(
        provisioner(&spec_all, "staging")
            .missing()
            .await
            .unwrap()
            .is_empty()
    );

    let (prod, _) = site_with_branches(&["main"]);
    let spec_prod = spec(
        &format!(r#"site_id = "{prod}", context = "production""#),
        &format!(r#"site_id = "{prod}""#),
        r#"{ like = "production" }"#,
        "",
    );
    assert!(
        provisioner(&spec_prod, "staging")
            .missing()
            .await
            .unwrap()
            .is_empty()
    );
    for site in [all, prod] {
        assert!(writes(&site).is_empty(), "{:?}", writes(&site));
    }
}

#[tokio::test]
async fn a_server_error_on_the_update_names_site_and_branch_and_removes_nothing() {
    let (site, name) = site_with_branches(&["main", "develop"]);
    let spec = spec(
        &format!(r#"site_id = "{site}", context = "branch:staging""#),
        &format!(r#"site_id = "{site}""#),
        r#"{ like = "production" }"#,
        "",
    );
    let p = provisioner(&spec, "staging");
    let missing = p.missing().await.unwrap();
    support::stack()
        .fake
        .with_site(&site, |s| s.update_fault = Some(Fault::Server(502)));
    let err = p
        .create(&staging_core::testkit::creation_target(&missing[0]))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        text.contains("branch deploy `staging`") && text.contains(&name) && text.contains(&site),
        "{text}"
    );
    assert!(text.contains("nothing was removed"), "{text}");
    assert_eq!(branches(&site), ["main", "develop"]);

    // The next run finds it still missing and enables it.
    let missing = p.missing().await.unwrap();
    p.create(&staging_core::testkit::creation_target(&missing[0]))
        .await
        .unwrap();
    assert_eq!(branches(&site), ["main", "develop", "staging"]);
}

#[tokio::test]
async fn build_settings_of_an_unexpected_shape_fail_naming_site_and_branch_and_change_nothing() {
    let (site, name) = site_with_branches(&["main"]);
    support::stack().fake.with_site(&site, |s| {
        s.build_settings_override =
            Some(json!({ "repo_path": "acme/shop", "allowed_branches": "main" }))
    });
    let spec = spec(
        &format!(r#"site_id = "{site}", context = "branch:staging""#),
        &format!(r#"site_id = "{site}""#),
        r#"{ like = "production" }"#,
        "",
    );
    // Through the proxy, the answer breaks the description: Prism refuses it.
    let err = provisioner(&spec, "staging").missing().await.unwrap_err();
    assert!(!err.to_string().is_empty());
    // Straight from the fake, the provisioner itself refuses the shape, naming the site.
    let err = provisioner_at(&support::stack().fake.url, &spec, "staging")
        .missing()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&name) && text.contains(&site) && text.contains("branch `staging`"),
        "{text}"
    );
    assert!(text.contains("nothing was changed"), "{text}");
    assert!(writes(&site).is_empty(), "{:?}", writes(&site));
}

#[tokio::test]
async fn a_site_linked_to_no_repository_is_refused_naming_it() {
    let (site, name) = site_with_branches(&["main"]);
    support::stack().fake.with_site(&site, |s| s.repo = None);
    let spec = spec(
        &format!(r#"site_id = "{site}", context = "branch:staging""#),
        &format!(r#"site_id = "{site}""#),
        r#"{ like = "production" }"#,
        "",
    );
    let err = provisioner(&spec, "staging").missing().await.unwrap_err();
    assert!(
        err.to_string().contains(&name) && err.to_string().contains("linked to no repository"),
        "{err}"
    );
}

#[tokio::test]
async fn a_named_site_that_does_not_exist_is_created_from_the_settings_then_its_branch_enabled() {
    let (prod, _) = site_with_branches(&["main"]);
    let name = format!("shop-staging-{prod}");
    let spec = spec(
        &format!(r#"site_name = "{name}", context = "branch:staging""#),
        &format!(r#"site_id = "{prod}""#),
        r#"{ like = "production" }"#,
        r#"repo = "https://github.com/acme/shop.git", production_branch = "main", build_command = "npm run build", publish_dir = "dist""#,
    );
    let p = provisioner(&spec, "staging");
    let missing = p.missing().await.expect("listSites by name");
    let kinds: Vec<(&str, &str)> = missing
        .iter()
        .map(|c| (c.kind.as_str(), c.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("netlify site", name.as_str()),
            ("netlify branch deploy", "staging")
        ]
    );
    assert_eq!(missing[0].settings["repo"], "github:acme/shop");
    assert_eq!(missing[0].settings["build_command"], "npm run build");
    assert_eq!(missing[1].settings["allowed_branches"], "main, staging");

    let id = p
        .create(&staging_core::testkit::creation_target(&missing[0]))
        .await
        .expect("createSiteInTeam");
    p.create(&staging_core::testkit::creation_target(&missing[1]))
        .await
        .expect("updateSite");
    let fake = &support::stack().fake;
    let (team, body) = fake
        .state
        .lock()
        .unwrap()
        .created
        .iter()
        .find(|(_, b)| b["name"] == name.as_str())
        .cloned()
        .expect("created");
    assert_eq!(
        team.as_deref(),
        Some("acme-team"),
        "next to the copied site"
    );
    assert_eq!(body["repo"]["repo_path"], "acme/shop");
    assert_eq!(body["repo"]["repo_branch"], "main");
    assert_eq!(body["repo"]["cmd"], "npm run build");
    assert_eq!(branches(&id), ["main", "staging"]);

    assert!(
        provisioner(&spec, "staging")
            .missing()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn like_production_copies_the_build_settings_and_never_a_variable_value() {
    let (prod, prod_name) = site_with_branches(&["main"]);
    let fake = &support::stack().fake;
    fake.with_site(&prod, |s| {
        s.cmd = Some("hugo --minify".into());
        s.dir = Some("public".into());
        s.base = Some("site".into());
        s.installation_id = Some(4242);
        s.build_env = vec![("PROD_API_TOKEN".into(), "prod-canary-value-77".into())];
        s.env.push(
            json!({ "key": "DATABASE_URL", "scopes": ["builds"], "values": [
                { "id": "v1", "context": "production", "value": "prod-canary-db-88" }
            ]}),
        );
    });
    let name = format!("shop-staging-{prod}");
    let spec = parse(format!(
        "{}\n[services.web.overrides.staging]\nproduction_branch = \"staging\"\n",
        spec_text(
            &format!(r#"site_name = "{name}", context = "production""#),
            &format!(r#"site_id = "{prod}""#),
            r#"{ like = "production" }"#,
            "",
        )
    ));
    let p = provisioner(&spec, "staging");
    let missing = p.missing().await.unwrap();
    assert_eq!(
        missing.len(),
        1,
        "a production context needs no branch deploy: {missing:?}"
    );
    let c = &missing[0];
    assert_eq!(c.like.as_deref(), Some("production"));
    assert_eq!(
        c.settings["copied from"],
        format!("site {prod_name} (production)")
    );
    assert_eq!(c.settings["build_command"], "hugo --minify");
    assert_eq!(c.settings["production_branch"], "staging");
    p.create(&staging_core::testkit::creation_target(c))
        .await
        .unwrap();

    let (_, body) = fake
        .state
        .lock()
        .unwrap()
        .created
        .iter()
        .find(|(_, b)| b["name"] == name.as_str())
        .cloned()
        .unwrap();
    let sent = body.to_string();
    assert!(
        !sent.contains("prod-canary") && !sent.contains("PROD_API_TOKEN") && !sent.contains("env"),
        "a production variable was sent: {sent}"
    );
    assert_eq!(body["repo"]["cmd"], "hugo --minify");
    assert_eq!(body["repo"]["dir"], "public");
    assert_eq!(body["repo"]["base"], "site");
    assert_eq!(body["repo"]["installation_id"], 4242);
    assert_eq!(body["repo"]["repo_branch"], "staging");
    assert!(!format!("{missing:?}").contains("prod-canary"));
}

#[tokio::test]
async fn a_new_site_for_a_branch_context_without_a_repository_is_refused_before_any_write() {
    let (prod, _) = site_with_branches(&["main"]);
    let name = format!("bare-{prod}");
    let spec = spec(
        &format!(r#"site_name = "{name}", context = "branch:staging""#),
        &format!(r#"site_id = "{prod}""#),
        "true",
        "",
    );
    let err = provisioner(&spec, "staging").missing().await.unwrap_err();
    assert!(matches!(err, Error::ConfigInvalid { .. }), "{err:?}");
    assert!(err.to_string().contains("without a repository"), "{err}");
    assert!(
        !support::stack()
            .fake
            .state
            .lock()
            .unwrap()
            .created
            .iter()
            .any(|(_, b)| b["name"] == name.as_str())
    );
}

#[tokio::test]
async fn a_missing_site_id_is_an_error_not_a_creation() {
    let spec = spec(
        r#"site_id = "site-nope", context = "branch:staging""#,
        r#"site_id = "site-nope""#,
        r#"{ like = "production" }"#,
        "",
    );
    let err = provisioner(&spec, "staging").missing().await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("site_name"), "{err}");
}

#[tokio::test]
async fn the_site_read_as_the_description_shapes_it_finds_the_branch_missing() {
    // Prism's examples: one site named "string", deploying branch "string" from repo "string".
    let spec = spec(
        r#"site_name = "string", context = "branch:staging""#,
        r#"site_name = "string""#,
        r#"{ like = "production" }"#,
        "",
    );
    let missing = provisioner_at(&support::mock().url, &spec, "staging")
        .missing()
        .await
        .expect("listSites + build_settings as described");
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].name, "staging");
}

#[test]
fn creation_settings_are_checked_at_their_place() {
    use staging_core::ProviderFactory;
    let text = spec_text(
        r#"site_name = "x", context = "branch:staging""#,
        r#"site_name = "y""#,
        "true",
        r#"repo = "https://example.com/acme/shop""#,
    );
    let spec = parse(text.clone());
    let err = staging_provider_netlify::NetlifyFactory
        .check(&spec, "staging")
        .unwrap_err();
    assert!(
        err.to_string().starts_with("staging.toml:16:") && err.to_string().contains("github.com"),
        "{err}"
    );
    let typo = LoadedSpec::parse(
        "staging.toml",
        text.replace("repo =", "repository ="),
        LoadOptions::new(&["netlify"]),
    );
    let err = match typo {
        Err(e) => e,
        Ok(s) => staging_provider_netlify::NetlifyFactory
            .check(&s, "staging")
            .unwrap_err(),
    };
    assert!(err.to_string().contains("repository"), "{err}");
}

#[tokio::test]
async fn without_like_the_site_is_created_from_its_own_settings_in_the_tokens_team() {
    let (prod, _) = site_with_branches(&["main"]);
    let name = format!("own-{prod}");
    let spec = spec(
        &format!(r#"site_name = "{name}", context = "production""#),
        &format!(r#"site_id = "{prod}""#),
        "true",
        r#"repo = "https://gitlab.com/acme/shop", production_branch = "staging", publish_dir = "out""#,
    );
    let p = provisioner(&spec, "staging");
    let missing = p.missing().await.unwrap();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(!missing[0].settings.contains_key("copied from"));
    let id = p
        .create(&staging_core::testkit::creation_target(&missing[0]))
        .await
        .expect("createSite");
    let (team, body) = support::stack()
        .fake
        .state
        .lock()
        .unwrap()
        .created
        .iter()
        .find(|(_, b)| b["name"] == name.as_str())
        .cloned()
        .unwrap();
    assert_eq!(team, None, "POST /sites");
    assert_eq!(
        body,
        json!({ "name": name, "repo": { "provider": "gitlab", "repo_path": "acme/shop",
            "repo_url": "https://gitlab.com/acme/shop", "repo_branch": "staging", "dir": "out" } })
    );
    assert!(support::stack().fake.with_site(&id, |s| s.name == name));
    assert!(
        provisioner(&spec, "staging")
            .missing()
            .await
            .unwrap()
            .is_empty()
    );
}
