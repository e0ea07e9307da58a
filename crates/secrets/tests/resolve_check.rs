//! Resolving an environment's variables, checking them, and the `secrets` step.

mod common;

use std::sync::Arc;

use common::{HEAD, spec_in};
use secrecy::ExposeSecret;
use staging_core::pipeline::{RunContext, Step, StepStatus};
use staging_secrets::{SecretsStep, VarStatus, check, resolve_vars};

const KEY_A: &str = "Zq7Lw2Nc9Rt4Vb8Xm1Kp6Hs3Dg5Fj0Ay7Ue2Io9Pl4Mk8Nj1Bh6Gv3Cf5Dx0Sz2";
const KEY_B: &str = "Pm3Vx8Ck1Lr6Tw9Yb2Nq5Hd7Fs0Gj4Az1Ue8Io3Ky6Mh9Nb2Rc5Wt7Xv0Sp4Dl1";

fn spec_text(vars: &str) -> String {
    format!("{HEAD}\n{vars}")
}

#[tokio::test]
async fn resolves_plain_values_own_sources_and_the_default_store() {
    let vars = r#"
[vars.APP_NAME]
value = "${project}-${env}"
[vars.RELEASE]
value = "${commit}"
[vars.CALLBACK_URL]
value = "${services.web.url}/callback"
[vars.JWT_SECRET]
secret = true
[vars.STRIPE_KEY]
secret = true
source = { file = "stripe.key" }
[vars.LOG_LEVEL]
values = { production = "warn" }
required = false
[vars.SENTRY_DSN]
secret = true
"#;
    let (_dir, spec) = spec_in(&[
        ("staging.toml", &spec_text(vars)),
        (".env.staging", &format!("JWT_SECRET={KEY_A}\n")),
        ("stripe.key", "sk_live_file\n"),
    ]);
    let r = resolve_vars(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        Some("abc123"),
    )
    .await
    .unwrap();
    let get = |k: &str| r.values.get(k).map(|v| v.expose_secret().to_owned());
    assert_eq!(get("APP_NAME").as_deref(), Some("shop-staging"));
    assert_eq!(get("RELEASE").as_deref(), Some("abc123"));
    assert_eq!(
        get("CALLBACK_URL").as_deref(),
        Some("${services.web.url}/callback")
    );
    assert_eq!(r.deferred["CALLBACK_URL"], ["services.web.url"]);
    assert_eq!(get("JWT_SECRET").as_deref(), Some(KEY_A));
    assert_eq!(
        get("STRIPE_KEY").as_deref(),
        Some("sk_live_file\n"),
        "a file's content is kept exactly"
    );
    assert_eq!(get("LOG_LEVEL"), None);
    assert_eq!(
        r.missing,
        ["SENTRY_DSN"],
        "optional LOG_LEVEL is not missing"
    );
    assert_eq!(r.sources["APP_NAME"], "spec");
    assert_eq!(r.sources["JWT_SECRET"], "dotenv:.env.staging");
    assert_eq!(r.sources["STRIPE_KEY"], "file:stripe.key");
    assert_eq!(r.sources["LOG_LEVEL"], "dotenv:.env.staging");
    assert!(r.is_secret("JWT_SECRET") && r.is_secret("STRIPE_KEY") && !r.is_secret("APP_NAME"));

    let prod = resolve_vars(
        &staging_core::SecretBackends::none(),
        &spec,
        "production",
        None,
    )
    .await
    .unwrap();
    assert_eq!(prod.values["LOG_LEVEL"].expose_secret(), "warn");
    assert_eq!(
        prod.values["RELEASE"].expose_secret(),
        "${commit}",
        "no commit given: left for later"
    );
    assert_eq!(prod.deferred["RELEASE"], ["commit"]);
}

#[tokio::test]
async fn a_plain_value_that_embeds_a_secret_is_a_secret() {
    let vars = r#"
[vars.DB_PASSWORD]
secret = true
[vars.DATABASE_URL]
value = "postgres://app:${vars.DB_PASSWORD}@db/${env}"
"#;
    let (_dir, spec) = spec_in(&[
        ("staging.toml", &spec_text(vars)),
        (".env.staging", "DB_PASSWORD=hunter2hunter2\n"),
    ]);
    let r = resolve_vars(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        r.values["DATABASE_URL"].expose_secret(),
        "postgres://app:hunter2hunter2@db/staging"
    );
    assert!(r.is_secret("DATABASE_URL"));
}

