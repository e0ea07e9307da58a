//! One decision of what is secret (`staging_core::secretness`), and a guard that no second
//! place decides it: the source of every crate is searched for the shapes a second
//! decision takes (reading a variable's `secret` flag, registering a value with a redactor
//! without asking, keeping a set of secret names of its own).

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use staging_core::Redactor;
use staging_core::redact::MASK;
use staging_core::secretness::{Origin, is_secret, secret_vars};
use staging_core::spec::{LoadOptions, LoadedSpec};

fn load(text: &str) -> LoadedSpec {
    LoadedSpec::parse(
        "staging.toml",
        text.to_owned(),
        LoadOptions {
            env: &|_| None,
            known_providers: &["local"],
            instance: None,
        },
    )
    .unwrap()
}

const SPEC: &str = r#"
[project]
name = "shop"

[environments.staging]
provider = "local"
promotes_to = "production"
secrets = { dotenv = "staging.env" }

[environments.production]
provider = "local"
protected = true

[services.web]

[vars.JWT_SECRET]
secret = true

[vars.APP_ENV]
values = { staging = "staging", production = "production" }

[vars.ENABLE_FEATURE]
value = "true"

[vars.STRIPE_KEY]
source = { env = "STRIPE_KEY" }

[vars.GREETING]
values = { production = "hello" }

[vars.CALLBACK]
value = "https://x.example/cb?token=${vars.JWT_SECRET}"
"#;

fn names(set: std::collections::BTreeSet<String>) -> Vec<String> {
    set.into_iter().collect()
}

#[test]
fn declared_secrets_store_values_and_values_that_embed_a_secret_are_secret() {
    let spec = load(SPEC);
    // GREETING has no value in staging and falls to staging's store: a secret source.
    assert_eq!(
        names(secret_vars(&spec.spec, "staging")),
        ["CALLBACK", "GREETING", "JWT_SECRET", "STRIPE_KEY"]
    );
    // Production has no default store: GREETING is its plain value there.
    assert_eq!(
        names(secret_vars(&spec.spec, "production")),
        ["CALLBACK", "JWT_SECRET", "STRIPE_KEY"]
    );
}

#[test]
fn a_platform_value_of_a_variable_declared_plain_is_plain_and_an_undeclared_one_is_what_the_platform_says()
 {
    let spec = load(SPEC);
    let platform = |name, marked_secret| {
        is_secret(Origin::Platform {
            spec: &spec.spec,
            environment: "production",
            name,
            marked_secret,
        })
    };
    assert!(!platform("APP_ENV", false));
    assert!(!platform("ENABLE_FEATURE", false));
    // Declared plain wins over the platform's flag: the spec says what the value is.
    assert!(!platform("APP_ENV", true));
    assert!(platform("JWT_SECRET", false));
    assert!(platform("STRIPE_KEY", false));
    // The platform's own settings.
    assert!(!platform("RENDER_GIT_BRANCH", false));
    assert!(platform("NETLIFY_SECRET_THING", true));
    // Credentials and captures always are.
    assert!(is_secret(Origin::Credential));
    assert!(is_secret(Origin::Captured));
}

#[test]
fn registering_by_origin_masks_a_secret_and_leaves_plain_platform_values_alone() {
    let spec = load(SPEC);
    let r = Redactor::new();
    let value = |v: &str| SecretString::from(v.to_owned());
    for (name, v) in [
        ("APP_ENV", "production"),
        ("ENABLE_FEATURE", "true"),
        ("GREETING", "hello-production-world"),
    ] {
        assert!(!r.register_if_secret(
            Origin::Platform {
                spec: &spec.spec,
                environment: "production",
                name,
                marked_secret: false,
            },
            &value(v),
        ));
    }
    assert!(r.register_if_secret(
        Origin::Var {
            spec: &spec.spec,
            environment: "production",
            name: "JWT_SECRET",
        },
        &value("canary-jwt-4f1e9a7c2b"),
    ));
    let text = "APP_ENV=production ENABLE_FEATURE=true GREETING=hello-production-world \
                JWT=canary-jwt-4f1e9a7c2b";
    assert_eq!(
        r.redact(text),
        "APP_ENV=production ENABLE_FEATURE=true GREETING=hello-production-world JWT=[REDACTED]"
    );
}

#[test]
fn a_secret_that_equals_a_plain_value_elsewhere_is_still_masked() {
    let spec = load(SPEC);
    let r = Redactor::new();
    let shared = SecretString::from("shared-value-81c4e2d9".to_owned());
    // The plain side does not unregister anything; the secret side registers.
    r.register_if_secret(
        Origin::Platform {
            spec: &spec.spec,
            environment: "production",
            name: "GREETING",
            marked_secret: false,
        },
        &shared,
    );
    r.register_if_secret(
        Origin::Var {
            spec: &spec.spec,
            environment: "staging",
            name: "JWT_SECRET",
        },
        &shared,
    );
    assert_eq!(
        r.redact("GREETING=shared-value-81c4e2d9"),
        "GREETING=[REDACTED]"
    );
}

