//! Standing a Render environment up from nothing (issue 21), against the stateful fake
//! behind `prism proxy --errors`: every create request and every answer is checked against
//! Render's own API description. Each test uses names of its own (the fake is shared).

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use staging_core::pipeline::{Pipeline, RunContext, RunReport, StepStatus, ValidateStep};
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{Creation, ProviderFactory, ProviderRegistry, ProvisionStep, Result};
use staging_provider_render::RenderFactory;
use support::fake::Store;
use support::{API_KEY, Fault, stand_in};

fn lookup(name: &str) -> Option<String> {
    match name {
        "RENDER_API_KEY" => Some(API_KEY.to_owned()),
        "RENDER_API_URL" => Some(stand_in().prism.url()),
        _ => None,
    }
}

fn spec(text: &str) -> Result<Arc<LoadedSpec>> {
    LoadedSpec::parse(
        "staging.toml",
        text.to_owned(),
        LoadOptions::new(&["render"]),
    )
    .map(Arc::new)
}

fn factory() -> RenderFactory {
    RenderFactory::with_lookup(lookup)
}

async fn missing(spec: &LoadedSpec, env: &str) -> Vec<Creation> {
    factory().check(spec, env).expect("settings check");
    factory()
        .provisioner(spec, env)
        .unwrap()
        .expect("render creates")
        .missing()
        .await
        .unwrap()
}

/// `staging up`'s first steps: validate, then provision.
async fn provision(spec: Arc<LoadedSpec>, env: &str) -> RunReport {
    let registry = ProviderRegistry::new().register(factory());
    let pipeline = Pipeline::new()
        .step(ValidateStep::new(registry.clone()))
        .step(ProvisionStep::new(registry));
    let mut ctx = RunContext::new(spec, env, "c0ffee0123456789").unwrap();
    staging_core::testkit::assume_isolated(&mut ctx);
    pipeline.run(&mut ctx).await
}

/// The body of the one `POST {path}` that created `name`.
fn created_body(path: &str, name: &str) -> Value {
    let posts: Vec<String> = stand_in()
        .fake
        .requests_mentioning(&format!("\"name\":\"{name}\""))
        .into_iter()
        .filter(|r| r.starts_with(&format!("POST {path} ")))
        .collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let body = posts[0].splitn(3, ' ').nth(2).unwrap();
    serde_json::from_str(body).unwrap()
}

fn creates_of(name: &str) -> Vec<String> {
    stand_in()
        .fake
        .requests_mentioning(name)
        .into_iter()
        .filter(|r| r.starts_with("POST "))
        .collect()
}

const CANARY_PROD_SECRET: &str = "canary-prod-secret-2b7e9d41";
const CANARY_PROD_DB: &str = "canary-prod-db-url-8c3f5a60";

/// Production as a team has it: a Rails web service with a disk, a worker, a Postgres and
/// a Key Value, with secret values in the services' variables.
fn production(prefix: &str) {
    let fake = &stand_in().fake;
    let web = fake.add_defined_service(
        &format!("{prefix}-web"),
        json!({
            "type": "web_service", "repo": "https://github.com/acme/shop", "branch": "main",
            "serviceDetails": {
                "runtime": "ruby", "plan": "standard", "region": "frankfurt",
                "healthCheckPath": "/up",
                "envSpecificDetails": { "buildCommand": "bundle install && bin/rails assets:precompile",
                                        "startCommand": "bundle exec puma -C config/puma.rb" },
                "disk": { "name": "uploads", "mountPath": "/var/data", "sizeGB": 10 }
            }
        }),
    );
    let worker = fake.add_defined_service(
        &format!("{prefix}-worker"),
        json!({
            "type": "background_worker", "repo": "https://github.com/acme/shop", "branch": "main",
            "serviceDetails": {
                "runtime": "ruby", "plan": "pro", "region": "frankfurt",
                "envSpecificDetails": { "buildCommand": "bundle install",
                                        "startCommand": "bundle exec sidekiq" }
            }
        }),
    );
    for id in [&web, &worker] {
        fake.set_env(id, "SECRET_KEY_BASE", CANARY_PROD_SECRET);
        fake.set_env(id, "DATABASE_URL", CANARY_PROD_DB);
    }
    fake.add_datastore(
        Store::Postgres,
        &format!("{prefix}-db"),
        json!({ "plan": "pro_4gb", "version": "16", "region": "frankfurt",
                "enableHighAvailability": true, "diskSizeGB": 100,
                "databaseName": "shop", "databaseUser": "shop" }),
    );
    fake.add_datastore(
        Store::KeyValue,
        &format!("{prefix}-redis"),
        json!({ "plan": "standard", "region": "frankfurt", "maxmemoryPolicy": "allkeys_lru" }),
    );
}

