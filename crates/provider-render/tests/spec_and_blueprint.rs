//! The example Render spec and the Blueprint import, checked by core's loader and by the
//! factory's `check`: what `staging validate` does with them.

use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{ProviderExt, ProviderFactory};
use staging_provider_render::{RenderFactory, import_blueprint};

const PROVIDERS: &[&str] = &["local", "render"];

fn example() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/render/staging.toml")
}

#[test]
fn example_render_spec_is_valid() {
    let spec =
        LoadedSpec::load(example(), LoadOptions::new(PROVIDERS)).expect("the example spec loads");
    for env in ["staging", "production"] {
        RenderFactory::new()
            .check(&spec, env)
            .unwrap_or_else(|e| panic!("{env}: {e}"));
    }
    assert_eq!(spec.spec.services.len(), 2);
}

#[test]
fn example_spec_builds_providers_when_the_key_is_set() {
    let spec = LoadedSpec::load(example(), LoadOptions::new(PROVIDERS)).unwrap();
    let with_key =
        RenderFactory::with_lookup(|n| (n == "RENDER_API_KEY").then(|| "rnd_x".to_owned()));
    let p = with_key.build(&spec, "staging").expect("build");
    assert_eq!(p.name(), "render");
    let without = RenderFactory::with_lookup(|_| None);
    let err = without.build(&spec, "staging").unwrap_err();
    assert!(err.to_string().contains("RENDER_API_KEY"), "{err}");
}

fn check_source(source: &str) -> staging_core::Result<()> {
    let spec = LoadedSpec::parse(
        "staging.toml",
        source.to_owned(),
        LoadOptions::new(PROVIDERS),
    )?;
    RenderFactory::new().check(&spec, "staging")
}

