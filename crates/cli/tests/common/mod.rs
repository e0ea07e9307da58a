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