fn like_production_spec(prefix: &str) -> String {
    format!(
        r#"[project]
name = "shop"

[environments.staging]
provider = "render"
promotes_to = "production"
deploy_timeout = "1m"

[environments.production]
provider = "render"
protected = true

[services.web]
health_path = "/up"
create = {{ like = "production" }}
settings = {{ service_name = "{prefix}-web", custom_domains = [] }}
overrides.staging = {{ service_name = "{prefix}-web-staging", branch = "staging", plan = "starter", custom_domains = ["staging.{prefix}.example"] }}

[services.worker]
http = false
create = {{ like = "production" }}
settings = {{ service_name = "{prefix}-worker" }}
overrides.staging = {{ service_name = "{prefix}-worker-staging", branch = "staging", plan = "starter" }}

[datastores.db]
create = {{ like = "production" }}
settings = {{ kind = "postgres", name = "{prefix}-db" }}
overrides.staging = {{ name = "{prefix}-db-staging", plan = "basic_256mb", disk_size_gb = 5, high_availability = false }}

[datastores.cache]
create = {{ like = "production" }}
settings = {{ kind = "key_value", name = "{prefix}-redis" }}
overrides.staging = {{ name = "{prefix}-redis-staging", plan = "starter", maxmemory_policy = "noeviction" }}
"#
    )
}

