//! The spec's `vercel` settings (typed: a typo is an error at its place with a suggestion),
//! the example spec, and `vercel.json` imported into a skeleton that is itself a valid spec.

use staging_core::ProviderFactory;
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{Error, ProviderRegistry};
use staging_provider_vercel::{VercelFactory, import_vercel_json};

fn example() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/vercel/staging.toml")
}

fn load(text: &str) -> LoadedSpec {
    LoadedSpec::parse(
        "staging.toml",
        text.to_owned(),
        LoadOptions::new(&["vercel"]),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn spec_with(env: &str, service: &str) -> String {
    format!(
        "[project]\nname = \"shop\"\n\n[environments.staging]\nprovider = \"vercel\"\npromotes_to = \"production\"\nsettings = {{ {env} }}\n\n[environments.production]\nprovider = \"vercel\"\nprotected = true\n\n[services.web]\nsettings = {{ {service} }}\n"
    )
}

fn check(text: &str) -> Result<(), Error> {
    ProviderRegistry::new()
        .register(VercelFactory::new())
        .check(&load(text), "staging")
}

#[test]
fn the_example_spec_validates() {
    let spec =
        LoadedSpec::load(example(), LoadOptions::new(&["vercel"])).expect("the example loads");
    for env in ["staging", "production"] {
        VercelFactory::new()
            .check(&spec, env)
            .unwrap_or_else(|e| panic!("{env}: {e}"));
    }
    let b = format!(
        "{:?}",
        VercelFactory::new().builder(&spec, "staging").unwrap()
    );
    assert!(
        b.contains("Custom(\"staging\")") && b.contains("storefront-web"),
        "{b}"
    );
    let b = format!(
        "{:?}",
        VercelFactory::new().builder(&spec, "production").unwrap()
    );
    assert!(b.contains("Production") && b.contains("Sensitive"), "{b}");
}

#[test]
fn a_misspelt_setting_is_an_error_at_its_place_with_a_suggestion() {
    let err = check(&spec_with(r#"target = "staging""#, r#"projct = "web""#)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::ConfigInvalid { .. }), "{err:?}");
    assert!(text.contains("did you mean `project`"), "{text}");
    assert!(text.contains("staging.toml:14:"), "{text}");
    let err = check(&spec_with(r#"git_brnch = "main""#, "")).unwrap_err();
    assert!(
        err.to_string().contains("did you mean `git_branch`"),
        "{err}"
    );
}

#[test]
fn settings_that_cannot_work_are_refused() {
    for (env, service, what) in [
        (
            r#"team_id = "t", team_slug = "s""#,
            "",
            "`team_id` and `team_slug`",
        ),
        (r#"target = "development""#, "", "`development`"),
        (
            r#"target = "staging", secret_type = "sensitive""#,
            "",
            "`sensitive`",
        ),
        (
            "",
            r#"project = "a", project_id = "prj_1""#,
            "`project_id` and `project`",
        ),
        ("", r#"repo = "just-a-name""#, "`org/repo`"),
        (r#"secret_type = "plain""#, "", "plain"),
    ] {
        let err = check(&spec_with(env, service)).unwrap_err();
        assert!(err.to_string().contains(what), "{env} {service}: {err}");
    }
}

#[test]
fn a_missing_token_fails_when_the_provider_is_built_with_exit_3() {
    let spec = LoadedSpec::load(example(), LoadOptions::new(&["vercel"])).unwrap();
    let err = VercelFactory::with_lookup(|_| None)
        .build(&spec, "staging")
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    assert_eq!(err.class().exit_code(), 3);
}

#[test]
fn vercel_json_imports_into_a_skeleton_that_validates() {
    let text = r#"{
        "name": "my-next-app",
        "framework": "nextjs",
        "buildCommand": "next build",
        "env": { "NEXT_PUBLIC_API": "https://api.example.com/${x}" },
        "build": { "env": { "SENTRY_DSN": "@sentry-dsn" } },
        "git": { "deploymentEnabled": { "main": false } },
        "crons": [{ "path": "/api/worker/drain", "schedule": "*/5 * * * *" }],
        "functions": { "api/worker/*.ts": { "maxDuration": 300 } }
    }"#;
    let skeleton = import_vercel_json(text, "dir").unwrap();
    // The worker is not dropped, and staging is not built from production's branch.
    assert!(skeleton.contains("/api/worker/drain"), "{skeleton}");
    assert!(skeleton.contains("api/worker/*.ts"), "{skeleton}");
    assert!(
        skeleton.contains("target = \"staging\", git_branch = \"staging\""),
        "{skeleton}"
    );
    assert!(skeleton.contains("name = \"my-next-app\""), "{skeleton}");
    assert!(skeleton.contains("NEXT_PUBLIC_API") && skeleton.contains("SENTRY_DSN"));
    assert!(
        !skeleton.contains("@sentry-dsn"),
        "a value was copied: {skeleton}"
    );
    let spec = LoadedSpec::parse(
        "staging.toml",
        skeleton.clone(),
        LoadOptions::new(&["vercel"]),
    )
    .unwrap_or_else(|e| panic!("{e}\n{skeleton}"));
    for env in ["staging", "production"] {
        VercelFactory::new()
            .check(&spec, env)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(import_vercel_json("{ not json", "x").is_err());
}
