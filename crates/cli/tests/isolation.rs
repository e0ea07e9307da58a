//! Environment isolation through the CLI, for every provider, holding no production
//! credentials (only staging-side ones pointing at an address where nothing listens):
//! when staging's effective settings name production's service, site + context, ECS
//! service, fixed port or database, `up`, `secrets sync --apply` and `migrate apply` are
//! refused with exit 2 before any write, naming both environments and the resource.

use assert_cmd::Command;

/// Nothing listens here: a run that reached the platform would fail with another error.
const NOWHERE: &str = "http://127.0.0.1:9";

struct Case {
    provider: &'static str,
    /// Production's settings of service `web`, and staging's override that names the same
    /// target (a forgotten or misnamed override).
    production: &'static str,
    staging: &'static str,
    /// What the refusal names.
    resource: &'static str,
}

const CASES: &[Case] = &[
    Case {
        provider: "local",
        production: r#"command = ["true"], port = 18080"#,
        staging: r#"command = ["true"], port = 18080"#,
        resource: "local port port=18080",
    },
    Case {
        provider: "render",
        production: r#"service_name = "shop-web""#,
        staging: r#"service_name = "shop-web""#,
        resource: "render service owner_id=(any) service_name=shop-web",
    },
    Case {
        provider: "netlify",
        production: r#"site_name = "shop", context = "production""#,
        staging: r#"site_name = "shop", context = "production""#,
        resource: "netlify site site_name=shop context=production",
    },
    Case {
        provider: "aws",
        production: r#"cluster = "shop", service = "web""#,
        staging: r#"cluster = "shop", service = "web""#,
        resource: "ecs service profile=(any) region=us-east-1 cluster=shop service=web",
    },
    Case {
        // Both environments in Railway's `production` environment (settings below): then
        // the service names are all that keeps them apart.
        provider: "railway",
        production: r#"service_name = "shop-web""#,
        staging: r#"service_name = "shop-web""#,
        resource: "railway service instance project=p-1 environment=production service=shop-web",
    },
    Case {
        // Both environments deploy to Vercel's production target (settings below): then the
        // projects are all that keeps them apart.
        provider: "vercel",
        production: r#"project = "shop-web""#,
        staging: r#"project = "shop-web""#,
        resource: "vercel project target team=(any) project=shop-web target=production",
    },
];

fn spec(case: &Case, staging: &str, extra: &str) -> String {
    let region = match case.provider {
        "aws" => r#"settings = { region = "us-east-1" }"#,
        "railway" => r#"settings = { project_id = "p-1", environment = "production" }"#,
        "vercel" => r#"settings = { target = "production" }"#,
        _ => "",
    };
    format!(
        r#"[project]
name = "shop"

[environments.staging]
provider = "{p}"
promotes_to = "production"
{region}

[environments.production]
provider = "{p}"
protected = true
{region}

[services.web.overrides.staging]
{staging}

[services.web.overrides.production]
{production}
{extra}"#,
        p = case.provider,
        staging = staging.replace(", ", "\n"),
        production = case.production.replace(", ", "\n"),
    )
}

struct Run {
    code: Option<i32>,
    stderr: String,
    stdout: String,
}

fn staging(text: &str, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("-f")
        .arg(&path)
        .args(["--env", "staging"])
        .args(args)
        .env_remove("STAGING_ENV")
        // Staging-side credentials only, aimed where nothing listens.
        .env("RENDER_API_KEY", "rnd_staging_only")
        .env("RENDER_API_URL", NOWHERE)
        .env("NETLIFY_AUTH_TOKEN", "nfp_staging_only")
        .env("NETLIFY_API_URL", NOWHERE)
        .env("AWS_ACCESS_KEY_ID", "staging-only")
        .env("AWS_SECRET_ACCESS_KEY", "staging-only")
        .env("AWS_ENDPOINT_URL", NOWHERE)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RAILWAY_API_TOKEN", "railway_staging_only")
        .env("RAILWAY_API_URL", NOWHERE)
        .env("VERCEL_TOKEN", "vercel_staging_only")
        .env("VERCEL_API_URL", NOWHERE)
        .env(
            "DATABASE_URL_PRODUCTION",
            "postgres://u:p@db.internal:5432/shop",
        )
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

fn assert_refused(run: &Run, resource: &str, what: &str) {
    let all = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(2), "{what}: expected exit 2\n{all}");
    assert!(
        all.contains("environment `staging`")
            && all.contains("protected environment `production`")
            && all.contains(resource)
            && all.contains("refused before any write"),
        "{what}: the refusal must name both environments and `{resource}`\n{all}"
    );
    // Nothing reached a platform: every client was pointed at a closed port, and a
    // connection error would have shown instead of the refusal.
    assert!(!all.contains("127.0.0.1:9"), "{what}: {all}");
}