#[tokio::test]
async fn like_production_copies_the_definition_with_stagings_overrides_and_no_variable_value() {
    let prefix = "likeprod";
    production(prefix);
    let spec = spec(&like_production_spec(prefix)).unwrap();

    let plan = missing(&spec, "staging").await;
    let listed: Vec<(String, String)> = plan
        .iter()
        .map(|c| (c.kind.clone(), c.name.clone()))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("render key value".into(), format!("{prefix}-redis-staging")),
            ("render postgres".into(), format!("{prefix}-db-staging")),
            ("render web service".into(), format!("{prefix}-web-staging")),
            (
                "render background worker".into(),
                format!("{prefix}-worker-staging")
            ),
            (
                "render custom domain".into(),
                format!("staging.{prefix}.example")
            ),
        ]
    );
    // Nothing was written by planning.
    assert!(creates_of(prefix).is_empty(), "{:?}", creates_of(prefix));
    let web = &plan[2];
    assert_eq!(web.like.as_deref(), Some("production"));
    assert_eq!(
        web.settings["build_command"],
        "bundle install && bin/rails assets:precompile"
    );
    assert_eq!(web.settings["plan"], "starter");

    let report = provision(spec.clone(), "staging").await;
    assert!(report.ok, "{report:#?}");

    // The web service: production's definition, staging's name, branch and plan.
    let body = created_body("/services", &format!("{prefix}-web-staging"));
    assert_eq!(body["type"], "web_service");
    assert_eq!(body["repo"], "https://github.com/acme/shop");
    assert_eq!(body["branch"], "staging");
    assert_eq!(body["autoDeploy"], "no");
    let d = &body["serviceDetails"];
    assert_eq!(d["runtime"], "ruby");
    assert_eq!(d["plan"], "starter");
    assert_eq!(d["region"], "frankfurt");
    assert_eq!(d["healthCheckPath"], "/up");
    assert_eq!(
        d["envSpecificDetails"],
        json!({ "buildCommand": "bundle install && bin/rails assets:precompile",
                "startCommand": "bundle exec puma -C config/puma.rb" })
    );
    assert_eq!(
        d["disk"],
        json!({ "name": "uploads", "mountPath": "/var/data", "sizeGB": 10 })
    );
    assert!(body.get("envVars").is_none(), "{body}");
    let worker = created_body("/services", &format!("{prefix}-worker-staging"));
    assert_eq!(worker["type"], "background_worker");
    assert_eq!(
        worker["serviceDetails"]["envSpecificDetails"]["startCommand"],
        "bundle exec sidekiq"
    );
    // The Postgres: production's version, region, database name; staging's size.
    let db = created_body("/postgres", &format!("{prefix}-db-staging"));
    assert_eq!(db["version"], "16");
    assert_eq!(db["region"], "frankfurt");
    assert_eq!(db["plan"], "basic_256mb");
    assert_eq!(db["diskSizeGB"], 5);
    assert_eq!(db["enableHighAvailability"], false);
    assert_eq!(db["databaseName"], "shop");
    let kv = created_body("/key-value", &format!("{prefix}-redis-staging"));
    assert_eq!(kv["maxmemoryPolicy"], "noeviction");
    assert_eq!(kv["region"], "frankfurt");
    // The domain is on staging's new service.
    let staging_web = stand_in()
        .fake
        .services_named(&format!("{prefix}-web-staging"));
    assert_eq!(
        stand_in().fake.custom_domains(&staging_web[0]),
        vec![format!("staging.{prefix}.example")]
    );

    // No production variable value went anywhere, and none was even read.
    for r in stand_in().fake.requests() {
        assert!(
            !r.contains(CANARY_PROD_SECRET) && !r.contains(CANARY_PROD_DB),
            "a production value was sent: {r}"
        );
        assert!(!r.contains("/env-vars"), "variables were read: {r}");
    }
    let shown = format!("{report:?}");
    assert!(!shown.contains(CANARY_PROD_SECRET), "{shown}");

    // Idempotent: a second run finds everything and creates nothing.
    let before = creates_of(prefix).len();
    assert!(missing(&spec, "staging").await.is_empty());
    let again = provision(spec, "staging").await;
    assert!(again.ok, "{again:#?}");
    assert_eq!(creates_of(prefix).len(), before);
    stand_in().prism.assert_no_violations();
}

fn own_settings_spec(prefix: &str, extra_db: &str, timeout: &str) -> String {
    format!(
        r#"[project]
name = "own"

[environments.staging]
provider = "render"
deploy_timeout = "{timeout}"

[services.web]
create = true
settings = {{ service_name = "{prefix}-web", type = "web_service", runtime = "node", repo = "https://github.com/acme/own", branch = "staging", build_command = "npm ci", start_command = "npm start", plan = "starter", region = "ohio" }}

[datastores.db]
create = true
settings = {{ kind = "postgres", name = "{prefix}-db", plan = "basic_256mb", version = "17"{extra_db} }}

[datastores.cache]
create = true
settings = {{ kind = "key_value", name = "{prefix}-kv", plan = "starter" }}
"#
    )
}

