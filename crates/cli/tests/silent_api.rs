//! A platform API that accepts connections and never answers, through the binary: `plan`
//! fails within the documented bound (`STAGING_API_TIMEOUT`, once per run, not once per
//! read), exits 3 and names the host; a database branch's silent API is blamed, not the
//! variable its URL would have filled.

mod common;

use staging_core::testkit::SilentPeer;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// `staging ARGS` against a spec whose platform is a silent peer: `url_vars` point at it,
/// `env` adds the credentials. With the bound lowered to 1 s by `STAGING_API_TIMEOUT`.
fn against_silent(
    args: &[&str],
    spec: &str,
    url_vars: &[&str],
    env: &[(&str, &str)],
) -> (SilentPeer, std::process::Output) {
    let peer = SilentPeer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), spec).unwrap();
    let url = format!("http://{}", peer.addr());
    let mut vars: Vec<(&str, &str)> = url_vars.iter().map(|v| (*v, url.as_str())).collect();
    vars.extend_from_slice(env);
    vars.push(("STAGING_API_TIMEOUT", "1s"));
    let mut full = args.to_vec();
    full.extend(["--env", "staging", "--commit", COMMIT]);
    let out = common::run_staging(dir.path(), &full, &vars);
    (peer, out)
}

/// `plan` fails with exit 3 naming the silent host and how it went silent, not a variable.
fn assert_plan_blames_the_silent_api(spec: &str, url_vars: &[&str], env: &[(&str, &str)]) {
    let (peer, out) = against_silent(&["plan"], spec, url_vars, env);
    assert_blames_the_silent_api(&peer, out.status.code(), &common::text(&out));
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
    assert!(
        !text.contains("_silent_token"),
        "the credential leaked: {text}"
    );
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

const NEON: &str = r#"neon = { project_id = "p1", branch = "staging", parent = "main" }"#;
const NEON_ENV: &[(&str, &str)] = &[("NEON_API_KEY", "napi_silent_token")];

#[test]
fn plan_with_a_silent_neon_api_exits_3_naming_the_host() {
    assert_plan_blames_the_silent_api(&branch_spec(NEON), &["NEON_API_URL"], NEON_ENV);
}

#[test]
fn plan_json_with_a_silent_neon_api_is_not_ok_and_lists_what_was_not_read() {
    let (peer, out) = against_silent(
        &["plan", "--json"],
        &branch_spec(NEON),
        &["NEON_API_URL"],
        NEON_ENV,
    );
    assert_eq!(out.status.code(), Some(3), "{}", common::text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false, "{doc}");
    assert_eq!(doc["error"]["kind"], "cannot_proceed", "{doc}");
    let listed = doc["unavailable"][0].as_str().unwrap_or_default();
    assert!(
        listed.contains("DATABASE_URL") && listed.contains(&peer.addr().to_string()),
        "{doc}"
    );
}

#[test]
fn up_with_a_silent_neon_api_fails_its_secrets_step_blaming_the_api_with_exit_3() {
    let (peer, out) = against_silent(&["up"], &branch_spec(NEON), &["NEON_API_URL"], NEON_ENV);
    assert_blames_the_silent_api(&peer, out.status.code(), &common::text(&out));
}

#[test]
fn plan_with_a_silent_supabase_api_exits_3_naming_the_host() {
    assert_plan_blames_the_silent_api(
        &branch_spec(r#"supabase = { project_ref = "abcdefghijklmnopqrst", branch = "staging" }"#),
        &["SUPABASE_API_URL"],
        &[("SUPABASE_ACCESS_TOKEN", "sbp_silent_token")],
    );
}

/// A spec of one service `web` on `provider`, its settings `settings`.
fn service_spec(provider: &str, environment: &str, settings: &str) -> String {
    format!(
        "[project]\nname = \"shop\"\n\n[environments.staging]\nprovider = \"{provider}\"\n{environment}\n\n[services.web]\nhttp = false\n{settings}\n"
    )
}

#[test]
fn plan_with_a_silent_render_api_exits_3_naming_the_host() {
    assert_plan_blames_the_silent_api(
        &service_spec("render", "", r#"settings = { service_id = "srv-1" }"#),
        &["RENDER_API_URL"],
        &[("RENDER_API_KEY", "rnd_silent_token")],
    );
}

#[test]
fn plan_with_a_silent_netlify_api_exits_3_naming_the_host() {
    assert_plan_blames_the_silent_api(
        &service_spec(
            "netlify",
            "",
            r#"settings = { site_id = "s1", context = "production" }"#,
        ),
        &["NETLIFY_API_URL"],
        &[("NETLIFY_AUTH_TOKEN", "nf_silent_token")],
    );
}

#[test]
fn plan_with_a_silent_vercel_api_exits_3_naming_the_host() {
    assert_plan_blames_the_silent_api(
        &service_spec(
            "vercel",
            r#"settings = { target = "preview", team_id = "team_1" }"#,
            r#"settings = { project = "web", repo = "acme/web" }"#,
        ),
        &["VERCEL_API_URL", "VERCEL_UNLISTED_API_URL"],
        &[("VERCEL_TOKEN", "vc_silent_token")],
    );
}

#[test]
fn plan_with_a_silent_railway_api_exits_3_naming_the_host() {
    assert_plan_blames_the_silent_api(
        &service_spec("railway", r#"settings = { project_id = "p1" }"#, ""),
        &["RAILWAY_API_URL"],
        &[("RAILWAY_API_TOKEN", "rw_silent_token")],
    );
}