/// The providers the binary registers, read from the schema it prints.
fn registered_providers() -> Vec<String> {
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("schema")
        .output()
        .unwrap();
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema["$defs"]["Environment"]["allOf"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["if"]["properties"]["provider"]["const"].as_str())
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_provider_refuses_staging_settings_that_name_production_s_target_before_any_write() {
    let registered = registered_providers();
    assert!(registered.len() >= 4, "{registered:?}");
    for name in &registered {
        assert!(
            CASES.iter().any(|c| c.provider == name),
            "provider `{name}` is registered but has no isolation case here: add one"
        );
    }
    for case in CASES {
        // The good spec: staging names its own target; validate passes.
        let own = case
            .staging
            .replace("shop-web", "shop-web-staging")
            .replace(
                "site_name = \"shop\", context = \"production\"",
                "site_name = \"shop\", context = \"branch:staging\"",
            )
            .replace("port = 18080", "port = 18081")
            .replace("cluster = \"shop\"", "cluster = \"shop-staging\"");
        let good = spec(case, &own, "");
        let run = staging(&good, &["validate"]);
        assert_eq!(run.code, Some(0), "{}: {}", case.provider, run.stderr);

        let bad = spec(case, case.staging, "");
        // `validate` refuses it from the spec alone, offline, and so does a run, before
        // its first write.
        let run = staging(&bad, &["validate"]);
        assert_refused(&run, case.resource, &format!("{} validate", case.provider));
        let run = staging(
            &bad,
            &["up", "--commit", "abc1234abc1234abc1234abc1234abc1234abc12"],
        );
        assert_refused(&run, case.resource, &format!("{} up", case.provider));
        let run = staging(&bad, &["secrets", "sync", "--apply"]);
        assert_refused(
            &run,
            case.resource,
            &format!("{} secrets sync", case.provider),
        );
    }
}

const DATABASE: &str = r#"
[vars.DATABASE_URL]
values = { staging = "postgres://staging:pw@DB.internal/shop", production = "${DATABASE_URL_PRODUCTION}" }

[databases.main]
url_var = "DATABASE_URL"
migrations = { dir = "migrations" }
"#;

#[test]
fn every_provider_refuses_a_staging_database_url_naming_production_s_database() {
    for case in CASES {
        let own = case
            .staging
            .replace("shop-web", "shop-web-staging")
            .replace(
                "site_name = \"shop\", context = \"production\"",
                "site_name = \"shop\", context = \"branch:staging\"",
            )
            .replace("port = 18080", "port = 18081")
            .replace("cluster = \"shop\"", "cluster = \"shop-staging\"");
        // Same host (in another case), same default port, same database: production's.
        let text = spec(case, &own, DATABASE);
        for args in [
            &["up", "--commit", "abc1234abc1234abc1234abc1234abc1234abc12"][..],
            &["migrate", "apply"][..],
        ] {
            let run = staging(&text, args);
            assert_refused(
                &run,
                "database scheme=postgres host=db.internal port=5432 database=shop",
                &format!("{} {args:?}", case.provider),
            );
            assert!(!run.stderr.contains("pw@") && !run.stdout.contains("u:p@"));
        }
    }
}

#[test]
fn a_database_shared_with_production_is_not_migrated_from_staging() {
    let case = &CASES[0];
    let own = case.staging.replace("port = 18080", "port = 18081");
    let text = spec(
        case,
        &own,
        &DATABASE.replace(
            "url_var = \"DATABASE_URL\"",
            "url_var = \"DATABASE_URL\"\nshared_with = [\"production\"]",
        ),
    );
    let run = staging(&text, &["migrate", "apply"]);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(2), "{all}");
    assert!(
        all.contains("declared shared with protected environment `production`")
            && all.contains("database branch"),
        "{all}"
    );
    // Without migrations or a seed the run writes nothing to it: declared sharing holds.
    let text = spec(
        case,
        &own,
        &DATABASE
            .replace(
                "url_var = \"DATABASE_URL\"",
                "url_var = \"DATABASE_URL\"\nshared_with = [\"production\"]",
            )
            .replace("migrations = { dir = \"migrations\" }\n", ""),
    );
    let run = staging(&text, &["migrate", "apply"]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
}

#[test]
fn shared_with_must_name_a_declared_environment() {
    let case = &CASES[0];
    let text = spec(case, case.staging, "").replace(
        "[services.web.overrides.staging]",
        "[services.web]\nshared_with = [\"prodution\"]\n\n[services.web.overrides.staging]",
    );
    let run = staging(&text, &["validate"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("`prodution`"), "{}", run.stderr);
}

#[test]
fn the_check_reads_no_other_variable_of_another_environment() {
    let marker =
        std::env::temp_dir().join(format!("staging-isolation-read-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let case = &CASES[0];
    let own = case.staging.replace("port = 18080", "port = 18081");
    let database = DATABASE.replace(
        "postgres://staging:pw@DB.internal/shop",
        "postgres://staging:pw@127.0.0.1:9/shop_staging",
    );
    let text = spec(
        case,
        &own,
        &format!(
            "{database}\n[vars.API_KEY]\nsecret = true\nrequired = false\nsources = {{ production = {{ command = [\"touch\", \"{}\"] }} }}\n",
            marker.display()
        ),
    );
    // Staging's database is its own: the check passes (the migration then cannot connect).
    let run = staging(&text, &["migrate", "apply"]);
    assert_ne!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    // Production's database URL was read to compare; its API key was not.
    assert!(!marker.exists(), "production's API_KEY source ran");
}