#[tokio::test]
async fn a_key_value_is_created_with_noeviction_unless_the_spec_says_otherwise() {
    let prefix = "noevict";
    let spec = spec(&own_settings_spec(prefix, "", "1m")).unwrap();
    let plan = missing(&spec, "staging").await;
    let kv = plan
        .iter()
        .find(|c| c.kind == "render key value")
        .expect("planned");
    assert_eq!(kv.settings["maxmemory_policy"], "noeviction");
    let report = provision(spec, "staging").await;
    assert!(report.ok, "{report:#?}");
    let body = created_body("/key-value", &format!("{prefix}-kv"));
    assert_eq!(body["maxmemoryPolicy"], "noeviction");
    assert_eq!(body["ownerId"], support::fake::OWNER, "the only workspace");
    let (_, status, _) = stand_in().fake.datastores_named(&format!("{prefix}-kv"))[0].clone();
    assert_eq!(status, "available");
    // The web service from the spec's own settings.
    let web = created_body("/services", &format!("{prefix}-web"));
    assert_eq!(web["serviceDetails"]["region"], "ohio");
    assert_eq!(
        web["serviceDetails"]["envSpecificDetails"]["startCommand"],
        "npm start"
    );
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_failed_datastore_creation_says_what_was_created_deletes_nothing_and_a_rerun_creates_the_rest()
 {
    let prefix = "halfway";
    let fake = &stand_in().fake;
    // The Postgres (second in order, after the Key Value) is refused once by Render.
    fake.inject(&format!("{prefix}-db"), Fault::Status(500, None));
    let spec = spec(&own_settings_spec(prefix, "", "1m")).unwrap();
    let report = provision(spec.clone(), "staging").await;
    assert!(!report.ok);
    let step = report.steps.iter().find(|s| s.step == "provision").unwrap();
    let text = format!("{step:?}");
    assert!(
        text.contains("created 1 of 3")
            && text.contains(&format!("render postgres `{prefix}-db`"))
            && text.contains("nothing was deleted")
            && text.contains(&format!("not attempted: render web service `{prefix}-web`")),
        "{text}"
    );
    assert_ne!(step.status, StepStatus::Passed);
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.starts_with("DELETE ") || !r.contains(prefix)),
        "something was deleted"
    );
    assert_eq!(fake.datastores_named(&format!("{prefix}-kv")).len(), 1);
    assert!(fake.datastores_named(&format!("{prefix}-db")).is_empty());
    assert!(fake.services_named(&format!("{prefix}-web")).is_empty());

    // The rerun creates only what is missing.
    let report = provision(spec, "staging").await;
    assert!(report.ok, "{report:#?}");
    let posts = creates_of(prefix);
    let count = |path: &str| {
        posts
            .iter()
            .filter(|r| r.starts_with(&format!("POST {path} ")))
            .count()
    };
    assert_eq!(count("/key-value"), 1, "{posts:?}");
    assert_eq!(
        count("/postgres"),
        2,
        "the refused one and the rerun's: {posts:?}"
    );
    assert_eq!(count("/services"), 1, "{posts:?}");
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_datastore_stuck_in_creating_fails_a_bounded_wait_naming_it() {
    let prefix = "stuck";
    stand_in()
        .fake
        .plan_datastore(&format!("{prefix}-db"), &["creating"]);
    let spec = spec(&own_settings_spec(prefix, "", "3s")).unwrap();
    let started = std::time::Instant::now();
    let report = provision(spec, "staging").await;
    assert!(!report.ok);
    let step = report.steps.iter().find(|s| s.step == "provision").unwrap();
    let text = format!("{step:?}");
    assert!(
        text.contains(&format!("{prefix}-db")) && text.contains("available"),
        "{text}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    // The rest was not attempted.
    assert!(
        stand_in()
            .fake
            .services_named(&format!("{prefix}-web"))
            .is_empty()
    );
}

#[tokio::test]
async fn a_misspelt_creation_setting_is_refused_at_its_place_before_any_request() {
    let text = own_settings_spec("typo", "", "1m").replace("build_command", "bulid_command");
    let spec = spec(&text).unwrap();
    let err = factory().check(&spec, "staging").unwrap_err().to_string();
    assert!(
        err.contains("staging.toml:10:") && err.contains("bulid_command"),
        "{err}"
    );
    assert!(err.contains("did you mean `build_command`"), "{err}");
    assert!(stand_in().fake.requests_mentioning("typo-").is_empty());
}

#[tokio::test]
async fn creating_without_what_render_needs_is_refused_offline_at_its_place() {
    let text = own_settings_spec("norepo", "", "1m")
        .replace("repo = \"https://github.com/acme/own\", ", "");
    let err = factory()
        .check(&spec(&text).unwrap(), "staging")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("staging.toml:10:") && err.contains("`repo`"),
        "{err}"
    );
    let text = own_settings_spec("nover", "", "1m").replace(", version = \"17\"", "");
    let err = factory()
        .check(&spec(&text).unwrap(), "staging")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("staging.toml:14:") && err.contains("`version`"),
        "{err}"
    );
    // A Postgres setting on a Key Value, a plan Render does not have.
    let text = own_settings_spec("wrongkind", "", "1m").replace(
        "plan = \"starter\" }",
        "plan = \"starter\", version = \"16\" }",
    );
    let err = factory()
        .check(&spec(&text).unwrap(), "staging")
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a Postgres setting"), "{err}");
    let text = own_settings_spec("badplan", "", "1m").replace("basic_256mb", "basic-256mb");
    let err = factory()
        .check(&spec(&text).unwrap(), "staging")
        .unwrap_err()
        .to_string();
    assert!(err.contains("basic_256mb"), "{err}");
    assert!(stand_in().fake.requests_mentioning("norepo-").is_empty());
}

