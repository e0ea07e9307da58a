//! The example Netlify spec loads and passes the factory's checks; bad settings are reported
//! at their place in the file; an imported `netlify.toml` skeleton is itself a valid spec.

use staging_core::ProviderFactory;
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_provider_netlify::{DeployContext, NetlifyFactory, SiteRef, import_netlify_toml};

fn example() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/netlify/staging.toml")
}

#[test]
fn the_example_spec_loads_and_passes_the_netlify_checks() {
    let spec = LoadedSpec::load(example(), LoadOptions::new(&["local", "netlify"]))
        .expect("the example loads");
    for env in ["staging", "production"] {
        NetlifyFactory
            .check(&spec, env)
            .unwrap_or_else(|e| panic!("{env}: {e}"));
    }
    let targets = NetlifyFactory::targets(&spec, "staging").unwrap();
    assert_eq!(targets[0].0, "web");
    assert_eq!(targets[0].1.site, SiteRef::Name("storefront-web".into()));
    assert_eq!(
        targets[0].1.context,
        DeployContext::Branch("develop".into())
    );
    assert_eq!(
        NetlifyFactory::targets(&spec, "production").unwrap()[0]
            .1
            .context,
        DeployContext::Production
    );
}

fn with_staging_settings(settings: &str) -> (LoadedSpec, String) {
    let text = std::fs::read_to_string(example()).unwrap();
    let start = text.find("[environments.staging.settings]").unwrap();
    let end = text[start..].find("\n\n").unwrap() + start;
    let text = format!(
        "{}[environments.staging.settings]\n{settings}{}",
        &text[..start],
        &text[end..]
    );
    let spec =
        LoadedSpec::parse("staging.toml", text.clone(), LoadOptions::new(&["netlify"])).unwrap();
    (spec, text)
}

#[test]
fn bad_settings_are_reported_at_their_line_and_column() {
    let cases = [
        (
            "site_name = \"s\"\ncontext = \"staging\"\n",
            "context",
            "unknown deploy context `staging`",
        ),
        (
            "site_name = \"s\"\ncontext = \"branch-deploy\"\n",
            "context",
            "needs a `branch` setting",
        ),
        (
            "site_name = \"s\"\nsite_id = \"x\"\ncontext = \"production\"\n",
            "site_",
            "not both",
        ),
        (
            "site_name = \"s\"\ncontext = \"production\"\nsiteid = \"x\"\n",
            "siteid",
            "unknown field `siteid`, expected one of `site_id`, `site_name`, `context`, `branch`, `account_id`, `build_hook`, `url`, `custom_domains`, `repo`, `production_branch`, `build_command`, `publish_dir`, `base_dir`, `functions_dir`; did you mean `site_id`?",
        ),
        (
            "site_name = \"s\"\ncontext = \"production\"\nurl = \"nope\"\n",
            "url",
            "not an http(s) URL",
        ),
        (
            "site_name = \"s\"\ncontext = 3\n",
            "context",
            "invalid type: integer `3`, expected a string",
        ),
    ];
    for (settings, key, message) in cases {
        let (spec, text) = with_staging_settings(settings);
        let err = NetlifyFactory
            .check(&spec, "staging")
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{settings:?}: {err}");
        let line_no = text.lines().position(|l| l.starts_with(key)).unwrap() + 1;
        assert!(
            err.starts_with(&format!("staging.toml:{line_no}:")),
            "{settings:?}: {err} (want line {line_no})"
        );
    }
    let (spec, _) = with_staging_settings("context = \"production\"\n");
    let err = NetlifyFactory
        .check(&spec, "staging")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("needs a Netlify `site_id` or `site_name`"),
        "{err}"
    );
}

#[test]
fn an_imported_netlify_toml_is_a_valid_spec() {
    let skeleton = import_netlify_toml(
        r#"
[build]
command = "npm run build"
[build.environment]
VITE_API_URL = "https://api.example.com"
[context.develop.environment]
VITE_API_URL = "https://staging-api.example.com"
"#,
    )
    .unwrap();
    let env = |name: &str| (name == "NETLIFY_SITE_NAME").then(|| "storefront-web".to_owned());
    let options = LoadOptions {
        env: &env,
        known_providers: &["netlify"],
        instance: None,
    };
    let spec = LoadedSpec::parse("imported.toml", skeleton.clone(), options)
        .unwrap_or_else(|e| panic!("{e}\n{skeleton}"));
    for env in ["staging", "production"] {
        NetlifyFactory
            .check(&spec, env)
            .unwrap_or_else(|e| panic!("{env}: {e}\n{skeleton}"));
    }
}
