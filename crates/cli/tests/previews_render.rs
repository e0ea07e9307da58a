//! A preview instance on Render with a Neon branch database, through the real binary against
//! both stand-ins (Render's and Neon's published API descriptions served by Prism in front of
//! stateful fakes): `up --instance` creates the instance's service like staging's and a
//! scrubbed branch, `down` leaves both platforms exactly as before, and `down` refuses —
//! sending no delete at all — whatever is not what the instance's ledger recorded.

mod common;
#[path = "../../provider-neon/tests/support/mod.rs"]
mod neon;
#[path = "../../provider-render/tests/support/mod.rs"]
mod render;

use std::process::Command as StdCommand;
use std::sync::OnceLock;

use common::{psql, run_staging, text};
use render::{API_KEY, StandIn};
use serde_json::json;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const PERSONAL: &str = "alice.liddell@wonderland.example";

/// A Render stand-in of this test binary's own: its whole state is compared before and
/// after, so no other binary's tests may touch it.
fn render() -> &'static StandIn {
    static OWN: OnceLock<StandIn> = OnceLock::new();
    OWN.get_or_init(render::own_stand_in)
}

/// One test's world: production's database with planted personal data (the Neon project's
/// `main` branch), staging's database, staging's and production's Render services, and a
/// spec whose `preview` instances copy staging's service and branch production's data.
struct World {
    dir: tempfile::TempDir,
    tag: String,
    project: String,
    prefix: String,
}

