//! A platform API that accepts connections and never answers, through the binary: `plan`
//! fails within the documented bound (`STAGING_API_TIMEOUT`, once per run, not once per
//! read), exits 3 and names the host; a database branch's silent API is blamed, not the
//! variable its URL would have filled.

mod common;

use std::path::Path;

use staging_core::testkit::SilentPeer;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn plan(dir: &Path, spec: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    std::fs::write(dir.join("staging.toml"), spec).unwrap();
    let mut env = env.to_vec();
    env.push(("STAGING_API_TIMEOUT", "1s"));
    let out = common::run_staging(dir, &["plan", "--env", "staging", "--commit", COMMIT], &env);
    (out.status.code(), common::text(&out))
}

fn assert_blames_the_silent_api(peer: &SilentPeer, code: Option<i32>, text: &str) {
    assert_eq!(code, Some(3), "exit 3, never 0: {text}");
    assert!(
        text.contains(&peer.addr().to_string()),
        "names the host: {text}"
    );
    assert!(
        text.contains("did not answer within 1s")
            || text.contains("timed out waiting for the answer"),
        "names the phase: {text}"
    );
    assert!(!text.contains("has no value"), "blames the API: {text}");
}

fn branch_spec(branch: &str) -> String {
    format!(
        r#"[project]
name = "shop"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[databases.main]
url_var = "DATABASE_URL"
branch = {{ {branch} }}

[vars.DATABASE_URL]
secret = true
sources = {{ production = {{ env = "PRODUCTION_DATABASE_URL" }} }}
"#
    )
}

#[test]
fn plan_with_a_silent_neon_api_exits_3_naming_the_host() {
    let peer = SilentPeer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}", peer.addr());
    let (code, text) = plan(
        dir.path(),
        &branch_spec(r#"neon = { project_id = "p1", branch = "staging", parent = "main" }"#),
        &[("NEON_API_KEY", "napi_silent"), ("NEON_API_URL", &url)],
    );
    assert_blames_the_silent_api(&peer, code, &text);
}

#[test]
fn plan_with_a_silent_supabase_api_exits_3_naming_the_host() {
    let peer = SilentPeer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}", peer.addr());
    let (code, text) = plan(
        dir.path(),
        &branch_spec(r#"supabase = { project_ref = "abcdefghijklmnopqrst", branch = "staging" }"#),
        &[
            ("SUPABASE_ACCESS_TOKEN", "sbp_silent"),
            ("SUPABASE_API_URL", &url),
        ],
    );
    assert_blames_the_silent_api(&peer, code, &text);
}

#[test]
fn plan_with_a_silent_render_api_exits_3_naming_the_host() {
    let peer = SilentPeer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}", peer.addr());
    let (code, text) = plan(
        dir.path(),
        r#"[project]
name = "shop"

[environments.staging]
provider = "render"

[services.web]
settings = { service_id = "srv-1" }
"#,
        &[("RENDER_API_KEY", "rnd_silent"), ("RENDER_API_URL", &url)],
    );
    assert_blames_the_silent_api(&peer, code, &text);
}

#[test]
fn plan_with_a_silent_netlify_api_exits_3_naming_the_host() {
    let peer = SilentPeer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}", peer.addr());
    let (code, text) = plan(
        dir.path(),
        r#"[project]
name = "shop"

[environments.staging]
provider = "netlify"

[services.web]
settings = { site_id = "s1", context = "production" }
"#,
        &[
            ("NETLIFY_AUTH_TOKEN", "nf_silent"),
            ("NETLIFY_API_URL", &url),
        ],
    );
    assert_blames_the_silent_api(&peer, code, &text);
}

#[test]
fn plan_with_a_silent_vercel_api_exits_3_naming_the_host() {
    let peer = SilentPeer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}", peer.addr());
    let (code, text) = plan(
        dir.path(),
        r#"[project]
name = "shop"

[environments.staging]
provider = "vercel"
settings = { target = "preview", team_id = "team_1" }

[services.web]
http = false
settings = { project = "web", repo = "acme/web" }
"#,
        &[
            ("VERCEL_TOKEN", "vc_silent"),
            ("VERCEL_API_URL", &url),
            ("VERCEL_UNLISTED_API_URL", &url),
        ],
    );
    assert_blames_the_silent_api(&peer, code, &text);
}

#[test]
fn plan_with_a_silent_railway_api_exits_3_naming_the_host() {
    let peer = SilentPeer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}", peer.addr());
    let (code, text) = plan(
        dir.path(),
        r#"[project]
name = "shop"

[environments.staging]
provider = "railway"
settings = { project_id = "p1" }

[services.web]
http = false
"#,
        &[
            ("RAILWAY_API_TOKEN", "rw_silent"),
            ("RAILWAY_API_URL", &url),
        ],
    );
    assert_blames_the_silent_api(&peer, code, &text);
}

#[test]
fn up_with_a_silent_neon_api_fails_its_secrets_step_blaming_the_api_with_exit_3() {
    let peer = SilentPeer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}", peer.addr());
    std::fs::write(
        dir.path().join("staging.toml"),
        branch_spec(r#"neon = { project_id = "p1", branch = "staging", parent = "main" }"#),
    )
    .unwrap();
    let out = common::run_staging(
        dir.path(),
        &["up", "--env", "staging", "--commit", COMMIT],
        &[
            ("NEON_API_KEY", "napi_silent"),
            ("NEON_API_URL", &url),
            ("STAGING_API_TIMEOUT", "1s"),
        ],
    );
    let text = common::text(&out);
    assert_blames_the_silent_api(&peer, out.status.code(), &text);
    assert!(!text.contains("napi_silent"), "{text}");
}
