//! A canary secret's value never appears in `Debug` of any type, in an error message, or in
//! any report's JSON.

mod common;

use std::sync::Arc;

use common::{CANARY, EnvProvider, HEAD, secret, spec_in};
use staging_core::SecretStore;
use staging_core::pipeline::{RunContext, Step};
use staging_secrets::{
    CommandStore, DotenvStore, Fingerprinter, SyncOptions, check, diff, locate, resolve_vars,
    rotate, sync,
};

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(CANARY), "{what} contains the canary: {text}");
    assert!(
        !text.contains(&CANARY[..20]),
        "{what} contains part of the canary: {text}"
    );
}

const VARS: &str = r#"
[vars.CANARY_KEY]
secret = true
rules = { kind = "signing_key", differs_from = "production" }
[vars.CANARY_NEWLINE]
secret = true
[vars.CANARY_SHORT]
secret = true
rules = { min_length = 200, min_entropy_bits = 1000, forbid = ["x"] }
[vars.CANARY_URL]
secret = true
rules = { kind = "url" }
[vars.DATABASE_URL]
value = "postgres://app:${vars.CANARY_KEY}@db/${env}"
"#;

fn files() -> Vec<(&'static str, String)> {
    vec![
        ("staging.toml", format!("{HEAD}\n{VARS}")),
        (
            ".env.staging",
            format!(
                "CANARY_KEY={CANARY}\nCANARY_NEWLINE=\"{CANARY}\\n\"\nCANARY_SHORT={CANARY}\nCANARY_URL={CANARY}\n"
            ),
        ),
        (".env.production", format!("CANARY_KEY={CANARY}\n")),
    ]
}

#[tokio::test]
async fn no_report_debug_or_json_contains_the_canary() {
    let f = files();
    let (_dir, spec) = spec_in(&f.iter().map(|(a, b)| (*a, b.as_str())).collect::<Vec<_>>());

    let resolved = resolve_vars(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        Some("abc"),
    )
    .await
    .unwrap();
    assert!(resolved.values.len() >= 5);
    assert_clean("ResolvedVars Debug", &format!("{resolved:?}"));

    let report = check(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        None,
    )
    .await
    .unwrap();
    assert!(
        !report.ok,
        "the canary values break rules, so every message path runs"
    );
    assert_clean("check Debug", &format!("{report:?}"));
    assert_clean("check JSON", &serde_json::to_string(&report).unwrap());

    let d = diff(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        "production",
        None,
    )
    .await
    .unwrap();
    assert_clean("diff Debug", &format!("{d:?}"));
    assert_clean("diff JSON", &serde_json::to_string(&d).unwrap());

    let mut double = EnvProvider::with(&[("web", &[("CANARY_KEY", CANARY)]), ("worker", &[])]);
    double.fail_key = Some("CANARY_URL".into());
    let (_double, provider) = double.dyn_();
    let plan = sync(
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
    assert_clean("sync plan JSON", &serde_json::to_string(&plan).unwrap());
    let applied = sync(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        &provider,
        SyncOptions {
            apply: true,
            allow_violations: true,
        },
        None,
        Some(&staging_core::boundary::unchecked_boundary_for_tests(
            "staging",
        )),
    )
    .await
    .unwrap();
    assert!(
        !applied.ok,
        "the provider refused CANARY_URL with the value in its error"
    );
    assert_clean("sync apply Debug", &format!("{applied:?}"));
    assert_clean("sync apply JSON", &serde_json::to_string(&applied).unwrap());

    let fp = Fingerprinter::new("shop", Some(&secret(CANARY)));
    assert_clean("Fingerprinter Debug", &format!("{fp:?}"));
    assert_clean("Tag Debug", &format!("{:?}", fp.tag(&secret(CANARY))));
    assert_clean("fingerprint", &fp.display(&secret(CANARY)));

    let loc = locate(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        &spec.spec.environments["staging"].secrets.clone().unwrap(),
        "CANARY_KEY",
        true,
    )
    .unwrap();
    assert_clean("Location Debug", &format!("{loc:?}"));
}

#[tokio::test]
async fn the_secrets_step_report_and_context_never_show_the_canary() {
    let f = files();
    let (_dir, spec) = spec_in(&f.iter().map(|(a, b)| (*a, b.as_str())).collect::<Vec<_>>());
    let mut ctx = RunContext::new(Arc::new(spec), "staging", "abc123").unwrap();
    let report = staging_secrets::SecretsStep.run(&mut ctx).await.unwrap();
    assert_clean("step report Debug", &format!("{report:?}"));
    assert_clean("step report JSON", &serde_json::to_string(&report).unwrap());
    assert_clean("RunContext Debug", &format!("{ctx:?}"));
    assert_clean(
        "redacted DATABASE_URL",
        &ctx.redactor.redact(
            &ctx.render(&"${vars.DATABASE_URL}".parse().unwrap())
                .unwrap(),
        ),
    );
}

#[tokio::test]
async fn errors_from_stores_never_contain_the_canary() {
    staging_core::Redactor::global().register(&secret(CANARY));
    let dir = tempfile::tempdir().unwrap();

    let cmd = CommandStore::new(vec![
        "sh".into(),
        "-c".into(),
        format!("echo {CANARY}; echo \"bad token {CANARY}\" >&2; exit 1"),
    ])
    .unwrap();
    assert_clean("CommandStore Debug", &format!("{cmd:?}"));
    let err = cmd.get("K").await.unwrap_err();
    assert_clean("command error", &err.to_string());
    assert_clean("command error Debug", &format!("{err:?}"));

    std::fs::write(
        dir.path().join(".env"),
        format!("OK=1\nBROKEN=\"{CANARY}\n"),
    )
    .unwrap();
    let store = DotenvStore::new(dir.path().join(".env"), ".env");
    let err = store.get("OK").await.unwrap_err();
    assert_clean("dotenv error", &err.to_string());

    std::fs::write(dir.path().join("x.env"), format!("{CANARY}=oops\n")).unwrap();
    let err = DotenvStore::new(dir.path().join("x.env"), "x.env")
        .get("A")
        .await;
    if let Err(e) = err {
        assert_clean("dotenv key error", &e.to_string());
    }
}

#[tokio::test]
async fn the_rotate_report_shows_a_fingerprint_and_never_the_new_value() {
    let f = files();
    let (dir, spec) = spec_in(&f.iter().map(|(a, b)| (*a, b.as_str())).collect::<Vec<_>>());
    let (double, provider) = EnvProvider::with(&[("web", &[]), ("worker", &[])]).dyn_();
    let report = rotate(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        "CANARY_KEY",
        Some((
            &provider,
            &staging_core::boundary::unchecked_boundary_for_tests("staging"),
        )),
    )
    .await
    .unwrap();
    let new = double.value("web", "CANARY_KEY").unwrap();
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains(&new), "{json}");
    assert!(!format!("{report:?}").contains(&new));
    assert!(
        !std::fs::read_to_string(dir.path().join(".env.staging"))
            .unwrap()
            .contains(&format!("CANARY_KEY={CANARY}"))
    );
}