#[test]
fn bad_render_settings_point_at_their_key() {
    let base = "[project]\nname = \"x\"\n[environments.staging]\nprovider = \"render\"\n";
    let err = check_source(&format!(
        "{base}[services.web]\nsettings = {{ service_id = \"web-123\" }}\n"
    ))
    .unwrap_err();
    assert!(
        err.to_string().starts_with("staging.toml:6:") && err.to_string().contains("srv-"),
        "{err}"
    );
    let err = check_source(&format!(
        "{base}[services.web]\nsettings = {{ service_id = 12 }}\n"
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("staging.toml:6:27: ")
            && err.to_string().contains("expected a string"),
        "{err}"
    );
    let err = check_source(&format!(
        "{base}[services.web]\nsettings = {{ service_id = \"srv-1\" }}\n[services.web.overrides.staging]\nservice_name = \"web\"\n"
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("keep one") && err.to_string().contains(":8:"),
        "{err}"
    );
    let err = check_source(&format!("{base}settings = {{ owner_id = \"acme\" }}\n")).unwrap_err();
    assert!(err.to_string().contains("owner_id"), "{err}");
    // A key no Render type has (another provider's, or a typo) is an error: nothing would
    // read it.
    let err = check_source(&format!(
        "{base}[services.web]\nsettings = {{ command = [\"run\"], service_name = \"web\" }}\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `command`"), "{err}");
}

const BLUEPRINT: &str = r#"
services:
  - type: web
    name: shop-web
    runtime: docker
    healthCheckPath: /up
    domains:
      - staging.shop.example.com
    envVars:
      - key: DATABASE_URL
        fromDatabase:
          name: shop-db
          property: connectionString
      - key: REDIS_URL
        fromService:
          type: keyvalue
          name: shop-cache
          property: connectionString
      - key: SECRET_KEY_BASE
        generateValue: true
      - key: STRIPE_KEY
        sync: false
      - key: WEB_CONCURRENCY
        value: 2
      - fromGroup: shared
  - type: worker
    name: shop-worker
    runtime: ruby
    envVars:
      - key: DATABASE_URL
        fromDatabase:
          name: shop-db
          property: connectionString
      - fromGroup: shared
  - type: keyvalue
    name: shop-cache
    ipAllowList: []
    maxmemoryPolicy: noeviction
databases:
  - name: shop-db
    plan: basic-256mb
envVarGroups:
  - name: shared
    envVars:
      - key: APP_ENV
        value: staging
"#;

#[test]
fn blueprint_becomes_a_valid_spec_skeleton() {
    let toml = import_blueprint(BLUEPRINT).expect("import");
    let spec = LoadedSpec::parse("staging.toml", toml.clone(), LoadOptions::new(PROVIDERS))
        .unwrap_or_else(|e| panic!("{e}\n{toml}"));
    RenderFactory::new().check(&spec, "staging").unwrap();
    let s = &spec.spec;
    assert_eq!(
        s.services.keys().collect::<Vec<_>>(),
        ["shop-web", "shop-worker"]
    );
    assert_eq!(s.services["shop-web"].health_path.as_deref(), Some("/up"));
    let secret = staging_core::secretness::secret_vars(s, "staging");
    assert!(secret.contains("DATABASE_URL") && s.vars["DATABASE_URL"].services.is_none());
    assert_eq!(
        s.vars["REDIS_URL"].services.as_deref(),
        Some(&["shop-web".to_owned()][..])
    );
    assert_eq!(s.vars["WEB_CONCURRENCY"].value, Some("2".into()));
    assert_eq!(s.vars["APP_ENV"].value, Some("staging".into()));
    assert!(secret.contains("STRIPE_KEY"));
    assert_eq!(
        s.vars["SECRET_KEY_BASE"].rules.differs_from.as_deref(),
        Some("production")
    );
    assert_eq!(s.databases["shop-db"].url_var, "DATABASE_URL");
    let kinds: Vec<String> = s.probes.iter().map(|p| p.kinds().join(",")).collect();
    assert_eq!(kinds, ["http", "tls", "postgres", "redis"], "{toml}");
    assert_eq!(
        s.probes[3].redis.as_ref().unwrap().maxmemory_policy,
        Some("noeviction".into())
    );
    // The datastores are created when missing: staging's under names of their own.
    let asked = spec.creations_asked("staging");
    assert_eq!(
        asked.datastores.keys().collect::<Vec<_>>(),
        ["shop-cache", "shop-db"],
        "{toml}"
    );
    let db = spec
        .datastore_settings::<staging_provider_render::RenderDatastoreSettings>(
            "shop-db", "staging",
        )
        .unwrap()
        .value;
    assert_eq!(db.name.as_deref(), Some("shop-db-staging"));
    assert_eq!(db.plan.as_deref(), Some("basic_256mb"));
    let kv = spec
        .datastore_settings::<staging_provider_render::RenderDatastoreSettings>(
            "shop-cache",
            "staging",
        )
        .unwrap()
        .value;
    assert_eq!(
        kv.maxmemory_policy,
        Some(staging_provider_render::MaxmemoryPolicy::Noeviction)
    );
    // A service render.yaml does not say how to build (no repo) is not created.
    assert!(asked.services.is_empty(), "{toml}");
    assert!(
        toml.contains("# create = true   # render.yaml lacks"),
        "{toml}"
    );
}

#[test]
fn a_complete_blueprint_service_is_created_with_its_settings() {
    let toml = import_blueprint(
        "services:\n  - type: worker\n    name: jobs\n    runtime: python\n    repo: https://github.com/acme/jobs\n    plan: standard\n    region: frankfurt\n    buildCommand: pip install -r requirements.txt\n    startCommand: celery worker\n",
    )
    .unwrap();
    let spec = LoadedSpec::parse("staging.toml", toml.clone(), LoadOptions::new(PROVIDERS))
        .unwrap_or_else(|e| panic!("{e}\n{toml}"));
    RenderFactory::new().check(&spec, "staging").unwrap();
    RenderFactory::new().check(&spec, "production").unwrap();
    assert!(
        spec.creations_asked("staging")
            .services
            .contains_key("jobs")
    );
    let s = spec
        .service_settings::<staging_provider_render::RenderServiceSettings>("jobs", "staging")
        .unwrap()
        .value;
    assert_eq!(
        s.service_type,
        Some(staging_provider_render::ServiceType::BackgroundWorker)
    );
    assert_eq!(s.service_name.as_deref(), Some("jobs-staging"));
    assert_eq!(s.branch.as_deref(), Some("staging"));
    assert_eq!(s.start_command.as_deref(), Some("celery worker"));
    assert!(!spec.spec.services["jobs"].http);
}

#[test]
fn a_broken_blueprint_is_a_config_error() {
    let err = import_blueprint("services: [unclosed").unwrap_err();
    assert!(
        matches!(err, staging_core::Error::ConfigInvalid { .. }),
        "{err:?}"
    );
}

#[test]
fn a_workspace_read_limit_in_the_spec_paces_the_waits_and_a_zero_is_refused_at_its_place() {
    let text = |reads: &str| {
        format!(
            "[project]\nname = \"shop\"\n[environments.staging]\nprovider = \"render\"\nsettings = {{ owner_id = \"tea-cshop0000000000000\"{reads} }}\n[services.web]\nsettings = {{ service_name = \"shop-web\" }}\n"
        )
    };
    let with_key =
        RenderFactory::with_lookup(|n| (n == "RENDER_API_KEY").then(|| "rnd_x".to_owned()));
    let budget = |reads: &str| {
        let spec =
            LoadedSpec::parse("staging.toml", text(reads), LoadOptions::new(PROVIDERS)).unwrap();
        with_key.build(&spec, "staging").map(|p| p.read_budget())
    };
    assert_eq!(budget("").unwrap().reads, 100, "the lowest plan's limit");
    let declared = budget(", api_reads_per_minute = 400").unwrap();
    assert_eq!(declared.reads, 400);
    // Five services at a quarter of 400 a minute: one read each every 3 s.
    assert_eq!(declared.steady_interval(5).as_secs(), 3);
    let err = budget(", api_reads_per_minute = 0")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("staging.toml:5:") && err.contains("api_reads_per_minute"),
        "{err}"
    );
}
