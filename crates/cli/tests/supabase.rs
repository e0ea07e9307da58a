//! A Supabase branch through the binary, against the Prism + stateful-fake stand-in of
//! `crates/provider-supabase/tests/support`: the branch's API keys are spec secret sources
//! (`source = { supabase = "anon_key" }`), resolved from the branch that is the environment's
//! database and shown only by fingerprint.

mod common;
#[path = "../../provider-supabase/tests/support/mod.rs"]
mod supabase;

use supabase::fake::{ANON_KEY, DB_PASS, SERVICE_KEY, parent};

fn spec(project_ref: &str) -> String {
    format!(
        r#"[project]
name = "shop"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[databases.main]
url_var = "DATABASE_URL"
branch = {{ supabase = {{ project_ref = "{project_ref}", branch = "staging" }} }}

[vars.DATABASE_URL]
secret = true
sources = {{ production = {{ env = "PRODUCTION_DATABASE_URL" }} }}

[vars.SUPABASE_ANON_KEY]
secret = true
sources = {{ staging = {{ supabase = "anon_key" }} }}

[vars.SUPABASE_SERVICE_ROLE_KEY]
secret = true
sources = {{ staging = {{ supabase = "main.service_role_key" }} }}
"#
    )
}

#[test]
fn supabase_branch_keys_resolve_as_secret_sources_and_are_shown_only_by_fingerprint() {
    let s = supabase::stand_in();
    let project = parent("cliskeys");
    s.fake.existing_branch(&project, "staging");
    let branch_ref = s.fake.branch(&project, "staging").unwrap().project_ref;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), spec(&project)).unwrap();
    let url = s.prism.url();
    let env = [
        ("SUPABASE_ACCESS_TOKEN", supabase::TOKEN),
        ("SUPABASE_API_URL", url.as_str()),
    ];
    let canaries = [
        format!("{ANON_KEY}-{branch_ref}"),
        format!("{SERVICE_KEY}-{branch_ref}"),
        DB_PASS.to_owned(),
        ANON_KEY.to_owned(),
        SERVICE_KEY.to_owned(),
    ];

    let out = common::run_staging(dir.path(), &["secrets", "check", "--env", "staging"], &env);
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for var in [
        "SUPABASE_ANON_KEY",
        "SUPABASE_SERVICE_ROLE_KEY",
        "DATABASE_URL",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(var))
            .unwrap_or_else(|| panic!("{var} not reported: {text}"));
        assert!(line.contains("fp:"), "{var} without a fingerprint: {text}");
    }
    assert!(text.contains("supabase branch `staging`"), "{text}");

    let json = common::run_staging(
        dir.path(),
        &["secrets", "check", "--env", "staging", "--json"],
        &env,
    );
    let json_text = common::text(&json);
    assert_eq!(json.status.code(), Some(0), "{json_text}");
    let envelope: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        envelope.to_string().contains("SUPABASE_ANON_KEY"),
        "{json_text}"
    );

    for c in &canaries {
        assert!(!text.contains(c.as_str()), "`{c}` in the output: {text}");
        assert!(
            !json_text.contains(c.as_str()),
            "`{c}` in --json: {json_text}"
        );
    }
    // The keys were read from the branch's own project, with the bearer token.
    s.prism.assert_no_violations();
}

#[test]
fn a_supabase_source_without_a_supabase_database_is_refused_naming_why() {
    let s = supabase::stand_in();
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(&parent("clisnone")).replace(
        "branch = { supabase = { project_ref = \"clisnoneaaaaaaaaaaaa\", branch = \"staging\" } }\n",
        "",
    );
    assert!(!spec.contains("branch ="), "{spec}");
    std::fs::write(dir.path().join("staging.toml"), spec).unwrap();
    let url = s.prism.url();
    let out = common::run_staging(
        dir.path(),
        &["secrets", "check", "--env", "staging"],
        &[
            ("SUPABASE_ACCESS_TOKEN", supabase::TOKEN),
            ("SUPABASE_API_URL", url.as_str()),
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
        ],
    );
    let text = common::text(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("no `[databases.NAME] branch = { supabase = .. }` is for `staging`"),
        "{text}"
    );
}
