//! `create` on a provider that creates nothing (AWS: clusters, load balancers and networks
//! belong to Terraform or CloudFormation): `plan` says so without a request, and `up` fails
//! clearly, naming what must exist.

mod common;

use common::{run_staging, text};

const C1: &str = "0123456789abcdef0123456789abcdef01234567";

fn aws_spec(dir: &std::path::Path) {
    std::fs::write(
        dir.join("staging.toml"),
        r#"[project]
name = "aws"

[environments.staging]
provider = "aws"
deploy_timeout = "30s"
settings = { region = "us-east-1", cluster = "staging" }

[services.web]
create = true
settings = { service = "web" }
"#,
    )
    .unwrap();
}

fn aws_env(home: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("HOME", home.display().to_string()),
        ("AWS_CONFIG_FILE", home.join("none").display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            home.join("none").display().to_string(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        // Nothing listens on port 9 of loopback: a request would fail at once.
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
    ]
}

#[test]
fn plan_on_aws_unreachable_stops_at_its_preflight_and_up_refuses_the_creation_offline() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    aws_spec(dir.path());
    let env = aws_env(home.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // `plan` checks the credentials and the endpoint first (issue 34): nothing answers
    // here, so it stops at its preflight with exit 3, having read nothing else.
    let plan = run_staging(
        dir.path(),
        &["plan", "--env", "staging", "--commit", C1, "--json"],
        &env,
    );
    let out = String::from_utf8_lossy(&plan.stdout);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!("plan --json is not JSON ({e}):\n{}", text(&plan));
    });
    assert_eq!(plan.status.code(), Some(3), "{json}");
    assert_eq!(json["ok"], false, "{json}");

    // `up` refuses the creation offline, before its preflight asks AWS anything.

    let up = run_staging(
        dir.path(),
        &["up", "--env", "staging", "--commit", C1],
        &env,
    );
    let all = text(&up);
    assert_eq!(up.status.code(), Some(3), "{all}");
    assert!(all.contains("aws creates nothing"), "{all}");
    assert!(all.contains("service `web` must already exist"), "{all}");
    assert!(
        !all.contains("deploy: passed"),
        "nothing may be deployed after a refused creation:\n{all}"
    );
}

#[test]
fn validate_refuses_creation_in_a_protected_environment_without_allow_create_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let spec = r#"[project]
name = "shop"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[services.web]
create = true
settings = { command = ["true"] }
"#;
    std::fs::write(dir.path().join("staging.toml"), spec).unwrap();
    let out = run_staging(dir.path(), &["validate"], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("staging.toml:13:10"), "{all}");
    assert!(all.contains("allow_create = true"), "{all}");
    // Allowed explicitly, or copied from production (which is then only read): valid.
    for fixed in [
        spec.replace(
            "protected = true\n",
            "protected = true\nallow_create = true\n",
        ),
        spec.replace("create = true", "create = { like = \"production\" }"),
    ] {
        std::fs::write(dir.path().join("staging.toml"), &fixed).unwrap();
        let out = run_staging(dir.path(), &["validate"], &[]);
        assert_eq!(out.status.code(), Some(0), "{}\n{fixed}", text(&out));
    }
}