#[tokio::test]
async fn a_copy_named_like_its_original_is_refused_offline() {
    let text = like_production_spec("samename").replace(
        "overrides.staging = { name = \"samename-db-staging\", ",
        "overrides.staging = { ",
    );
    let err = factory()
        .check(&spec(&text).unwrap(), "staging")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("would find `production`'s") && err.contains("samename-db"),
        "{err}"
    );
}

#[tokio::test]
async fn high_availability_on_a_plan_without_it_is_refused_at_validate_with_the_plans_that_allow_it()
 {
    // Declared for every environment, staging overriding only the plan: the merged staging
    // settings ask Render for a standby on `basic_256mb`, which Render answers with a 400.
    let text = like_production_spec("haplan").replace(
        "settings = { kind = \"postgres\", name = \"haplan-db\" }",
        "settings = { kind = \"postgres\", name = \"haplan-db\", high_availability = true }",
    );
    let text = text.replace(", high_availability = false }", " }");
    let err = factory()
        .check(&spec(&text).unwrap(), "staging")
        .unwrap_err()
        .to_string();
    assert!(err.contains("staging.toml:"), "{err}");
    assert!(err.contains("`basic_256mb`"), "{err}");
    assert!(
        err.contains("pro_4gb") && err.contains("accelerated_16gb"),
        "the message names the plans that allow it: {err}"
    );
    assert!(!err.contains("basic_1gb,"), "{err}");
    // Production's own (pro) plan with a standby is fine; so is staging's once it says no.
    let prod = spec(&text.replace(
        "high_availability = true }",
        "high_availability = true, plan = \"pro_4gb\" }",
    ))
    .unwrap();
    factory().check(&prod, "production").unwrap();
    let off = text.replace(
        "plan = \"basic_256mb\", disk_size_gb = 5 }",
        "plan = \"basic_256mb\", disk_size_gb = 5, high_availability = false }",
    );
    factory().check(&spec(&off).unwrap(), "staging").unwrap();
    // The attack: an old version or a personal workspace with a standby.
    let old = text.replace(
        "plan = \"basic_256mb\"",
        "plan = \"pro_4gb\", version = \"12\"",
    );
    let err = factory()
        .check(&spec(&old).unwrap(), "staging")
        .unwrap_err()
        .to_string();
    assert!(err.contains("Postgres 13"), "{err}");
    assert!(stand_in().fake.requests_mentioning("haplan-").is_empty());
}

#[tokio::test]
async fn like_production_does_not_copy_a_standby_onto_a_plan_that_cannot_have_one() {
    let prefix = "hacopy";
    production(prefix);
    // Staging says nothing about high availability; production's Postgres has a standby.
    let text = like_production_spec(prefix).replace(", high_availability = false }", " }");
    let report = provision(spec(&text).unwrap(), "staging").await;
    assert!(report.ok, "{report:#?}");
    let db = created_body("/postgres", &format!("{prefix}-db-staging"));
    assert_eq!(db["plan"], "basic_256mb");
    assert_eq!(db["enableHighAvailability"], false, "{db}");
}

