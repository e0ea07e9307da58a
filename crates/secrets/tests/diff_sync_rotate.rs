//! `diff`, `sync` and `rotate` against dotenv stores and an in-memory provider.

mod common;

use common::{EnvProvider, HEAD, spec_in};
use secrecy::ExposeSecret;
use staging_core::Error;
use staging_secrets::{
    SyncAction, SyncOptions, SyncOutcome, VarStatus, check, diff, generate, rotate, sync,
};

const KEY_A: &str = "Zq7Lw2Nc9Rt4Vb8Xm1Kp6Hs3Dg5Fj0Ay7Ue2Io9Pl4Mk8Nj1Bh6Gv3Cf5Dx0Sz2";

const VARS: &str = r#"
[vars.JWT_SECRET]
secret = true
rules = { kind = "signing_key", differs_from = "production" }
[vars.ORG_ID]
secret = true
rules = { same_as = "production" }
[vars.STAGING_ONLY]
secret = true
required = false
[vars.WORKER_TOKEN]
secret = true
services = ["worker"]
required = false
[vars.APP_ENV]
value = "${env}"
"#;

fn spec_text() -> String {
    format!("{HEAD}\n{VARS}")
}

#[tokio::test]
async fn diff_lists_one_sided_keys_equality_by_fingerprint_and_rule_violations() {
    let (_dir, spec) = spec_in(&[
        ("staging.toml", &spec_text()),
        (
            ".env.staging",
            &format!("JWT_SECRET={KEY_A}\nORG_ID=org_1f3a9c2e\nSTAGING_ONLY=only-here-123\n"),
        ),
        (
            ".env.production",
            &format!("JWT_SECRET={KEY_A}\nORG_ID=org_1f3a9c2e\n"),
        ),
    ]);
    let report = diff(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        "production",
        None,
    )
    .await
    .unwrap();
    assert_eq!(report.only_in_a, ["STAGING_ONLY"]);
    assert!(report.only_in_b.is_empty());
    let row = |n: &str| report.vars.iter().find(|r| r.name == n).unwrap();
    assert_eq!(row("JWT_SECRET").equal, Some(true));
    assert_eq!(row("JWT_SECRET").expected, Some("differ"));
    assert_eq!(row("JWT_SECRET").problems_a[0].rule, "differs_from");
    assert_eq!(row("ORG_ID").equal, Some(true));
    assert_eq!(row("ORG_ID").expected, Some("same"));
    assert_eq!(
        row("APP_ENV").equal,
        Some(false),
        "${{env}} renders differently"
    );
    assert_eq!(row("STAGING_ONLY").equal, None);
    assert_eq!(
        row("JWT_SECRET").fingerprint_a,
        row("JWT_SECRET").fingerprint_b
    );
    assert!(!report.ok);
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn sync_plans_by_fingerprint_lists_unmanaged_keys_and_changes_nothing_without_apply() {
    let (_dir, spec) = spec_in(&[
        ("staging.toml", &spec_text()),
        (
            ".env.staging",
            &format!("JWT_SECRET={KEY_A}\nORG_ID=org_1f3a9c2e\nWORKER_TOKEN=worker-token-1\n"),
        ),
        (".env.production", "ORG_ID=org_1f3a9c2e\n"),
    ]);
    let provider = EnvProvider::with(&[
        (
            "web",
            &[
                ("JWT_SECRET", KEY_A),
                ("ORG_ID", "org_old"),
                ("LEGACY_FLAG", "1"),
            ],
        ),
        ("worker", &[]),
    ]);
    let (double, provider) = provider.dyn_();
    let report = sync(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        &provider,
        SyncOptions::default(),
        None,
        Some(&staging_core::boundary::unchecked_boundary_for_tests(
            "staging",
        )),
    )
    .await
    .unwrap();
    assert!(report.ok && !report.applied);
    let web = report.services.iter().find(|s| s.service == "web").unwrap();
    let action = |s: &staging_secrets::ServiceSync, k: &str| {
        s.items.iter().find(|i| i.key == k).map(|i| i.action)
    };
    assert_eq!(action(web, "JWT_SECRET"), Some(SyncAction::Unchanged));
    assert_eq!(action(web, "ORG_ID"), Some(SyncAction::Change));
    assert_eq!(action(web, "APP_ENV"), Some(SyncAction::Add));
    assert_eq!(action(web, "STAGING_ONLY"), Some(SyncAction::Skip));
    assert_eq!(action(web, "WORKER_TOKEN"), None, "not given to web");
    assert_eq!(web.unmanaged, ["LEGACY_FLAG"]);
    let worker = report
        .services
        .iter()
        .find(|s| s.service == "worker")
        .unwrap();
    assert_eq!(action(worker, "WORKER_TOKEN"), Some(SyncAction::Add));
    assert_eq!(report.pending_changes(), 6, "web: 2, worker: 4");
    assert!(
        double.sets.lock().unwrap().is_empty(),
        "a plan changes nothing"
    );
}

#[tokio::test]
async fn sync_apply_sets_one_key_at_a_time_and_leaves_unmanaged_keys_alone() {
    let (_dir, spec) = spec_in(&[
        ("staging.toml", &spec_text()),
        (
            ".env.staging",
            &format!("JWT_SECRET={KEY_A}\nORG_ID=org_1f3a9c2e\n"),
        ),
        (".env.production", "ORG_ID=org_1f3a9c2e\n"),
    ]);
    let (double, provider) = EnvProvider::with(&[
        ("web", &[("ORG_ID", "org_old"), ("LEGACY_FLAG", "1")]),
        ("worker", &[]),
    ])
    .dyn_();
    let options = SyncOptions {
        apply: true,
        allow_violations: false,
    };
    let report = sync(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        &provider,
        options,
        None,
        Some(&staging_core::boundary::unchecked_boundary_for_tests(
            "staging",
        )),
    )
    .await
    .unwrap();
    assert!(report.ok && report.applied, "{report:?}");
    assert_eq!(
        double.value("web", "ORG_ID").as_deref(),
        Some("org_1f3a9c2e")
    );
    assert_eq!(double.value("web", "JWT_SECRET").as_deref(), Some(KEY_A));
    assert_eq!(double.value("web", "LEGACY_FLAG").as_deref(), Some("1"));
    let sets = double.sets.lock().unwrap().clone();
    assert!(sets.contains(&("web".into(), "ORG_ID".into())));
    assert!(!sets.iter().any(|(_, k)| k == "LEGACY_FLAG"));
    let again = sync(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        &provider,
        SyncOptions::default(),
        None,
        Some(&staging_core::boundary::unchecked_boundary_for_tests(
            "staging",
        )),
    )
    .await
    .unwrap();
    assert_eq!(again.pending_changes(), 0);
}

#[tokio::test]
async fn sync_refuses_to_push_values_that_break_the_rules() {
    let (_dir, spec) = spec_in(&[
        ("staging.toml", &spec_text()),
        (".env.staging", "JWT_SECRET=changeme\nORG_ID=org_1f3a9c2e\n"),
        (".env.production", "ORG_ID=org_1f3a9c2e\n"),
    ]);
    let (double, provider) = EnvProvider::with(&[("web", &[]), ("worker", &[])]).dyn_();
    let report = sync(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        &provider,
        SyncOptions {
            apply: true,
            allow_violations: false,
        },
        None,
        Some(&staging_core::boundary::unchecked_boundary_for_tests(
            "staging",
        )),
    )
    .await
    .unwrap();
    assert!(!report.ok && !report.applied);
    assert!(report.refused.as_deref().unwrap().contains("JWT_SECRET"));
    assert!(double.sets.lock().unwrap().is_empty());
}

#[tokio::test]
async fn sync_reports_a_key_the_provider_refuses_and_goes_on() {
    let (_dir, spec) = spec_in(&[
        ("staging.toml", &spec_text()),
        (
            ".env.staging",
            &format!("JWT_SECRET={KEY_A}\nORG_ID=org_1f3a9c2e\n"),
        ),
        (".env.production", "ORG_ID=org_1f3a9c2e\n"),
    ]);
    let mut double = EnvProvider::with(&[("web", &[]), ("worker", &[])]);
    double.fail_key = Some("JWT_SECRET".into());
    let (double, provider) = double.dyn_();
    let report = sync(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        &provider,
        SyncOptions {
            apply: true,
            allow_violations: false,
        },
        None,
        Some(&staging_core::boundary::unchecked_boundary_for_tests(
            "staging",
        )),
    )
    .await
    .unwrap();
    assert!(!report.ok);
    let web = &report.services.iter().find(|s| s.service == "web").unwrap();
    let jwt = web.items.iter().find(|i| i.key == "JWT_SECRET").unwrap();
    match &jwt.outcome {
        Some(SyncOutcome::Failed(message)) => assert!(!message.contains(KEY_A), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        double.value("web", "ORG_ID").as_deref(),
        Some("org_1f3a9c2e")
    );
}

#[tokio::test]
async fn rotate_writes_a_new_value_that_passes_the_rules_to_the_store_and_the_provider() {
    let (dir, spec) = spec_in(&[
        ("staging.toml", &spec_text()),
        (
            ".env.staging",
            &format!("# keep\nJWT_SECRET={KEY_A}\nORG_ID=org_1f3a9c2e\n"),
        ),
        (".env.production", "ORG_ID=org_1f3a9c2e\n"),
    ]);
    let (double, provider) = EnvProvider::with(&[("web", &[]), ("worker", &[])]).dyn_();
    let first = rotate(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        "JWT_SECRET",
        Some((
            &provider,
            &staging_core::boundary::unchecked_boundary_for_tests("staging"),
        )),
    )
    .await
    .unwrap();
    assert!(first.ok);
    assert_eq!(first.store, "dotenv:.env.staging");
    assert_eq!(first.provider_services, ["web", "worker"]);
    assert!(
        first.warnings.iter().any(|w| w.contains("logged out")),
        "{:?}",
        first.warnings
    );
    let text = std::fs::read_to_string(dir.path().join(".env.staging")).unwrap();
    assert!(
        text.starts_with("# keep\nJWT_SECRET=") && text.ends_with("ORG_ID=org_1f3a9c2e\n"),
        "{text}"
    );
    assert!(!text.contains(KEY_A));
    let stored = double.value("web", "JWT_SECRET").unwrap();
    assert_eq!(stored.len(), 64);
    assert!(!format!("{first:?}").contains(&stored));

    let report = check(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        None,
    )
    .await
    .unwrap();
    let row = report.vars.iter().find(|r| r.name == "JWT_SECRET").unwrap();
    assert!(
        matches!(row.status, VarStatus::Ok | VarStatus::Warning),
        "{row:?}"
    );
    assert_eq!(row.fingerprint.as_deref(), Some(first.fingerprint.as_str()));

    let second = rotate(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        "JWT_SECRET",
        None,
    )
    .await
    .unwrap();
    assert_ne!(first.fingerprint, second.fingerprint);
    assert!(second.warnings.iter().any(|w| w.contains("sync")));
}

#[tokio::test]
async fn generated_values_follow_length_and_alphabet_and_differ_each_time() {
    let rules: staging_core::spec::Rules = toml::from_str(
        r#"kind = "signing_key"
length = 40
alphabet = "hex""#,
    )
    .unwrap();
    let a = generate(&rules).unwrap();
    let b = generate(&rules).unwrap();
    assert_eq!(a.expose_secret().len(), 40);
    assert!(a.expose_secret().chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a.expose_secret(), b.expose_secret());
    let default: staging_core::spec::Rules = toml::from_str("").unwrap();
    let v = generate(&default).unwrap();
    assert_eq!(v.expose_secret().len(), 64);
    assert!(v.expose_secret().chars().all(|c| c.is_ascii_alphanumeric()));
}

#[tokio::test]
async fn rotate_refuses_read_only_stores_shared_values_and_plain_variables() {
    let head = HEAD.replace(
        "secrets = { dotenv = \".env.staging\" }",
        "secrets = { env = \"STAGING_\" }",
    );
    let (_dir, spec) = spec_in(&[("staging.toml", &format!("{head}\n{VARS}"))]);
    let err = rotate(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        "JWT_SECRET",
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");
    assert!(
        rotate(
            &staging_core::SecretBackends::none(),
            &spec,
            "staging",
            "ORG_ID",
            None
        )
        .await
        .unwrap_err()
        .to_string()
        .contains("same_as")
    );
    assert!(
        rotate(
            &staging_core::SecretBackends::none(),
            &spec,
            "staging",
            "APP_ENV",
            None
        )
        .await
        .unwrap_err()
        .to_string()
        .contains("not a secret")
    );
    assert!(
        rotate(
            &staging_core::SecretBackends::none(),
            &spec,
            "staging",
            "NOPE",
            None
        )
        .await
        .unwrap_err()
        .to_string()
        .contains("not declared")
    );
}
