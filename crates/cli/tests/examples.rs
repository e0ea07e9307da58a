//! Every example under `examples/` is a spec a user can start from. One test goes over every
//! directory of `examples/` that has a `staging.toml` (a new example is covered as soon as it
//! exists, and fails until it has a stand-in recipe here), and for each: `validate` exits 0;
//! `secrets check --env E` exits 0 for every environment with the variables the example
//! states (its `example.env`, which its header points at), printing none of their values;
//! and `plan --env E` exits 0 on the example's platform stand-in, set up as the example
//! expects it (the services it names exist), with every service and variable read. The
//! planted example fails `secrets check` exactly where its header says, and only there.

mod common;
#[path = "../../provider-neon/tests/support/mod.rs"]
mod neon;
#[path = "../../provider-netlify/tests/support/mod.rs"]
mod netlify;
#[path = "../../provider-railway/tests/support/mod.rs"]
mod railway;
#[path = "../../provider-render/tests/support/mod.rs"]
mod render;
#[path = "../../provider-supabase/tests/support/mod.rs"]
mod supabase;
// Vercel's support runs Prism through Render's `prism.rs`, which `render` loads too: two
// copies of one small module, each a module of its own stand-in.
#[allow(clippy::duplicate_mod)]
#[path = "../../provider-vercel/tests/support/mod.rs"]
mod vercel;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{run_staging, text};
use serde_json::json;