#[tokio::test]
async fn a_rerun_after_a_stuck_datastore_waits_for_it_again_and_creates_nothing_after_it() {
    let prefix = "stuckrerun";
    stand_in()
        .fake
        .plan_datastore(&format!("{prefix}-db"), &["creating"]);
    let spec = spec(&own_settings_spec(prefix, "", "2s")).unwrap();
    let first = provision(spec.clone(), "staging").await;
    assert!(!first.ok);
    let step = first.steps.iter().find(|s| s.step == "provision").unwrap();
    // The billed Postgres exists: the report counts it and names it, not "created 1 of 3".
    assert!(
        step.summary.contains("created 2 of 3"),
        "the Key Value and the Postgres: {step:#?}"
    );
    assert!(
        step.summary.contains(&format!("{prefix}-db")) && step.summary.contains("exists"),
        "{step:#?}"
    );
    // The rerun finds it (still `creating`): it is not ready, so nothing after it runs.
    let second = provision(spec, "staging").await;
    assert!(
        !second.ok,
        "a datastore still creating is not ready: {second:#?}"
    );
    let step = second.steps.iter().find(|s| s.step == "provision").unwrap();
    let text = format!("{step:?}");
    assert!(
        text.contains(&format!("{prefix}-db")) && text.contains("creating"),
        "{text}"
    );
    let fake = &stand_in().fake;
    assert!(fake.services_named(&format!("{prefix}-web")).is_empty());
    assert_eq!(fake.datastores_named(&format!("{prefix}-db")).len(), 1);
    assert_eq!(
        fake.datastores_named(&format!("{prefix}-kv")).len(),
        1,
        "created once"
    );
}

fn cron_and_static_spec(prefix: &str, cron: &str, site: &str) -> String {
    format!(
        r#"[project]
name = "kinds"

[environments.staging]
provider = "render"
deploy_timeout = "1m"

[services.nightly]
http = false
create = true
settings = {{ service_name = "{prefix}-nightly", type = "cron_job", runtime = "node", repo = "https://github.com/acme/own", build_command = "npm ci", start_command = "npm run nightly", plan = "starter"{cron} }}

[services.site]
create = true
settings = {{ service_name = "{prefix}-site", type = "static_site", repo = "https://github.com/acme/own", build_command = "npm run build"{site} }}
"#
    )
}