#[tokio::test]
async fn an_unknown_environment_is_an_error() {
    let (_dir, spec) = spec_in(&[("staging.toml", &spec_text(""))]);
    assert!(
        resolve_vars(&staging_core::SecretBackends::none(), &spec, "qa", None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn check_catches_a_planted_placeholder_and_a_trailing_newline() {
    let vars = r#"
[vars.JWT_SECRET]
secret = true
rules = { kind = "signing_key" }
[vars.STRIPE_KEY]
secret = true
[vars.MAILER_KEY]
secret = true
"#;
    let (_dir, spec) = spec_in(&[
        ("staging.toml", &spec_text(vars)),
        (
            ".env.staging",
            &format!(
                "JWT_SECRET={KEY_A}\nSTRIPE_KEY=PLACEHOLDER-REPLACE-ME\nMAILER_KEY=\"key-123456\\n\"\n"
            ),
        ),
    ]);
    let report = check(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        None,
    )
    .await
    .unwrap();
    assert!(!report.ok);
    assert_eq!(report.exit_code(), 1);
    let row = |n: &str| report.vars.iter().find(|r| r.name == n).unwrap();
    assert_eq!(row("JWT_SECRET").status, VarStatus::Ok);
    assert!(
        row("JWT_SECRET")
            .fingerprint
            .as_deref()
            .unwrap()
            .starts_with("fp:")
    );
    assert_eq!(row("STRIPE_KEY").status, VarStatus::Invalid);
    assert_eq!(row("STRIPE_KEY").problems[0].rule, "placeholder");
    assert_eq!(row("MAILER_KEY").status, VarStatus::Invalid);
    assert_eq!(row("MAILER_KEY").problems[0].rule, "whitespace");
    assert_eq!(row("MAILER_KEY").source, "dotenv:.env.staging");
}

#[tokio::test]
async fn staging_sharing_a_production_signing_key_fails_and_distinct_keys_pass() {
    let vars = r#"
[vars.JWT_SECRET]
secret = true
rules = { kind = "signing_key", differs_from = "production" }
"#;
    let files = |prod: &str| {
        vec![
            ("staging.toml".to_owned(), spec_text(vars)),
            (".env.staging".to_owned(), format!("JWT_SECRET={KEY_A}\n")),
            (".env.production".to_owned(), format!("JWT_SECRET={prod}\n")),
        ]
    };
    let same = files(KEY_A);
    let (_d1, spec) = spec_in(
        &same
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect::<Vec<_>>(),
    );
    let report = check(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        None,
    )
    .await
    .unwrap();
    let row = &report.vars[0];
    assert_eq!(row.status, VarStatus::Invalid);
    assert_eq!(row.problems[0].rule, "differs_from");
    assert!(
        row.problems[0].message.contains("production"),
        "{}",
        row.problems[0].message
    );

    let differ = files(KEY_B);
    let (_d2, spec) = spec_in(
        &differ
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        check(
            &staging_core::SecretBackends::none(),
            &spec,
            "staging",
            None
        )
        .await
        .unwrap()
        .vars[0]
            .status,
        VarStatus::Ok
    );
}

#[tokio::test]
async fn a_comparison_that_cannot_be_made_is_a_warning_not_a_failure() {
    let vars = r#"
[vars.JWT_SECRET]
secret = true
rules = { kind = "signing_key", differs_from = "production" }
"#;
    let (_dir, spec) = spec_in(&[
        ("staging.toml", &spec_text(vars)),
        (".env.staging", &format!("JWT_SECRET={KEY_A}\n")),
    ]);
    let report = check(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        None,
    )
    .await
    .unwrap();
    assert!(report.ok);
    assert_eq!(report.vars[0].status, VarStatus::Warning);
}

#[tokio::test]
async fn a_shared_value_that_differs_fails_same_as() {
    let vars = r#"
[vars.ORG_ID]
secret = true
rules = { same_as = "production" }
"#;
    let (_dir, spec) = spec_in(&[
        ("staging.toml", &spec_text(vars)),
        (".env.staging", "ORG_ID=org_staging_1\n"),
        (".env.production", "ORG_ID=org_prod_1\n"),
    ]);
    let report = check(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        None,
    )
    .await
    .unwrap();
    assert_eq!(report.vars[0].problems[0].rule, "same_as");
    std::fs::write(_dir.path().join(".env.staging"), "ORG_ID=org_prod_1\n").unwrap();
    assert!(
        check(
            &staging_core::SecretBackends::none(),
            &spec,
            "staging",
            None
        )
        .await
        .unwrap()
        .ok
    );
}

#[tokio::test]
async fn a_one_time_seed_flag_left_on_fails_and_a_debug_flag_fails_in_production_only() {
    let vars = r#"
[vars.RUN_PRODUCTION_SEED]
values = { staging = "true", production = "false" }
rules = { kind = "boolean", forbid = ["true", "1"] }
[vars.DEBUG]
value = "true"
rules = { forbid_in_protected = ["true"] }
"#;
    let (_dir, spec) = spec_in(&[("staging.toml", &spec_text(vars))]);
    let staging = check(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        None,
    )
    .await
    .unwrap();
    let row = |r: &staging_secrets::CheckReport, n: &str| {
        r.vars.iter().find(|x| x.name == n).unwrap().status
    };
    assert_eq!(row(&staging, "RUN_PRODUCTION_SEED"), VarStatus::Invalid);
    assert_eq!(row(&staging, "DEBUG"), VarStatus::Ok);
    let production = check(
        &staging_core::SecretBackends::none(),
        &spec,
        "production",
        None,
    )
    .await
    .unwrap();
    assert_eq!(row(&production, "RUN_PRODUCTION_SEED"), VarStatus::Ok);
    assert_eq!(row(&production, "DEBUG"), VarStatus::Invalid);
}

#[tokio::test]
async fn a_failing_source_is_reported_for_its_variable_without_stopping_the_others() {
    let vars = r#"
[vars.FROM_COMMAND]
secret = true
source = { command = ["sh", "-c", "echo nope >&2; exit 7"] }
[vars.FROM_DOTENV]
secret = true
"#;
    let (_dir, spec) = spec_in(&[
        ("staging.toml", &spec_text(vars)),
        (".env.staging", "FROM_DOTENV=dotenv-value-1234\n"),
    ]);
    let r = resolve_vars(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        None,
    )
    .await
    .unwrap();
    assert!(
        r.errors["FROM_COMMAND"].contains("exit code 7"),
        "{}",
        r.errors["FROM_COMMAND"]
    );
    assert_eq!(r.sources["FROM_COMMAND"], "command:sh");
    assert!(r.values.contains_key("FROM_DOTENV"));
    let report = check(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        None,
    )
    .await
    .unwrap();
    assert_eq!(report.vars[0].status, VarStatus::Error);
}

#[tokio::test]
async fn a_command_default_store_gets_the_variable_name_for_key() {
    let head = HEAD.replace(
        "secrets = { dotenv = \".env.staging\" }",
        "secrets = { command = [\"sh\", \"get.sh\", \"{key}\"] }",
    );
    let text = format!("{head}\n[vars.API_TOKEN]\nsecret = true\n");
    let (_dir, spec) = spec_in(&[
        ("staging.toml", &text),
        ("get.sh", "printf 'tok-for-%s\\n' \"$1\"\n"),
    ]);
    let r = resolve_vars(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.values["API_TOKEN"].expose_secret(), "tok-for-API_TOKEN");
}

#[tokio::test]
async fn secrets_step_hands_values_to_the_run_and_reports_one_finding_per_variable() {
    let vars = r#"
[vars.JWT_SECRET]
secret = true
rules = { kind = "signing_key" }
[vars.APP_ENV]
value = "${env}"
"#;
    let (_dir, spec) = spec_in(&[
        ("staging.toml", &spec_text(vars)),
        (".env.staging", &format!("JWT_SECRET={KEY_A}\n")),
    ]);
    let mut ctx = RunContext::new(Arc::new(spec), "staging", "abc123").unwrap();
    let report = SecretsStep.run(&mut ctx).await.unwrap();
    assert_eq!(report.status, StepStatus::Passed, "{report:?}");
    assert_eq!(report.findings.len(), 2);
    assert_eq!(ctx.vars["JWT_SECRET"].expose_secret(), KEY_A);
    assert_eq!(ctx.vars["APP_ENV"].expose_secret(), "staging");
    assert_eq!(
        ctx.redactor.redact(&format!("x {KEY_A} y")),
        "x [REDACTED] y"
    );
    assert!(report.findings.iter().all(|f| !f.message.contains(KEY_A)));
}

#[tokio::test]
async fn secrets_step_fails_when_a_required_variable_is_missing() {
    let vars = "[vars.JWT_SECRET]\nsecret = true\nrules = { kind = \"signing_key\" }\n";
    let (_dir, spec) = spec_in(&[("staging.toml", &spec_text(vars))]);
    let mut ctx = RunContext::new(Arc::new(spec), "staging", "abc123").unwrap();
    let report = SecretsStep.run(&mut ctx).await.unwrap();
    assert_eq!(report.status, StepStatus::Failed);
    assert!(
        report.findings[0].message.contains("logged out"),
        "{}",
        report.findings[0].message
    );
}