impl World {
    fn new(tag: &str, scrub: &str) -> World {
        let prefix = format!("pv_{tag}_{}", std::process::id());
        let project = format!("proj-pv-{tag}-{}", std::process::id());
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
                "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, name text NOT NULL);
                 INSERT INTO users (email, name) VALUES ('{PERSONAL}', 'Alice Liddell'), ('bob@builder.example', 'Bob');"
            ),
        );
        psql(
            &format!("{prefix}_staging"),
            "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, name text NOT NULL);",
        );
        let n = neon::stand_in();
        n.fake.project(&project);
        n.fake
            .with(&project, |p| p.postgres_prefix = Some(prefix.clone()));

        let fake = &render().fake;
        for env in ["staging", "production"] {
            let name = format!("{tag}-api-{env}");
            let id = fake.add_defined_service(
                &name,
                json!({
                    "type": "web_service", "repo": "https://github.com/acme/shop", "branch": "main",
                    "serviceDetails": {
                        "runtime": "node", "plan": "starter", "region": "oregon",
                        "healthCheckPath": "/up",
                        "envSpecificDetails": { "buildCommand": "npm ci", "startCommand": "npm start" }
                    }
                }),
            );
            fake.add_live_deploy(&id, COMMIT);
        }

        let dir = tempfile::tempdir().unwrap();
        let url = |db: &str| format!("postgres://postgres@127.0.0.1:5432/{prefix}_{db}");
        std::fs::write(
            dir.path().join("staging.toml"),
            format!(
                r#"[project]
name = "shop"

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
settings = {{ service_name = "{tag}-api-production" }}
overrides.staging = {{ service_name = "{tag}-api-staging" }}
overrides.preview = {{ service_name = "{tag}-api-${{instance}}", branch = "${{instance}}" }}

[vars.DATABASE_URL]
secret = true

[databases.main]
url_var = "DATABASE_URL"
migrations = {{ dir = "migrations" }}
scrub = {{ sql = ["scrub.sql"] }}
branch = {{ neon = {{ project_id = "{project}", branch = "preview-${{instance}}", parent = "main", environments = ["preview"] }} }}

[[probes]]
name = "no-personal-data"
postgres = {{ url_var = "DATABASE_URL", round_trip = false, query = "SELECT count(*) FROM users WHERE email NOT LIKE '%@example.invalid'", expect_rows = [["0"]] }}
"#
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
        std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
        std::fs::write(
            dir.path().join("migrations/20260101000000_add_phone.sql"),
            "ALTER TABLE users ADD COLUMN phone text;",
        )
        .unwrap();
        std::fs::write(dir.path().join("scrub.sql"), scrub).unwrap();
        World {
            dir,
            tag: tag.to_owned(),
            project,
            prefix,
        }
    }

    fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        let neon_url = neon::stand_in().prism.url();
        let render_url = render().prism.url();
        let out = run_staging(
            self.dir.path(),
            args,
            &[
                ("RENDER_API_KEY", API_KEY),
                ("RENDER_API_URL", &render_url),
                ("NEON_API_KEY", neon::API_KEY),
                ("NEON_API_URL", &neon_url),
            ],
        );
        (out.status.code(), text(&out))
    }

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

    fn down(&self, instance: &str, extra: &[&str]) -> (Option<i32>, String) {
        let mut args = vec!["down", "--env", "preview", "--instance", instance];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Both platforms' whole state: Render's (this binary's own fake) and the Neon
    /// project's.
    fn digest(&self) -> (String, String) {
        (
            render().fake.digest(),
            neon::stand_in().fake.digest(&self.project),
        )
    }

    fn delete_requests(&self) -> usize {
        let render = render()
            .fake
            .requests()
            .into_iter()
            .filter(|r| r.starts_with("DELETE"))
            .count();
        render + neon::stand_in().fake.deletes(&self.project).len()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = StdCommand::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-Atc"])
            .arg(format!(
                "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', datname) FROM pg_database WHERE datname LIKE '{}\\_%'",
                self.prefix
            ))
            .output()
            .map(|o| {
                for stmt in String::from_utf8_lossy(&o.stdout).lines() {
                    let _ = StdCommand::new("psql")
                        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c", stmt])
                        .output();
                }
            });
    }
}

const SCRUB: &str =
    "UPDATE users SET email = 'user' || id || '@example.invalid', name = 'Scrubbed';";

// The tests of this binary share one Render fake whose whole state they compare: one at a
// time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn an_instance_gets_a_service_like_staging_and_a_scrubbed_branch_and_down_leaves_both_platforms_as_before()
 {
    let _one = serial();
    let w = World::new("pva", SCRUB);
    let before = w.digest();

    let (code, out) = w.up("pr-7");
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains(PERSONAL), "{out}");
    // The instance's own service, copied from staging's, and its own branch.
    let fake = &render().fake;
    assert_eq!(fake.services_named(&format!("{}-api-pr-7", w.tag)).len(), 1);
    assert_eq!(
        fake.services_named(&format!("{}-api-staging", w.tag)).len(),
        1
    );
    let branch = neon::stand_in()
        .fake
        .branch(&w.project, "preview-pr-7")
        .expect("the instance's branch");
    assert_eq!(branch.data_of, "main", "forked from production's data");
    // Scrubbed and migrated, by the run that made it.
    let db = format!("{}_preview-pr-7", w.prefix);
    assert_eq!(
        psql(
            &db,
            &format!("SELECT count(*) FROM users WHERE email = '{PERSONAL}'")
        ),
        "0"
    );
    assert_eq!(psql(&db, "SELECT count(*) FROM users"), "2");
    psql(&db, "SELECT phone FROM users LIMIT 1");
    // Production's data is untouched.
    assert_eq!(
        psql(
            &format!("{}_main", w.prefix),
            &format!("SELECT count(*) FROM users WHERE email = '{PERSONAL}'")
        ),
        "1"
    );

    // `list` shows what costs money; a dry run deletes nothing.
    let (code, out) = w.run(&["list"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("preview/pr-7"), "{out}");
    assert!(out.contains("render web service"), "{out}");
    assert!(out.contains("neon branch `preview-pr-7`"), "{out}");
    let after_up = w.digest();
    let (code, out) = w.down("pr-7", &["--dry-run"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("would delete"), "{out}");
    assert_eq!(w.digest(), after_up, "a dry run changes nothing");

    let (code, out) = w.down("pr-7", &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("deleted"), "{out}");
    assert_eq!(w.digest(), before, "both platforms exactly as before `up`");
    // Staging's and production's services are still there.
    assert_eq!(
        fake.services_named(&format!("{}-api-staging", w.tag)).len(),
        1
    );
    assert_eq!(
        fake.services_named(&format!("{}-api-production", w.tag))
            .len(),
        1
    );

    // A second `down` is a no-op.
    let deletes = w.delete_requests();
    let (code, out) = w.down("pr-7", &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(w.delete_requests(), deletes, "{out}");
    assert_eq!(w.digest(), before);
}

#[test]
fn down_refuses_a_service_made_again_by_hand_under_a_recorded_name_and_deletes_nothing() {
    let _one = serial();
    let w = World::new("pvb", SCRUB);
    let (code, out) = w.up("pr-8");
    assert_eq!(code, Some(0), "{out}");
    // Someone deletes the instance's service by hand and makes another under its name.
    let fake = &render().fake;
    let name = format!("{}-api-pr-8", w.tag);
    let ids = fake.services_named(&name);
    assert_eq!(ids.len(), 1);
    fake.remove_service(&ids[0]);
    let theirs = fake.add_service(&name, render::Kind::Web);
    let deletes = w.delete_requests();

    let (code, out) = w.down("pr-8", &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("nothing deleted"), "{out}");
    assert_eq!(
        w.delete_requests(),
        deletes,
        "no delete request at all: {out}"
    );
    assert_eq!(fake.services_named(&name), [theirs]);
    assert!(
        neon::stand_in()
            .fake
            .branch(&w.project, "preview-pr-8")
            .is_some()
    );
}

#[test]
fn down_without_a_ledger_and_an_instance_named_like_staging_delete_nothing() {
    let _one = serial();
    let w = World::new("pvc", SCRUB);
    let before = w.digest();
    let deletes = w.delete_requests();
    let (code, out) = w.down("pr-99", &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("has no ledger"), "{out}");
    // An instance whose service would take staging's name is refused at `up`, before any
    // write; its `down` then has nothing of staging's to delete.
    let text = std::fs::read_to_string(w.dir.path().join("staging.toml")).unwrap();
    std::fs::write(
        w.dir.path().join("staging.toml"),
        text.replace(
            &format!("service_name = \"{}-api-${{instance}}\"", w.tag),
            &format!("service_name = \"{}-api-staging\"", w.tag),
        ),
    )
    .unwrap();
    let (code, out) = w.up("pr-5");
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("`staging`"), "{out}");
    // Refused offline, before the ledger or anything else: no branch was made, and `down`
    // has nothing of the instance's on record, so it deletes nothing — staging's service
    // above all.
    assert!(
        neon::stand_in()
            .fake
            .branch(&w.project, "preview-pr-5")
            .is_none()
    );
    let (code, out) = w.down("pr-5", &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("has no ledger"), "{out}");
    assert_eq!(w.delete_requests(), deletes, "{out}");
    assert_eq!(
        render()
            .fake
            .services_named(&format!("{}-api-staging", w.tag))
            .len(),
        1
    );
    assert_eq!(w.digest(), before, "{out}");
}

#[test]
fn down_after_an_up_that_failed_halfway_removes_what_it_had_created() {
    let _one = serial();
    // A scrub that fails: the branch exists, nothing after it is created.
    let w = World::new("pvd", "UPDATE no_such_table SET x = 1;");
    let before = w.digest();
    let (code, out) = w.up("pr-9");
    assert_ne!(code, Some(0), "{out}");
    assert!(
        neon::stand_in()
            .fake
            .branch(&w.project, "preview-pr-9")
            .is_some()
    );
    let (code, out) = w.down("pr-9", &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(w.digest(), before, "{out}");
}

#[test]
fn an_up_stopped_by_sigterm_while_render_holds_the_creation_s_answer_leaves_a_ledger_down_cleans_up()
 {
    let _one = serial();
    let w = World::new("pve", SCRUB);
    let before = w.digest();
    let name = format!("{}-api-pr-4", w.tag);
    // Render creates the service at once and holds its answer: the run is stopped with the
    // request sent and no id in hand.
    render().fake.inject(
        &name,
        render::Fault::AnswerLate(std::time::Duration::from_secs(60)),
    );
    let neon_url = neon::stand_in().prism.url();
    let render_url = render().prism.url();
    let mut child = common::staging_command(
        w.dir.path(),
        &[
            "up",
            "--env",
            "preview",
            "--instance",
            "pr-4",
            "--commit",
            COMMIT,
        ],
        &[
            ("RENDER_API_KEY", API_KEY),
            ("RENDER_API_URL", &render_url),
            ("NEON_API_KEY", neon::API_KEY),
            ("NEON_API_URL", &neon_url),
        ],
    )
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let mut waited = 0;
    while render().fake.services_named(&name).is_empty() {
        assert!(waited < 1200, "the creation never arrived");
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    // The ledger holds the branch and the service whose answer never came.
    let (code, out) = w.run(&["list", "--json"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&name), "{out}");
    let (code, out) = w.down("pr-4", &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(w.digest(), before, "{out}");
}

#[test]
fn plan_of_an_instance_lists_what_its_up_would_create_and_writes_nothing() {
    let _one = serial();
    let w = World::new("pvf", SCRUB);
    let before = w.digest();
    let (code, out) = w.run(&[
        "plan",
        "--env",
        "preview",
        "--instance",
        "pr-6",
        "--commit",
        COMMIT,
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("{}-api-pr-6", w.tag)), "{out}");
    assert!(out.contains("like staging"), "{out}");
    assert!(out.contains("neon branch `preview-pr-6`"), "{out}");
    let (code, out) = w.run(&["plan", "--env", "preview", "--commit", COMMIT]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("name the instance"), "{out}");
    assert_eq!(w.digest(), before);
}
