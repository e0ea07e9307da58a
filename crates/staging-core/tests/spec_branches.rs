//! `[databases.NAME] branch = { neon = {..} }` / `{ supabase = {..} }` and `scrub`: typed,
//! validated offline, errors at `file:line:col`.

use staging_core::Error;
use staging_core::spec::{BranchSpec, LoadOptions, LoadedSpec};

fn load(text: &str) -> Result<LoadedSpec, Error> {
    LoadedSpec::parse(
        "staging.toml",
        text.to_owned(),
        LoadOptions {
            env: &|_| None,
            known_providers: &["local"],
            instance: None,
        },
    )
}

fn with_db(db: &str) -> String {
    format!(
        r#"
[project]
name = "demo"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[vars.DATABASE_URL]
secret = true
source = {{ env = "DATABASE_URL" }}

[databases.main]
url_var = "DATABASE_URL"
{db}
"#
    )
}

fn message(text: &str) -> String {
    match load(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e @ Error::ConfigInvalid { .. }) => e.to_string(),
        Err(e) => panic!("expected ConfigInvalid, got {e:?}"),
    }
}

#[test]
fn a_neon_branch_and_a_sql_scrub_load_typed() {
    let spec = load(&with_db(
        r#"branch = { neon = { project_id = "late-pine-1", branch = "staging", parent = "main", preserve_under_name = "staging-before" } }
scrub = { sql = ["scrub/users.sql"] }"#,
    ))
    .unwrap();
    let db = &spec.spec.databases["main"];
    let Some(BranchSpec::Neon(n)) = &db.branch else {
        panic!("expected a neon branch, got {:?}", db.branch)
    };
    assert_eq!(
        (n.project_id.as_str(), n.branch.as_str(), n.parent.as_str()),
        ("late-pine-1", "staging", "main")
    );
    assert_eq!(n.preserve_under_name.as_deref(), Some("staging-before"));
    let branch = db.branch.as_ref().unwrap();
    assert!(branch.applies_to("staging", false));
    assert!(!branch.applies_to("production", true));
    assert_eq!(db.scrub.as_ref().unwrap().sql, ["scrub/users.sql"]);
}

#[test]
fn a_supabase_branch_loads_typed() {
    let spec = load(&with_db(
        r#"branch = { supabase = { project_ref = "abcdefghijklmnopqrst", branch = "staging" } }"#,
    ))
    .unwrap();
    assert!(matches!(
        spec.spec.databases["main"].branch,
        Some(BranchSpec::Supabase(_))
    ));
}

#[test]
fn a_misspelt_neon_key_is_reported_at_its_place() {
    let m = message(&with_db(
        r#"branch = { neon = { project = "late-pine-1", branch = "staging", parent = "main" } }"#,
    ));
    assert!(m.starts_with("staging.toml:19:"), "{m}");
    assert!(m.contains("project"), "{m}");
}

#[test]
fn an_unknown_branch_provider_is_reported_at_its_place() {
    let m = message(&with_db(
        r#"branch = { planetscale = { branch = "staging" } }"#,
    ));
    assert!(m.starts_with("staging.toml:19:"), "{m}");
    assert!(m.contains("planetscale"), "{m}");
}

#[test]
fn a_branch_that_is_its_own_parent_is_refused_at_its_place() {
    let m = message(&with_db(
        r#"branch = { neon = { project_id = "p", branch = "main", parent = "main" } }"#,
    ));
    assert!(m.starts_with("staging.toml:19:"), "{m}");
    assert!(m.contains("its own parent"), "{m}");
}

#[test]
fn a_branch_spelled_like_its_parent_but_for_case_or_spaces_is_refused_too() {
    for name in ["Main", " main", "MAIN "] {
        let m = message(&with_db(&format!(
            r#"branch = {{ neon = {{ project_id = "p", branch = "{name}", parent = "main" }} }}"#
        )));
        assert!(m.contains("its own parent"), "{name:?}: {m}");
    }
}

#[test]
fn a_branch_for_a_protected_environment_is_refused() {
    let m = message(&with_db(
        r#"branch = { neon = { project_id = "p", branch = "prod-copy", parent = "main", environments = ["production"] } }"#,
    ));
    assert!(m.starts_with("staging.toml:19:"), "{m}");
    assert!(m.contains("protected"), "{m}");
}

#[test]
fn a_scrub_needs_sql_or_a_command() {
    let m = message(&with_db("scrub = {}"));
    assert!(m.starts_with("staging.toml:19:"), "{m}");
    assert!(m.contains("exactly one of `sql`"), "{m}");
}
