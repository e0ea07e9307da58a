//! Starts Prism (installed by `scripts/test-tools.sh`) on a free loopback port, serving
//! Render's own API description (or, through [`Prism::proxy_of`], another provider's: the
//! Vercel tests include this file), and collects its log to find contract violations.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Render's API description, found by the repository's one convention
/// ([`staging_core::testkit::contract_path`]).
pub fn contract() -> PathBuf {
    staging_core::testkit::contract_path("render-public-api.json")
}

fn prism_bin() -> PathBuf {
    let p = workspace_root().join(".tools/prism/node_modules/.bin/prism");
    assert!(
        p.exists(),
        "Prism is not installed at {}: run `bash scripts/test-tools.sh` first (the Render contract tests need it)",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .unwrap()
        .port()
}

/// A running Prism. Killed on drop; when held in a static (never dropped), a watchdog shell
/// kills it once the test binary has exited.
pub struct Prism {
    pub port: u16,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Prism {
    /// `prism mock` of the contract.
    pub fn mock() -> Prism {
        Self::start(&["mock"], contract(), &[])
    }

    /// `prism proxy --errors` of the contract in front of `upstream`.
    pub fn proxy(upstream: &str) -> Prism {
        Self::start(&["proxy", "--errors"], contract(), &[upstream])
    }

    /// `prism proxy --errors` of the API description `contract` in front of `upstream`.
    pub fn proxy_of(contract: PathBuf, upstream: &str) -> Prism {
        Self::start(&["proxy", "--errors"], contract, &[upstream])
    }

    fn start(mode: &[&str], contract: PathBuf, after: &[&str]) -> Prism {
        let port = free_port();
        let mut cmd = Command::new(prism_bin());
        cmd.args(mode)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(contract)
            .args(after)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn prism");
        let log = Arc::new(Mutex::new(vec![]));
        for pipe in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        // The watchdog: Prism must not outlive the test binary even when never dropped.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {} 2>/dev/null && kill -0 {} 2>/dev/null; do sleep 1; done; kill {} 2>/dev/null",
                std::process::id(),
                child.id(),
                child.id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let started = Instant::now();
        loop {
            if log
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("Prism is listening"))
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "prism exited ({status}) before listening:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "prism did not start within 120 s:\n{}",
                log.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Prism { port, child, log }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Error-level lines of Prism's log: a request or a response that breaks the contract.
    pub fn violations(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains('✖') || (l.contains("Violation") && !l.contains("warning")))
            .cloned()
            .collect()
    }

    /// Fails the test when Prism saw any contract violation so far.
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(
            v.is_empty(),
            "Prism reported contract violations:\n{}",
            v.join("\n")
        );
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