#[tokio::test]
async fn a_cron_job_and_a_static_site_are_created_with_the_fields_render_takes_for_each() {
    let prefix = "kinds";
    let text = cron_and_static_spec(
        prefix,
        r#", schedule = "0 3 * * *""#,
        r#", publish_path = "dist""#,
    );
    let spec = spec(&text).unwrap();
    let plan = missing(&spec, "staging").await;
    let kinds: Vec<&str> = plan.iter().map(|c| c.kind.as_str()).collect();
    assert!(kinds.contains(&"render cron job"), "{kinds:?}");
    assert!(kinds.contains(&"render static site"), "{kinds:?}");
    let report = provision(spec, "staging").await;
    assert!(
        report.ok,
        "{report:#?}\n{:#?}",
        stand_in().prism.violations()
    );

    let cron = created_body("/services", &format!("{prefix}-nightly"));
    assert_eq!(cron["type"], "cron_job");
    assert_eq!(cron["serviceDetails"]["schedule"], "0 3 * * *");
    assert_eq!(cron["serviceDetails"]["runtime"], "node");
    assert_eq!(
        cron["serviceDetails"]["envSpecificDetails"]["startCommand"],
        "npm run nightly"
    );
    assert!(
        cron["serviceDetails"].get("preDeployCommand").is_none(),
        "{cron}"
    );

    let site = created_body("/services", &format!("{prefix}-site"));
    assert_eq!(site["type"], "static_site");
    assert_eq!(site["serviceDetails"]["publishPath"], "dist");
    assert_eq!(site["serviceDetails"]["buildCommand"], "npm run build");
    for absent in ["runtime", "plan", "region", "envSpecificDetails"] {
        assert!(
            site["serviceDetails"].get(absent).is_none(),
            "{absent}: {site}"
        );
    }
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn kind_settings_on_the_wrong_kind_or_a_malformed_schedule_are_refused_at_their_place() {
    let cases = [
        // A cron job without its schedule.
        (cron_and_static_spec("k1", "", ""), "`schedule`", ":11:"),
        // Four fields are not a cron expression.
        (
            cron_and_static_spec("k2", r#", schedule = "0 3 * *""#, ""),
            "five fields",
            ":11:",
        ),
        // A static site has no plan.
        (
            cron_and_static_spec("k3", r#", schedule = "0 3 * * *""#, r#", plan = "starter""#),
            "a static site has no `plan`",
            ":15:",
        ),
        // A schedule on a static site, a publish path on a cron job.
        (
            cron_and_static_spec(
                "k4",
                r#", schedule = "0 3 * * *""#,
                r#", schedule = "0 3 * * *""#,
            ),
            "`schedule` is a cron job's setting",
            ":15:",
        ),
        (
            cron_and_static_spec(
                "k5",
                r#", schedule = "0 3 * * *", publish_path = "dist""#,
                "",
            ),
            "`publish_path` is a static site's setting",
            ":11:",
        ),
    ];
    for (text, says, at) in cases {
        let err = factory()
            .check(&spec(&text).unwrap(), "staging")
            .unwrap_err()
            .to_string();
        assert!(err.contains(says) && err.contains(at), "{says}: {err}");
    }
    for p in ["k1-", "k2-", "k3-", "k4-", "k5-"] {
        assert!(stand_in().fake.requests_mentioning(p).is_empty());
    }
}

fn queue_spec(policy: &str, services: &str) -> String {
    format!(
        r#"[project]
name = "queue"

[environments.staging]
provider = "render"

[services.web]
settings = {{ service_name = "q-web" }}

[services.worker]
http = false
settings = {{ service_name = "q-worker" }}

[datastores.jobs]
settings = {{ kind = "key_value", name = "q-jobs"{policy} }}

[vars.REDIS_URL]
secret = true
services = {services}
sources = {{ staging = {{ provider = "key_value:q-jobs" }} }}
"#
    )
}

#[test]
fn a_worker_on_a_key_value_that_evicts_keys_is_warned_at_the_policy_and_noeviction_is_not() {
    let registry = ProviderRegistry::new().register(factory());
    let text = queue_spec(
        r#", maxmemory_policy = "allkeys_lru""#,
        r#"["web", "worker"]"#,
    );
    let loaded = spec(&text).unwrap();
    registry
        .check(&loaded, "staging")
        .expect("valid: a warning, not an error");
    let warnings = registry.warnings(&loaded, "staging").unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert!(w.at.starts_with("staging.toml:15:"), "{w}");
    for says in [
        "q-jobs",
        "allkeys_lru",
        "worker `worker` gets it as `REDIS_URL`",
        "noeviction",
    ] {
        assert!(w.message.contains(says), "{says}: {w}");
    }
    // noeviction, no policy written (created noeviction), or only the web service using the
    // store: nothing to warn about.
    for text in [
        queue_spec(
            r#", maxmemory_policy = "noeviction""#,
            r#"["web", "worker"]"#,
        ),
        queue_spec("", r#"["web", "worker"]"#),
        queue_spec(r#", maxmemory_policy = "allkeys_lru""#, r#"["web"]"#),
    ] {
        let loaded = spec(&text).unwrap();
        assert!(
            registry.warnings(&loaded, "staging").unwrap().is_empty(),
            "{text}"
        );
    }
}

#[tokio::test]
async fn the_validate_step_of_a_run_reports_the_warning() {
    let text = queue_spec(r#", maxmemory_policy = "volatile_lru""#, r#"["worker"]"#);
    let registry = ProviderRegistry::new().register(factory());
    let mut ctx = RunContext::new(spec(&text).unwrap(), "staging", "c0ffee0123456789").unwrap();
    let report = Pipeline::new()
        .step(ValidateStep::new(registry))
        .run(&mut ctx)
        .await;
    let validate = &report.steps[0];
    assert!(
        validate
            .findings
            .iter()
            .any(|f| f.message.starts_with("warning: staging.toml:15:")
                && f.message.contains("volatile_lru")),
        "{validate:#?}"
    );
}
