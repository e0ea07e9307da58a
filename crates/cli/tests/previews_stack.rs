//! A preview instance that spans three platforms — a Render API, a Netlify frontend
//! (`provider = "netlify"` on the service), a Neon branch database — through the real binary
//! against the three stand-ins (each platform's published API description served by Prism
//! in front of a stateful fake): `up --instance pr-7` creates the instance's API like
//! staging's, the instance's site like staging's whose `API_URL` is the instance's API, and a
//! scrubbed branch; `down` leaves all three platforms exactly as before.

mod common;
#[path = "../../provider-neon/tests/support/mod.rs"]
mod neon;
#[path = "../../provider-netlify/tests/support/mod.rs"]
mod netlify;
#[path = "../../provider-render/tests/support/mod.rs"]
mod render;

use std::process::Command as StdCommand;
use std::sync::OnceLock;

use common::{psql, run_staging, text};
use render::{API_KEY, StandIn};
use serde_json::json;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const PERSONAL: &str = "alice.liddell@wonderland.example";
const NETLIFY_TOKEN: &str = "test-token-canary-2718";

/// Stand-ins of this test binary's own: their whole state is compared before and after.
fn render() -> &'static StandIn {
    static OWN: OnceLock<StandIn> = OnceLock::new();
    OWN.get_or_init(render::own_stand_in)
}

fn netlify() -> &'static netlify::Stack {
    static OWN: OnceLock<netlify::Stack> = OnceLock::new();
    OWN.get_or_init(netlify::own_stack)
}

struct World {
    dir: tempfile::TempDir,
    project: String,
    prefix: String,
}

impl World {
    fn new() -> World {
        let prefix = format!("pvs_{}", std::process::id());
        let project = format!("proj-pvs-{}", std::process::id());
        for db in ["main", "staging"] {
            psql(
                "test",
                &format!("DROP DATABASE IF EXISTS {prefix}_{db} WITH (FORCE)"),
            );
            psql("test", &format!("CREATE DATABASE {prefix}_{db}"));
        }
        psql(
            &format!("{prefix}_main"),
            &format!(
                "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);
                 INSERT INTO users (email) VALUES ('{PERSONAL}'), ('bob@builder.example');"
            ),
        );
        psql(
            &format!("{prefix}_staging"),
            "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);",
        );
        let n = neon::stand_in();
        n.fake.project(&project);
        n.fake
            .with(&project, |p| p.postgres_prefix = Some(prefix.clone()));

        // Staging's and production's API on Render.
        for env in ["staging", "production"] {
            let id = render().fake.add_defined_service(
                &format!("stack-api-{env}"),
                json!({
                    "type": "web_service", "repo": "https://github.com/acme/shop", "branch": "main",
                    "serviceDetails": {
                        "runtime": "node", "plan": "starter", "region": "oregon",
                        "healthCheckPath": "/up",
                        "envSpecificDetails": { "buildCommand": "npm ci", "startCommand": "npm start" }
                    }
                }),
            );
            render().fake.add_live_deploy(&id, COMMIT);
        }
        // Staging's and production's frontend sites on Netlify, built from one repository.
        let fake = &netlify().fake;
        let mut sites = vec![];
        for env in ["staging", "production"] {
            let (site, _) = fake.add_site(&format!("stack-web-{env}"));
            fake.with_site(&site, |s| {
                s.repo = Some(("github".into(), "acme/shop-web".into()));
                s.production_branch = "main".into();
                s.allowed_branches = vec!["main".into()];
            });
            fake.push(&site, "main", COMMIT);
            sites.push(site);
        }

        let dir = tempfile::tempdir().unwrap();
        let url = |db: &str| format!("postgres://postgres@127.0.0.1:5432/{prefix}_{db}");
        std::fs::write(
            dir.path().join("staging.toml"),
            format!(
                r#"[project]
name = "stack"

[environments.staging]
provider = "render"
promotes_to = "production"
deploy_timeout = "2m"
secrets = {{ dotenv = "staging.env" }}

[environments.production]
provider = "render"
protected = true
secrets = {{ dotenv = "production.env" }}

[environments.preview]
ephemeral = true
like = "staging"
ttl = "72h"
deploy_timeout = "2m"

[services.api]
health_path = "/up"
settings = {{ service_name = "stack-api-production" }}
overrides.staging = {{ service_name = "stack-api-staging" }}
overrides.preview = {{ service_name = "stack-api-${{instance}}" }}

[services.web]
provider = "netlify"
health_path = "/"
settings = {{ account_id = "acct-1", context = "production" }}
overrides.staging = {{ site_id = "{staging_site}" }}
overrides.production = {{ site_id = "{production_site}" }}
overrides.preview = {{ site_name = "stack-web-${{instance}}" }}

[vars.API_URL]
value = "${{services.api.url}}"
services = ["web"]

[vars.DATABASE_URL]
secret = true
services = ["api"]

[databases.main]
url_var = "DATABASE_URL"
scrub = {{ sql = ["scrub.sql"] }}
branch = {{ neon = {{ project_id = "{project}", branch = "preview-${{instance}}", parent = "main", environments = ["preview"] }} }}
"#,
                staging_site = sites[0],
                production_site = sites[1],
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("staging.env"),
            format!("DATABASE_URL={}\n", url("staging")),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("production.env"),
            format!("DATABASE_URL={}\n", url("main")),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("scrub.sql"),
            "UPDATE users SET email = 'user' || id || '@example.invalid';",
        )
        .unwrap();
        World {
            dir,
            project,
            prefix,
        }
    }

    fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        let neon_url = neon::stand_in().prism.url();
        let render_url = render().prism.url();
        let netlify_url = netlify().proxy.url.clone();
        let out = run_staging(
            self.dir.path(),
            args,
            &[
                ("RENDER_API_KEY", API_KEY),
                ("RENDER_API_URL", &render_url),
                ("NEON_API_KEY", neon::API_KEY),
                ("NEON_API_URL", &neon_url),
                ("NETLIFY_AUTH_TOKEN", NETLIFY_TOKEN),
                ("NETLIFY_API_URL", &netlify_url),
            ],
        );
        (out.status.code(), text(&out))
    }

