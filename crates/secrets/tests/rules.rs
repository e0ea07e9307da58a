//! Each rule, passing and failing, with messages that say why it matters and never repeat
//! the value.

mod common;

use common::{CANARY, secret};
use staging_core::spec::Var;
use staging_secrets::rules::{self, Severity, Violation, check_value, estimate_entropy_bits};

fn var(toml_text: &str) -> Var {
    toml::from_str(toml_text).unwrap()
}

fn problems(v: &Var, value: &str) -> Vec<Violation> {
    check_value("X", v, &secret(value), "staging", false, false, false)
}

fn rules_broken(v: &Var, value: &str) -> Vec<&'static str> {
    problems(v, value).into_iter().map(|p| p.rule).collect()
}

const KEY_64: &str = "Zq7Lw2Nc9Rt4Vb8Xm1Kp6Hs3Dg5Fj0Ay7Ue2Io9Pl4Mk8Nj1Bh6Gv3Cf5Dx0Sz2";

#[test]
fn a_good_value_breaks_no_rule() {
    assert!(rules_broken(&var(""), "sk_live_4eC39HqLyjWDarjtT1zdp7dc").is_empty());
}

#[test]
fn url_kind_accepts_absolute_urls_and_refuses_others() {
    let v = var(r#"rules = { kind = "url" }"#);
    assert!(rules_broken(&v, "postgres://app:pw@db:5432/shop").is_empty());
    assert!(rules_broken(&v, "https://example.com/x").is_empty());
    assert_eq!(rules_broken(&v, "db:5432/shop"), ["kind"]);
    assert_eq!(rules_broken(&v, "/relative/path"), ["kind"]);
}

#[test]
fn integer_kind_accepts_integers_only() {
    let v = var(r#"rules = { kind = "integer" }"#);
    assert!(rules_broken(&v, "-42").is_empty());
    assert_eq!(rules_broken(&v, "4.2"), ["kind"]);
    assert_eq!(rules_broken(&v, "ten"), ["kind"]);
}

#[test]
fn boolean_kind_accepts_the_usual_spellings() {
    let v = var(r#"rules = { kind = "boolean" }"#);
    for ok in ["true", "FALSE", "1", "0", "yes", "off"] {
        assert!(rules_broken(&v, ok).is_empty(), "{ok}");
    }
    assert_eq!(rules_broken(&v, "maybe"), ["kind"]);
}

#[test]
fn pem_kind_wants_a_whole_block_with_real_line_breaks() {
    let v = var(r#"rules = { kind = "pem" }"#);
    let good = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASC\nAT8wggE7AgEAAkEAq7BFUpkGp3+XQorX\n-----END PRIVATE KEY-----";
    assert!(rules_broken(&v, good).is_empty());
    assert_eq!(
        rules_broken(&v, "MIIBVQIBADANBgkqhkiG9w0BAQEFAASC"),
        ["kind"]
    );
    assert_eq!(
        rules_broken(&v, "-----BEGIN PRIVATE KEY-----\nMIIB\n"),
        ["kind"]
    );
    assert!(
        rules_broken(&v, &format!("{good}\n")).is_empty(),
        "a PEM file's final newline is fine"
    );
    let escaped = good.replace('\n', "\\n");
    let p = problems(&v, &escaped);
    assert_eq!(p.len(), 1);
    assert!(p[0].message.contains("`\\n`"), "{}", p[0].message);
}

#[test]
fn signing_key_passes_when_long_and_random() {
    let v = var(r#"rules = { kind = "signing_key" }"#);
    assert!(rules_broken(&v, KEY_64).is_empty());
    assert!(
        rules_broken(&v, "3f9a0c7e5b1d2f4a8c6e0b9d7f5a3c1e").is_empty(),
        "32 random hex characters are enough"
    );
}

#[test]
fn a_short_signing_key_is_an_error_that_says_sessions_break() {
    let v = var(r#"rules = { kind = "signing_key" }"#);
    let p = problems(&v, "Zq7Lw2Nc9Rt4");
    assert!(p.iter().any(|p| p.rule == "min_length"));
    let msg = &p.iter().find(|p| p.rule == "min_length").unwrap().message;
    assert!(msg.contains("logged out"), "{msg}");
    assert!(!msg.contains("Zq7Lw2Nc9Rt4"));
}

#[test]
fn a_missing_signing_key_says_frameworks_generate_one_per_restart() {
    let v = var(r#"secret = true
rules = { kind = "signing_key" }"#);
    let m = rules::missing("SECRET_KEY_BASE", &v, "staging", "dotenv:.env.staging");
    assert_eq!(m.severity, Severity::Error);
    assert!(m.message.contains("every restart"), "{}", m.message);
    assert!(m.message.contains("logged out"), "{}", m.message);
    let plain = rules::missing("API_URL", &var(""), "staging", "none");
    assert!(
        plain.message.contains("no `secrets` store"),
        "{}",
        plain.message
    );
}

#[test]
fn min_length_is_configurable() {
    let v = var(r#"rules = { min_length = 10 }"#);
    assert!(rules_broken(&v, "0123456789").is_empty());
    assert_eq!(rules_broken(&v, "012345678"), ["min_length"]);
}

#[test]
fn min_entropy_refuses_repetitive_values_of_enough_length() {
    let v = var(r#"rules = { min_entropy_bits = 100 }"#);
    assert!(rules_broken(&v, KEY_64).is_empty());
    assert_eq!(rules_broken(&v, &"ab".repeat(32)), ["min_entropy"]);
    assert_eq!(rules_broken(&v, &"password".repeat(4)), ["min_entropy"]);
    assert!(estimate_entropy_bits("") == 0.0);
}

#[test]
fn built_in_placeholders_are_refused() {
    let v = var("");
    for p in [
        "",
        "PLACEHOLDER-REPLACE-ME",
        "placeholder",
        "REPLACE_ME",
        "replace-with-your-key-me",
        "changeme",
        "CHANGE_ME",
        "TODO",
        "todo: ask ops",
        "xxx",
        "XXXX-XXXX",
        "<your api key>",
        "your-api-key-here",
        "YOUR_SECRET_HERE",
    ] {
        assert!(
            rules_broken(&v, p).contains(&"placeholder"),
            "{p:?} should be a placeholder"
        );
    }
    for ok in [
        "xerox",
        "todolist-service",
        "replacement",
        "yourhere",
        "https://x.io/<id>",
    ] {
        assert!(
            !rules_broken(&v, ok).contains(&"placeholder"),
            "{ok:?} is not a placeholder"
        );
    }
}

#[test]
fn configured_placeholders_are_refused_with_globs_and_built_ins_can_be_switched_off() {
    let v = var(r#"rules = { placeholders = ["sk_test_*", "demo"] }"#);
    assert_eq!(rules_broken(&v, "sk_test_abc123"), ["placeholder"]);
    assert_eq!(rules_broken(&v, "DEMO"), ["placeholder"]);
    assert!(rules_broken(&v, "sk_live_abc123").is_empty());
    let off = var(r#"rules = { allow_placeholders = true }"#);
    assert!(rules_broken(&off, "").is_empty());
    assert!(rules_broken(&off, "changeme").is_empty());
}

#[test]
fn a_placeholder_message_does_not_repeat_the_value() {
    let p = problems(&var(""), "your-canary-here");
    assert!(
        !p[0].message.contains("your-canary-here"),
        "{}",
        p[0].message
    );
}

#[test]
fn leading_or_trailing_whitespace_and_newlines_are_refused() {
    let v = var("");
    let p = problems(&v, "sk_live_4eC39HqLyjWDarjtT1zdp7dc\n");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].rule, "whitespace");
    assert!(
        p[0].message.contains("trailing newline"),
        "{}",
        p[0].message
    );
    assert!(
        problems(&v, " sk_live_4eC39Hq")[0]
            .message
            .contains("leading space")
    );
    assert!(
        problems(&v, "sk_live_4eC39Hq\t")[0]
            .message
            .contains("trailing tab")
    );
    assert!(rules_broken(&v, "inner space is fine").is_empty());
    let allowed = var(r#"rules = { allow_whitespace = true }"#);
    assert!(rules_broken(&allowed, "value\n").is_empty());
}

#[test]
fn a_value_wrapped_in_matching_quotes_is_refused_like_a_trailing_newline() {
    let v = var("");
    let p = problems(&v, "'\"ptk_9f8e7d6c5b4a39281706\"'");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].rule, "quotes");
    assert!(p[0].message.contains("single quotes"), "{}", p[0].message);
    assert!(!p[0].message.contains("ptk_9f8e"), "{}", p[0].message);
    assert_eq!(rules_broken(&v, "\"ptk_9f8e7d6c5b4a39281706\""), ["quotes"]);
    // Quotes inside, or only on one side, are part of a value.
    assert!(rules_broken(&v, "pt\"k_9f8e7d6c5b4a3928170\"6").is_empty());
    assert!(rules_broken(&v, "\"ptk_9f8e7d6c5b4a39281706").is_empty());
}

#[test]
fn a_kind_check_looks_past_surrounding_whitespace_so_only_the_whitespace_rule_fires() {
    let v = var(r#"rules = { kind = "integer" }"#);
    assert_eq!(rules_broken(&v, "42\n"), ["whitespace"]);
}

#[test]
fn forbidden_values_are_refused_where_the_rule_applies() {
    let v = var(r#"rules = { forbid = ["true", "1"], forbid_in = ["staging"] }"#);
    let p = problems(&v, "TRUE");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].rule, "forbid");
    assert!(p[0].message.contains("every boot"), "{}", p[0].message);
    assert!(rules_broken(&v, "false").is_empty());
    assert!(
        check_value("X", &v, &secret("true"), "production", false, false, false).is_empty(),
        "not forbidden outside forbid_in"
    );
    let everywhere = var(r#"rules = { forbid = ["true"] }"#);
    assert_eq!(
        check_value(
            "X",
            &everywhere,
            &secret("true"),
            "production",
            false,
            false,
            false
        )
        .len(),
        1
    );
}

#[test]
fn forbidden_secret_values_are_not_named_in_the_message() {
    let v = var(&format!(
        "secret = true\nrules = {{ forbid = [\"{CANARY}\"] }}"
    ));
    let p = check_value("X", &v, &secret(CANARY), "staging", false, false, true);
    assert_eq!(p[0].rule, "forbid");
    assert!(!p[0].message.contains(CANARY), "{}", p[0].message);
}

#[test]
fn debug_flags_are_refused_in_protected_environments_only() {
    let v = var(r#"rules = { forbid_in_protected = ["true"] }"#);
    let p = check_value(
        "DEBUG",
        &v,
        &secret("true"),
        "production",
        true,
        false,
        false,
    );
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].rule, "forbid_in_protected");
    assert!(p[0].message.contains("protected"), "{}", p[0].message);
    assert!(check_value("DEBUG", &v, &secret("true"), "staging", false, false, false).is_empty());
    assert!(
        check_value(
            "DEBUG",
            &v,
            &secret("false"),
            "production",
            true,
            false,
            false
        )
        .is_empty()
    );
}

#[test]
fn kind_checks_wait_for_values_that_still_hold_pipeline_references() {
    let v = var(r#"rules = { kind = "url" }"#);
    assert!(
        check_value(
            "X",
            &v,
            &secret("${services.web.url}/cb"),
            "staging",
            false,
            true,
            false
        )
        .is_empty()
    );
}

#[test]
fn truly_random_32_hex_character_keys_always_pass_the_signing_key_rules() {
    let rules: staging_core::spec::Rules =
        toml::from_str("kind = \"signing_key\"\nlength = 32\nalphabet = \"hex\"").unwrap();
    let v = var("rules = { kind = \"signing_key\" }");
    for _ in 0..2000 {
        let key = staging_secrets::generate(&rules).unwrap();
        let p = check_value("K", &v, &key, "staging", false, false, true);
        assert!(p.is_empty(), "{p:?}");
    }
}
