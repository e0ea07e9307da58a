//! Typed provider settings through `staging validate`: for every registered provider, a
//! misspelt key in an environment's `settings`, a service's `settings` or its
//! `overrides.ENV` exits 2 at the key's `file:line:col` with a "did you mean", offline.

use assert_cmd::Command;

/// One provider's minimal valid spec pieces, and a typo to plant in each table.
struct Case {
    provider: &'static str,
    /// `environments.staging.settings`, `environments.production.settings`.
    env_staging: &'static str,
    env_production: &'static str,
    /// `services.web.settings` and `services.web.overrides.staging`.
    service: &'static str,
    overrides: &'static str,
    /// (key as it should be, key as misspelt) in each table; `None` where the provider
    /// takes no settings there (any key is then unknown, with nothing to suggest).
    env_typo: Option<(&'static str, &'static str)>,
    service_typo: (&'static str, &'static str),
    overrides_typo: (&'static str, &'static str),
}

const CASES: &[Case] = &[
    Case {
        provider: "local",
        env_staging: "",
        env_production: "",
        service: r#"command = ["true"]"#,
        overrides: "port_env = \"APP_PORT\"",
        env_typo: None,
        service_typo: ("command", "comand"),
        overrides_typo: ("port_env", "prot_env"),
    },
    Case {
        provider: "render",
        env_staging: r#"owner_id = "tea-staging""#,
        env_production: r#"owner_id = "tea-production""#,
        service: r#"service_name = "shop-worker""#,
        overrides: r#"service_name = "shop-worker-staging""#,
        env_typo: Some(("owner_id", "owner_di")),
        service_typo: ("service_name", "service_nam"),
        // Event 1: the misspelt override that sent a staging deploy to production.
        overrides_typo: ("service_name", "servce_name"),
    },
    Case {
        provider: "netlify",
        env_staging: r#"site_name = "shop", account_id = "team""#,
        env_production: r#"site_name = "shop", context = "production""#,
        service: r#"site_name = "shop""#,
        overrides: r#"context = "branch:develop""#,
        env_typo: Some(("account_id", "acount_id")),
        service_typo: ("site_name", "site_nmae"),
        overrides_typo: ("context", "contxt"),
    },
    Case {
        provider: "aws",
        env_staging: r#"region = "us-east-1", cluster = "shop-staging""#,
        env_production: r#"region = "us-east-1", cluster = "shop-production""#,
        service: r#"service = "shop-web""#,
        overrides: r#"container = "web""#,
        env_typo: Some(("cluster", "clustr")),
        service_typo: ("service", "servce"),
        overrides_typo: ("container", "contaner"),
    },
    Case {
        provider: "railway",
        env_staging: r#"project_id = "p-1", environment = "staging""#,
        env_production: r#"project_id = "p-1", environment = "production""#,
        service: r#"service_name = "api""#,
        overrides: r#"service_name = "api-staging""#,
        env_typo: Some(("project_id", "projct_id")),
        service_typo: ("service_name", "service_nam"),
        overrides_typo: ("service_name", "servce_name"),
    },
    Case {
        provider: "vercel",
        env_staging: r#"target = "staging", team_slug = "shop""#,
        env_production: r#"target = "production", team_slug = "shop""#,
        service: r#"project = "shop-web""#,
        overrides: r#"repo = "shop/web""#,
        env_typo: Some(("team_slug", "team_slg")),
        service_typo: ("project", "projet"),
        overrides_typo: ("repo", "rpo"),
    },
];