const COMMIT: &str = "3333333aaaaaaaabbbbbbbbccccccccdddddddd3";
/// What each example's platform serves before the plan: an older commit.
const LIVE: &str = "1111111aaaaaaaabbbbbbbbccccccccdddddddd1";

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
fn environments(dir: &Path) -> Vec<String> {
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

/// The variables an example states in its `example.env` (none without one).
fn stated(dir: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(dir.join("example.env")) else {
        return vec![];
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: not NAME=value: {l}", dir.display()));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

/// What one example needs: the variables that point its providers at their stand-ins (and
/// the stand-ins' credentials), with the stand-ins set up as the example expects; and, for
/// the planted example, the variables `secrets check` must name (it fails by design).
struct Recipe {
    platform: Vec<(String, String)>,
    planted: &'static [&'static str],
}

/// The stand-ins each example's providers talk to, started once for the whole test.
#[derive(Default)]
struct StandIns {
    railway: Option<railway::StandIn>,
    moto: Option<Moto>,
}

async fn recipe(name: &str, stand_ins: &mut StandIns) -> Recipe {
    let platform = match name {
        // The local provider: nothing to stand in for.
        "demo" => vec![],
        "secrets-check" => {
            return Recipe {
                platform: vec![],
                planted: &["JWT_SECRET", "STRIPE_API_KEY"],
            };
        }
        "aws" => aws_example(stand_ins),
        "neon" => neon_example(),
        "netlify" => netlify_example(),
        "railway" => railway_example(stand_ins).await,
        "render" => render_example(),
        "supabase" => supabase_example(),
        "vercel" => vercel_example().await,
        other => panic!(
            "examples/{other} has no stand-in recipe: add one to crates/cli/tests/examples.rs (the platform its providers talk to, set up as the example expects)"
        ),
    };
    Recipe {
        platform,
        planted: &[],
    }
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Render: the example's two workspaces, each with its environment's services (live at an
/// older commit) and its datastores, whose connection info `secrets check` reads.
fn render_example() -> Vec<(String, String)> {
    use render::fake::{Kind, Store};
    let fake = &render::stand_in().fake;
    for (owner, suffix) in [
        ("tea-cshopstaging000000", "-staging"),
        ("tea-cshopproduction000", ""),
    ] {
        for (service, kind) in [("shop-web", Kind::Web), ("shop-worker", Kind::Worker)] {
            let id = fake.add_service_in(owner, &format!("{service}{suffix}"), kind);
            fake.add_live_deploy(&id, LIVE);
        }
        fake.add_datastore_in(
            owner,
            Store::Postgres,
            &format!("shop-db{suffix}"),
            json!({ "plan": "basic_256mb", "version": "16", "region": "virginia" }),
        );
        fake.add_datastore_in(
            owner,
            Store::KeyValue,
            &format!("shop-cache{suffix}"),
            json!({ "plan": "starter", "region": "virginia", "maxmemoryPolicy": "noeviction" }),
        );
    }
    vars(&[
        ("RENDER_API_KEY", render::API_KEY),
        ("RENDER_API_URL", &render::stand_in().prism.url()),
    ])
}

/// Neon: the example's Render services (in the key's one workspace) and its Neon project with
/// the `staging` branch of `main`.
fn neon_example() -> Vec<(String, String)> {
    use render::fake::Kind;
    let fake = &render::stand_in().fake;
    for service in ["notes-api", "notes-api-staging"] {
        let id = fake.add_service(service, Kind::Web);
        fake.add_live_deploy(&id, LIVE);
    }
    let neon = neon::stand_in();
    neon.fake.project("late-pine-123456");
    neon.fake.existing_branch("late-pine-123456", "staging");
    vars(&[
        ("RENDER_API_KEY", render::API_KEY),
        ("RENDER_API_URL", &render::stand_in().prism.url()),
        ("NEON_API_KEY", neon::API_KEY),
        ("NEON_API_URL", &neon.prism.url()),
    ])
}

/// A Netlify site named `name` (of team `account`) deploying `main` to production and
/// `develop` as a branch deploy, each live at an older commit.
fn netlify_site(name: &str, account: Option<&str>) {
    let fake = &netlify::stack().fake;
    let (site, _) = fake.add_site("example");
    fake.with_site(&site, |s| {
        s.name = name.to_owned();
        if let Some(account) = account {
            s.account_id = account.to_owned();
        }
        s.allowed_branches = vec!["main".into(), "develop".into()];
    });
    fake.push(&site, "main", LIVE);
    fake.push(&site, "develop", LIVE);
}

fn netlify_vars() -> Vec<(String, String)> {
    vars(&[
        ("NETLIFY_AUTH_TOKEN", "test-token-canary-3141"),
        ("NETLIFY_API_URL", &netlify::stack().proxy.url),
    ])
}

fn netlify_example() -> Vec<(String, String)> {
    netlify_site("storefront-web", Some("storefront-team"));
    netlify_vars()
}

/// Supabase: the example's Netlify site, and its Supabase project with the `staging` branch.
fn supabase_example() -> Vec<(String, String)> {
    netlify_site("guestbook-web", None);
    let s = supabase::stand_in();
    s.fake.existing_branch("abcdefghijklmnopqrst", "staging");
    let mut v = netlify_vars();
    v.extend(vars(&[
        ("SUPABASE_ACCESS_TOKEN", supabase::TOKEN),
        ("SUPABASE_API_URL", &s.prism.url()),
    ]));
    v
}

/// Railway: the example's project (its own id), environments `production` and `staging`,
/// services `api` and `Postgres` in both (each environment's Postgres its own database).
async fn railway_example(stand_ins: &mut StandIns) -> Vec<(String, String)> {
    let mut s = railway::StandIn::start().await;
    s.reset_project(
        "4f6c1d2e-8a3b-4c5d-9e7f-0a1b2c3d4e5f",
        &["production", "staging"],
        &["api", "Postgres"],
    )
    .await;
    let v = vars(&[
        ("RAILWAY_API_TOKEN", railway::TOKEN),
        ("RAILWAY_API_URL", &s.url),
    ]);
    stand_ins.railway = Some(s);
    v
}

/// Vercel: the example's project with its custom environment `staging`.
async fn vercel_example() -> Vec<(String, String)> {
    let s = vercel::stand_in();
    vercel::reset_project("storefront-web", true, &["staging"]).await;
    vars(&[
        ("VERCEL_TOKEN", vercel::TOKEN),
        ("VERCEL_API_URL", &s.prism.url()),
        ("VERCEL_UNLISTED_API_URL", &s.fake.url()),
    ])
}

/// moto, for the AWS example.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv(bin: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.tools/venv/bin")
        .join(bin);
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/test-tools.sh`",
        path.display()
    );
    path
}

/// AWS: moto with the example's clusters, their services (task definitions of the example's
/// image at an older commit) and the Secrets Manager secrets its `secrets_prefix` names.
fn aws_example(stand_ins: &mut StandIns) -> Vec<(String, String)> {
    let port = staging_core::stand_in::free_port();
    let child = Command::new(venv("moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_ECS_SERVICE_RUNNING", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let url = format!("http://127.0.0.1:{port}");
    let moto = Moto { child, url };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let seed = Command::new(venv("python"))
        .arg("-c")
        .arg(AWS_SEED)
        .args([&moto.url, LIVE])
        .output()
        .unwrap();
    assert!(
        seed.status.success(),
        "seeding moto: {}",
        String::from_utf8_lossy(&seed.stderr)
    );
    let v = vars(&[
        ("AWS_ENDPOINT_URL", &moto.url),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ]);
    stand_ins.moto = Some(moto);
    v
}

/// The example's AWS account in moto (boto3, from moto's own environment).
const AWS_SEED: &str = r#"
import sys, boto3
url, commit = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ecs = boto3.client("ecs", **kw)
sm = boto3.client("secretsmanager", **kw)
image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop-web:" + commit
values = {
    "staging": {"DATABASE_URL": "postgres://shop:stg-placeholder@shop-staging.cluster-abc.us-east-1.rds.amazonaws.com:5432/shop",
                "SECRET_KEY_BASE": "3f9c2b7e1d4a8f6c0b5e9d2a7c4f1e8b6d3a0c9f5e2b8d1a7c4e0f6b3d9a2c5e"},
    "production": {"DATABASE_URL": "postgres://shop:prd-placeholder@shop-production.cluster-abc.us-east-1.rds.amazonaws.com:5432/shop",
                   "SECRET_KEY_BASE": "8e1b4d7a0c3f6e9b2d5a8c1f4e7b0d3a6c9f2e5b8d1a4c7f0e3b6d9a2c5f8e1b"},
}
for env in ("staging", "production"):
    cluster = "shop-" + env
    ecs.create_cluster(clusterName=cluster)
    for service, container in (("shop-web", "web"), ("shop-worker", "worker")):
        td = ecs.register_task_definition(
            family=service + "-" + env,
            containerDefinitions=[{"name": container, "image": image, "memory": 512, "essential": True}],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=td, desiredCount=1)
    for name, value in values[env].items():
        sm.create_secret(Name="shop/" + env + "/" + name, SecretString=value)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn every_example_validates_passes_secrets_check_and_plans_on_its_stand_in() {
    let all = examples();
    assert!(all.len() >= 9, "{all:?}");
    let mut stand_ins = StandIns::default();
    for dir in &all {
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let recipe = recipe(&name, &mut stand_ins).await;
        let stated = stated(dir);
        let mut env: Vec<(&str, &str)> = recipe
            .platform
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.extend(stated.iter().map(|(k, v)| (k.as_str(), v.as_str())));

        let out = run_staging(dir, &["validate"], &env);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out));

        let environments = environments(dir);
        assert!(!environments.is_empty(), "{name}");
        for e in &environments {
            let out = run_staging(dir, &["secrets", "check", "--env", e], &env);
            let all = text(&out);
            // The stated values never reach the output: fingerprints only.
            for (var, value) in &stated {
                assert!(!all.contains(value.as_str()), "{name}/{e} printed {var}");
            }
            if recipe.planted.is_empty() {
                assert_eq!(out.status.code(), Some(0), "{name}/{e}: {all}");
            } else {
                assert_eq!(out.status.code(), Some(1), "{name}/{e}: {all}");
                for var in recipe.planted {
                    assert!(all.contains(var), "{name}/{e}: {all}");
                }
                assert!(
                    all.contains(&format!(
                        "{} variable(s) fail their rules",
                        recipe.planted.len()
                    )),
                    "{name}/{e}: {all}"
                );
            }

            let out = run_staging(
                dir,
                &["plan", "--env", e, "--commit", COMMIT, "--json"],
                &env,
            );
            let all = text(&out);
            assert_eq!(out.status.code(), Some(0), "{name}/{e} plan: {all}");
            let plan: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|err| panic!("{name}/{e} plan is not JSON ({err}): {all}"));
            let plan = if plan["data"].is_object() {
                &plan["data"]
            } else {
                &plan
            };
            assert_eq!(
                plan["vars_error"],
                serde_json::Value::Null,
                "{name}/{e}: {plan}"
            );
            let services = plan["services"].as_array().expect("services");
            assert!(!services.is_empty(), "{name}/{e}: {plan}");
            for s in services {
                assert_eq!(s["error"], serde_json::Value::Null, "{name}/{e}: {plan}");
            }
            for (var, value) in &stated {
                assert!(
                    !all.contains(value.as_str()),
                    "{name}/{e} plan printed {var}"
                );
            }
        }

        // The attack: without the stated variables `secrets check` fails (in the
        // environments that read them), naming what is missing.
        if !stated.is_empty() {
            let bare: Vec<(&str, &str)> = recipe
                .platform
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let failed: Vec<String> = environments
                .iter()
                .map(|e| run_staging(dir, &["secrets", "check", "--env", e], &bare))
                .filter(|out| out.status.code() != Some(0))
                .map(|out| text(&out))
                .collect();
            assert!(!failed.is_empty(), "{name}: passed with nothing stated");
            for all in &failed {
                let named = stated.iter().any(|(v, _)| all.contains(v.as_str()));
                assert!(named, "{name}: no stated variable named: {all}");
            }
        }
    }
    if let Some(s) = &stand_ins.railway {
        s.assert_no_rejected().await;
    }
    render::stand_in().prism.assert_no_violations();
    netlify::stack().proxy.assert_no_violations();
    neon::stand_in().prism.assert_no_violations();
    supabase::stand_in().prism.assert_no_violations();
    vercel::stand_in().prism.assert_no_violations();
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