#[test]
fn a_short_or_common_secret_is_masked_only_as_a_whole_field_never_inside_text() {
    let r = Redactor::new();
    for v in ["true", "prod", "1", "production", "8080", "hunter2"] {
        r.register(&SecretString::from(v.to_owned()));
    }
    let text = "production runs prod over https with true and 1 replica on 8080";
    assert_eq!(r.redact(text), text);
    let mut doc = serde_json::json!({
        "ok": true,
        "environment": "staging",
        "message": text,
        "password": "hunter2",
        "count": 1,
    });
    r.redact_json(&mut doc);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["count"], 1);
    assert_eq!(doc["message"], text);
    assert_eq!(doc["password"], MASK);
    for v in ["true", "prod", "production", "12345678", "3.14159265"] {
        assert!(!staging_core::redact::maskable(v), "{v}");
    }
    assert!(staging_core::redact::maskable("canary-7f3a9c1d"));
}

#[test]
fn a_json_document_redacted_by_value_stays_valid_whatever_a_field_holds() {
    let r = Redactor::new();
    r.register(&SecretString::from("canary-\"quoted\\-7f3a".to_owned()));
    let mut doc = serde_json::json!({
        "line": "Authorization: Basic dXNlcjpwYXNz",
        "service": "web",
        "echo": "{\"data\": \"{\\\"token\\\": \\\"canary-\\\\\\\"quoted\\\\\\\\-7f3a\\\"}\"}",
        "raw": "token canary-\"quoted\\-7f3a end",
    });
    r.redact_json(&mut doc);
    let text = serde_json::to_string(&doc).unwrap();
    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back["service"], "web", "{text}");
    assert_eq!(back["line"], "Authorization: [REDACTED]", "{text}");
    assert!(!text.contains("7f3a"), "{text}");
    assert!(!text.contains("dXNlcjpwYXNz"), "{text}");
}

/// Every `.rs` file under `crates/*/src`.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = vec![];
    for c in std::fs::read_dir(&crates).unwrap().flatten() {
        walk(&c.path().join("src"), &mut out);
    }
    assert!(out.len() > 50, "found only {} source files", out.len());
    out
}

/// The lines of `path` that are not test code (a file's `#[cfg(test)]` module ends it; a
/// `tests.rs` module file is all test code).
fn non_test_lines(path: &Path) -> Vec<(usize, String)> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return vec![];
    }
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect()
}

#[test]
fn no_second_place_decides_what_is_secret() {
    let mut found = vec![];
    for path in sources() {
        let shown = path.to_string_lossy().replace('\\', "/");
        let at = |n: usize| format!("{}:{n}", &shown[shown.find("crates/").unwrap_or(0)..]);
        let in_core = |f: &str| shown.ends_with(&format!("staging-core/src/{f}"));
        let lines = non_test_lines(&path);
        for (i, (n, line)) in lines.iter().enumerate() {
            // A redactor registration without the decision. Multi-line calls are read with
            // the line before (`Redactor::global()` / `.register(`).
            let prev = if i > 0 { lines[i - 1].1.as_str() } else { "" };
            let joined = format!("{} {}", prev.trim(), line.trim());
            let registers = line.contains(".register(&")
                || line.contains(".register(v")
                || (line.trim_start().starts_with(".register(") && joined.contains("edactor"));
            let registers_on_redactor = registers
                && (joined.contains("edactor") || line.contains(".register(&value)"))
                && !line.contains("Factory")
                && !joined.contains("registry");
            if registers_on_redactor
                && !in_core("redact/mod.rs")
                // The run's `set_var` is handed the decision (`ResolvedVars::secret_names`).
                && !in_core("pipeline/mod.rs")
            {
                found.push(format!(
                    "{}: registers without asking secretness: {}",
                    at(*n),
                    line.trim()
                ));
            }
            // A set of secret names built outside the one decision.
            if line.contains("secret_names.insert(") || line.contains("fn secret_var_names") {
                found.push(format!(
                    "{}: keeps its own secret names: {}",
                    at(*n),
                    line.trim()
                ));
            }
            // Reading the spec's `secret` flag (a field only core can reach).
            let reads_flag = [".secret ", ".secret)", ".secret;", ".secret,", ".secret\t"]
                .iter()
                .any(|p| line.contains(p) || line.ends_with(".secret"));
            if reads_flag
                && shown.contains("staging-core/src/")
                && !in_core("secretness.rs")
                // Load-time checks: a secret with a plain `value` is refused.
                && !in_core("spec/mod.rs")
            {
                found.push(format!(
                    "{}: reads the `secret` flag: {}",
                    at(*n),
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "secret-ness is decided only by staging_core::secretness:\n{}",
        found.join("\n")
    );
}