fn spec(case: &Case) -> String {
    format!(
        r#"[project]
name = "shop"

[environments.staging]
provider = "{p}"
promotes_to = "production"
settings = {{ {es} }}

[environments.production]
provider = "{p}"
protected = true
settings = {{ {ep} }}

[services.web]
settings = {{ {svc} }}

[services.web.overrides.staging]
{over}
"#,
        p = case.provider,
        es = case.env_staging,
        ep = case.env_production,
        svc = case.service,
        over = case.overrides,
    )
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn validate(text: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("validate")
        .arg("-f")
        .arg(&path)
        .env_remove("STAGING_ENV")
        // Offline: no credentials of any provider, no stand-in to talk to.
        .env_remove("RENDER_API_KEY")
        .env_remove("NETLIFY_AUTH_TOKEN")
        .env_remove("RAILWAY_API_TOKEN")
        .env_remove("RAILWAY_TOKEN")
        .env_remove("VERCEL_TOKEN")
        .env("AWS_ACCESS_KEY_ID", "")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `line:col` of the first occurrence of `needle` after the line starting with `section`.
fn place(text: &str, section: &str, needle: &str) -> String {
    let start = text.find(section).expect("section");
    let offset = start + text[start..].find(needle).expect("needle");
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap().chars().count() + 1;
    format!("{line}:{col}")
}

/// The providers the binary knows, as its own error for an unknown one lists them.
fn registered_providers() -> Vec<String> {
    let text = spec(&CASES[0]).replace("provider = \"local\"", "provider = \"no-such\"");
    let run = validate(&text);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let list = run
        .stderr
        .split("expected one of: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no provider list in: {}", run.stderr));
    list.trim()
        .split(", ")
        .map(|s| s.trim().to_owned())
        .collect()
}

fn assert_typo(text: &str, section: &str, typo: &str, suggestion: Option<&str>, what: &str) {
    let run = validate(text);
    let at = format!("staging.toml:{}: ", place(text, section, typo));
    assert_eq!(
        run.code,
        Some(2),
        "{what}: expected exit 2\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr.contains(&at),
        "{what}: expected the error at {at}\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("unknown field `{typo}`")),
        "{what}: {}",
        run.stderr
    );
    if let Some(s) = suggestion {
        assert!(
            run.stderr.contains(&format!("did you mean `{s}`?")),
            "{what}: no suggestion of `{s}`: {}",
            run.stderr
        );
    }
}

#[test]
fn every_provider_refuses_a_misspelt_key_in_settings_and_overrides_at_its_place() {
    let registered = registered_providers();
    for name in &registered {
        assert!(
            CASES.iter().any(|c| c.provider == name),
            "provider `{name}` is registered but has no case here: add one"
        );
    }
    for case in CASES {
        assert!(
            registered.iter().any(|r| r == case.provider),
            "{} is not registered",
            case.provider
        );
        let good = spec(case);
        let run = validate(&good);
        assert_eq!(
            run.code,
            Some(0),
            "{}: the good spec must validate\n{}{}",
            case.provider,
            run.stdout,
            run.stderr
        );

        // In the environment's settings.
        let staging_settings = format!("settings = {{ {} }}", case.env_staging);
        let (env_text, env_typo, env_suggestion) = match case.env_typo {
            Some((right, typo)) => (
                good.replacen(
                    &staging_settings,
                    &staging_settings.replacen(right, typo, 1),
                    1,
                ),
                typo,
                Some(right),
            ),
            None => (
                good.replacen("settings = {  }", "settings = { cluster = \"x\" }", 1),
                "cluster",
                None,
            ),
        };
        assert_typo(
            &env_text,
            "[environments.staging]",
            env_typo,
            env_suggestion,
            &format!("{}: environment settings", case.provider),
        );

        // In the service's base settings.
        let (right, typo) = case.service_typo;
        let svc_line = format!("settings = {{ {} }}", case.service);
        let text = good.replacen(&svc_line, &svc_line.replacen(right, typo, 1), 1);
        assert_typo(
            &text,
            "[services.web]",
            typo,
            Some(right),
            &format!("{}: service settings", case.provider),
        );

        // In the environment's overrides.
        let (right, typo) = case.overrides_typo;
        let text = good.replacen(case.overrides, &case.overrides.replacen(right, typo, 1), 1);
        assert_typo(
            &text,
            "[services.web.overrides.staging]",
            typo,
            Some(right),
            &format!("{}: overrides", case.provider),
        );
    }
}

#[test]
fn the_render_override_typo_of_event_1_is_refused_by_validate_alone() {
    // `servce_name` in staging's overrides: before, it validated, and `up --env staging`
    // fell back to the base name and deployed to the production worker.
    let text = r#"[project]
name = "shop"

[environments.staging]
provider = "render"
promotes_to = "production"

[environments.production]
provider = "render"
protected = true

[services.worker]
settings = { service_name = "shop-worker" }

[services.worker.overrides.staging]
servce_name = "shop-worker-staging"
"#;
    let run = validate(text);
    assert_eq!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("staging.toml:16:1: ")
            && run.stderr.contains("unknown field `servce_name`")
            && run.stderr.contains("did you mean `service_name`?"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_key_of_another_provider_is_unknown_here_too() {
    // An ECS key on a Render service is as wrong as a typo: nothing reads it.
    let case = &CASES[1];
    let good = spec(case);
    let text = good.replacen(
        "settings = { service_name = \"shop-worker\" }",
        "settings = { service_name = \"shop-worker\", cluster = \"c\" }",
        1,
    );
    let run = validate(&text);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown field `cluster`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_wrong_type_in_an_override_is_reported_at_the_value() {
    let case = &CASES[0];
    let text = spec(case).replacen("port_env = \"APP_PORT\"", "port = \"8080\"", 1);
    let run = validate(&text);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let at = format!(
        "staging.toml:{}: ",
        place(&text, "[services.web.overrides.staging]", "\"8080\"")
    );
    assert!(run.stderr.contains(&at), "expected {at}: {}", run.stderr);
}
