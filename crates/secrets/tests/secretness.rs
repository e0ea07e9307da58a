//! The resolver asks the one decision (`staging_core::secretness`): in every environment the
//! names it reports secret are exactly the decision's, and exactly those values are
//! registered with the redactor; a declared secret too short to mask is refused by `check`.

mod common;

use common::{CANARY, spec_in};
use secrecy::SecretString;
use staging_core::Redactor;
use staging_core::secretness::secret_vars;
use staging_secrets::{check, resolve_vars};

const SPEC: &str = r#"
[project]
name = "shop"

[environments.staging]
provider = "local"
promotes_to = "production"
secrets = { dotenv = ".env.staging" }

[environments.production]
provider = "local"
protected = true

[services.web]

[vars.JWT_SECRET]
secret = true
sources = { production = { env = "SECRETNESS_TEST_PRODUCTION_JWT" } }

[vars.APP_ENV]
values = { staging = "staging-from-spec-value", production = "production" }

[vars.FROM_STORE]
source = { dotenv = ".env.extra" }

[vars.ONLY_PRODUCTION_PLAIN]
values = { production = "plain-in-production-only" }
required = false

[vars.CALLBACK]
value = "https://x.example/cb?t=${vars.JWT_SECRET}"
"#;

#[tokio::test]
async fn resolved_secret_names_are_the_one_decision_in_every_environment() {
    let (_dir, spec) = spec_in(&[
        ("staging.toml", SPEC),
        (
            ".env.staging",
            &format!("JWT_SECRET={CANARY}\nONLY_PRODUCTION_PLAIN=read-from-the-staging-store\n"),
        ),
        (".env.extra", "FROM_STORE=value-from-the-extra-store\n"),
    ]);
    for env in ["staging", "production"] {
        let resolved = resolve_vars(&staging_core::SecretBackends::none(), &spec, env, None)
            .await
            .unwrap();
        assert_eq!(
            resolved.secret_names,
            secret_vars(&spec.spec, env),
            "{env}: {resolved:?}"
        );
    }
    let staging = resolve_vars(
        &staging_core::SecretBackends::none(),
        &spec,
        "staging",
        None,
    )
    .await
    .unwrap();
    // A value from a store is a secret, whether declared so or not; a spec value is not.
    assert!(staging.is_secret("FROM_STORE"));
    assert!(staging.is_secret("ONLY_PRODUCTION_PLAIN"));
    assert!(staging.is_secret("CALLBACK"));
    assert!(!staging.is_secret("APP_ENV"));
    let production = resolve_vars(
        &staging_core::SecretBackends::none(),
        &spec,
        "production",
        None,
    )
    .await
    .unwrap();
    assert!(!production.is_secret("ONLY_PRODUCTION_PLAIN"));
    // What was registered: the secrets' values, not the plain ones.
    let shown = Redactor::global()
        .redact(
            "value-from-the-extra-store read-from-the-staging-store staging-from-spec-value \
             plain-in-production-only",
        )
        .into_owned();
    assert_eq!(
        shown,
        "[REDACTED] [REDACTED] staging-from-spec-value plain-in-production-only"
    );
}

#[tokio::test]
async fn a_declared_secret_too_short_or_common_to_mask_is_refused_unless_the_rules_accept_it() {
    let spec_text = r#"
[project]
name = "shop"

[environments.staging]
provider = "local"
secrets = { dotenv = ".env.staging" }

[services.web]

[vars.SHORT]
secret = true

[vars.WORD]
secret = true

[vars.NUMBER]
secret = true

[vars.ACCEPTED]
secret = true
rules = { min_length = 4 }

[vars.GOOD]
secret = true
"#;
    let (_dir, spec) = spec_in(&[
        ("staging.toml", spec_text),
        (
            ".env.staging",
            "SHORT=x7!kQ\nWORD=production\nNUMBER=123456789\nACCEPTED=k3y9\nGOOD=a-long-enough-secret-1f2e\n",
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
    let rules_of = |name: &str| -> Vec<&str> {
        report
            .vars
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("{name}: {report:?}"))
            .problems
            .iter()
            .map(|p| p.rule)
            .collect()
    };
    for name in ["SHORT", "WORD", "NUMBER"] {
        assert_eq!(rules_of(name), ["too_short"], "{name}");
    }
    assert!(rules_of("ACCEPTED").is_empty());
    assert!(rules_of("GOOD").is_empty());
    let message = &report
        .vars
        .iter()
        .find(|v| v.name == "WORD")
        .unwrap()
        .problems[0]
        .message;
    assert!(message.contains("too short to be a secret"), "{message}");
    assert!(!message.contains("production"), "{message}");
    // Registered, it is never masked inside text (it would hide the word everywhere).
    Redactor::global().register(&SecretString::from("production".to_owned()));
    assert_eq!(
        Redactor::global().redact("deployed to production"),
        "deployed to production"
    );
}