    fn digest(&self) -> (String, String, String) {
        (
            render().fake.digest(),
            netlify().fake.digest(),
            neon::stand_in().fake.digest(&self.project),
        )
    }

    fn delete_requests(&self) -> usize {
        render()
            .fake
            .requests()
            .iter()
            .filter(|r| r.starts_with("DELETE"))
            .count()
            + netlify().fake.deletes()
            + neon::stand_in().fake.deletes(&self.project).len()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for db in ["main", "staging", "preview-pr-7"] {
            let _ = StdCommand::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c"])
                .arg(format!(
                    "DROP DATABASE IF EXISTS \"{}_{db}\" WITH (FORCE)",
                    self.prefix
                ))
                .output();
        }
    }
}

#[test]
fn a_preview_across_render_netlify_and_neon_is_wired_to_itself_and_down_leaves_all_three_as_before()
{
    let w = World::new();
    let before = w.digest();
    let (code, out) = w.run(&[
        "plan",
        "--env",
        "preview",
        "--instance",
        "pr-7",
        "--commit",
        COMMIT,
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(w.digest(), before, "plan wrote");

    let (code, out) = w.up("pr-7");
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains(PERSONAL), "{out}");

    // The instance's API on Render, like staging's.
    let api = render().fake.services_named("stack-api-pr-7");
    assert_eq!(api.len(), 1, "{out}");
    // The instance's site on Netlify, like staging's, whose API_URL is the instance's API.
    let site = netlify()
        .fake
        .site_id_named("stack-web-pr-7")
        .unwrap_or_else(|| panic!("no instance site: {out}"));
    let env = netlify().fake.with_site(&site, |s| s.env.clone());
    let api_url = env
        .iter()
        .find(|v| v["key"] == "API_URL")
        .unwrap_or_else(|| panic!("API_URL not set on the instance's site: {env:?}"))["values"][0]
        ["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        api_url, "https://stack-api-pr-7.onrender.com",
        "the instance's own API"
    );
    let (code, status) = w.run(&["status", "--env", "preview", "--instance", "pr-7"]);
    assert_eq!(code, Some(0), "{status}");
    assert!(
        status.contains(&api_url),
        "the instance's API URL: {api_url}\n{status}"
    );
    // Staging's frontend still points wherever it pointed: nothing of staging's was written.
    let (code, staging_status) = w.run(&["status", "--env", "staging"]);
    assert_eq!(code, Some(0), "{staging_status}");
    // The instance's database: a branch of production's, scrubbed.
    let branch = neon::stand_in()
        .fake
        .branch(&w.project, "preview-pr-7")
        .expect("the instance's branch");
    assert_eq!(branch.data_of, "main");
    let db = format!("{}_preview-pr-7", w.prefix);
    assert_eq!(
        psql(
            &db,
            &format!("SELECT count(*) FROM users WHERE email = '{PERSONAL}'")
        ),
        "0"
    );

    // `down` leaves the three platforms exactly as before `up`; a second `down` sends nothing.
    let (code, out) = w.run(&["down", "--env", "preview", "--instance", "pr-7"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(w.digest(), before, "{out}");
    let deletes = w.delete_requests();
    let (code, out) = w.run(&["down", "--env", "preview", "--instance", "pr-7"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(w.delete_requests(), deletes, "{out}");
    assert_eq!(w.digest(), before);
    // Never the others: no ledger, nothing deleted.
    let (code, out) = w.run(&["down", "--env", "preview", "--instance", "pr-99"]);
    assert_eq!(code, Some(2), "{out}");
    assert_eq!(w.delete_requests(), deletes, "{out}");
}

impl World {
    fn up(&self, instance: &str) -> (Option<i32>, String) {
        self.run(&[
            "up",
            "--env",
            "preview",
            "--instance",
            instance,
            "--commit",
            COMMIT,
        ])
    }
}
