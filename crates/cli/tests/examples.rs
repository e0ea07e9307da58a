//! Every example under `examples/` is a spec a user can start from: each validates as
//! shipped, and each whose values come from the process environment or files passes `secrets
//! check` in every environment with the variables its header states (the planted example
//! fails exactly where it says). The examples whose values come from a platform are run on
//! their stand-ins by their own tests: `railway.rs` (up and promote of examples/railway),
//! `refresh.rs` (examples/neon and examples/supabase), `vercel.rs`, `provider-aws`'s
//! `example_spec.rs`, `provider-render`'s `spec_and_blueprint.rs`.

mod common;

use std::path::PathBuf;

use common::{run_staging, text};

fn examples() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("staging.toml").is_file())
        .collect();
    out.sort();
    out
}

/// The environments an example declares, from its own `validate --json`.
fn environments(dir: &std::path::Path) -> Vec<String> {
    let out = run_staging(dir, &["validate", "--json"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: {}",
        dir.display(),
        text(&out)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["data"]["environments"]
        .as_array()
        .or(doc["environments"].as_array())
        .unwrap_or_else(|| panic!("no environments in {doc}"))
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_example_validates_as_shipped() {
    let all = examples();
    assert!(all.len() >= 9, "{all:?}");
    for dir in &all {
        let out = run_staging(dir, &["validate"], &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            dir.display(),
            text(&out)
        );
        assert!(!environments(dir).is_empty(), "{}", dir.display());
    }
}

/// The variables each example's header tells the user to set, with values that pass its
/// rules (staging's differ from production's where a rule says so).
fn stated(example: &str) -> Vec<(&'static str, &'static str)> {
    match example {
        "netlify" => vec![
            (
                "STAGING_SENTRY_AUTH_TOKEN",
                "sntrys_staging_7Qm2xK9pLw4Rt8Zb3Nc6Vd1Hf5Jg0Ys",
            ),
            (
                "PRODUCTION_SENTRY_AUTH_TOKEN",
                "sntrys_production_2Wb8Tn5Kq1Lz7Xc4Rv9Mp3Hd6Gj0",
            ),
        ],
        "vercel" => vec![
            (
                "STAGING_STRIPE_SECRET_KEY",
                "sk_test_51Hs7Qm2xK9pLw4Rt8Zb3Nc6Vd",
            ),
            (
                "PRODUCTION_STRIPE_SECRET_KEY",
                "sk_live_51Hz2Wb8Tn5Kq1Lz7Xc4Rv9Mp3",
            ),
            (
                "STAGING_POSTMARK_API_TOKEN",
                "5f0c9a1e-7b2d-4c3e-9a8f-1d2e3f4a5b6c",
            ),
            (
                "PRODUCTION_POSTMARK_API_TOKEN",
                "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
            ),
        ],
        _ => vec![],
    }
}

#[test]
fn examples_with_values_from_the_environment_or_files_pass_secrets_check_in_every_environment() {
    for name in ["demo", "netlify", "vercel"] {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name);
        let vars = stated(name);
        for env in environments(&dir) {
            let out = run_staging(&dir, &["secrets", "check", "--env", &env], &vars);
            assert_eq!(out.status.code(), Some(0), "{name}/{env}: {}", text(&out));
            // The stated values never reach the output: fingerprints only.
            for (_, value) in &vars {
                assert!(!text(&out).contains(value), "{name}/{env} printed a value");
            }
        }
        // The attack: without the stated variables the check fails, naming what is missing.
        if let Some((var, _)) = vars.first() {
            let out = run_staging(&dir, &["secrets", "check", "--env", "staging"], &[]);
            assert_ne!(
                out.status.code(),
                Some(0),
                "{name}: passed with nothing set"
            );
            assert!(text(&out).contains(var), "{name}: {}", text(&out));
        }
    }
}

#[test]
fn the_planted_example_fails_secrets_check_exactly_where_it_says() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/secrets-check");
    let out = run_staging(&dir, &["secrets", "check"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("JWT_SECRET") && all.contains("STRIPE_API_KEY"),
        "{all}"
    );
    assert!(all.contains("trailing newline"), "{all}");
    assert!(all.contains("2 variable(s) fail their rules"), "{all}");
}

#[test]
fn the_demo_example_plans_on_its_local_default() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
    for env in environments(&dir) {
        let out = run_staging(
            &dir,
            &[
                "plan",
                "--env",
                &env,
                "--commit",
                "3333333aaaaaaaabbbbbbbbccccccccdddddddd3",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{env}: {}", text(&out));
    }
}
