//! Helpers shared by the CLI's tests.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

/// A tiny service for the local provider: answers every GET with its commit as JSON on
/// `$PORT`.
pub const SERVER: &str = r#"
import http.server, json, os
commit = os.environ.get("STAGING_COMMIT", "")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"status": "ok", "commit": commit}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// Copy a directory tree, leaving out any `.staging` directory (evidence of earlier runs).
pub fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_name() == ".staging" {
            continue;
        }
        if e.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Variables a developer's shell may hold that would point a test at a real platform or
/// change what the binary reads: removed from every run, set again only through `env`.
const AMBIENT: &[&str] = &[
    "STAGING_ENV",
    "RENDER_API_KEY",
    "RENDER_API_URL",
    "NETLIFY_AUTH_TOKEN",
    "NETLIFY_API_URL",
    "SUPABASE_ACCESS_TOKEN",
    "SUPABASE_API_URL",
    "NEON_API_KEY",
    "NEON_API_URL",
    "STAGING_INSTANCE",
];

/// `staging ARGS -f DIR/staging.toml` with exactly the given provider variables, not
/// started (to spawn it and signal it).
pub fn staging_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("staging"));
    cmd.args(args).arg("-f").arg(dir.join("staging.toml"));
    for name in AMBIENT {
        cmd.env_remove(name);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `staging ARGS -f DIR/staging.toml` with exactly the given provider variables.
pub fn run_staging(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    staging_command(dir, args, env)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// Standard output and standard error of a run, one after the other.
pub fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `psql -Atc SQL` on database `db` of the local Postgres (trust auth), stopping on the first
/// error; its output, trimmed. Panics naming the statement when it fails.
pub fn psql(db: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db])
        .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
