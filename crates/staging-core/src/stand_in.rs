//! Prism, the validating stand-in for REST providers, shared by every provider's tests
//! (feature `testkit`): `prism mock` of a published API description, or `prism proxy
//! --errors` in front of a stateful fake, so both our requests and the fake's answers are
//! checked against the contract.
//!
//! Contracts are found by [`crate::testkit::contract_path`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The workspace root, from a crate's `CARGO_MANIFEST_DIR` (`crates/NAME`).
pub fn workspace_root(manifest_dir: &str) -> PathBuf {
    let p = Path::new(manifest_dir).join("../..");
    p.canonicalize().unwrap_or(p)
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

/// A running Prism. Killed on drop; when held in a static (never dropped), a watchdog shell
/// kills it once the test binary has exited.
#[derive(Debug)]
pub struct Prism {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Prism {
    /// `prism mock` of `contract`.
    pub fn mock(manifest_dir: &str, contract: &Path) -> Prism {
        Self::start(manifest_dir, &["mock"], contract, None)
    }

    /// `prism proxy --errors` of `contract` in front of `upstream`.
    pub fn proxy(manifest_dir: &str, contract: &Path, upstream: &str) -> Prism {
        Self::start(
            manifest_dir,
            &["proxy", "--errors"],
            contract,
            Some(upstream),
        )
    }

    fn start(manifest_dir: &str, mode: &[&str], contract: &Path, upstream: Option<&str>) -> Prism {
        let bin = workspace_root(manifest_dir).join(".tools/prism/node_modules/.bin/prism");
        assert!(
            bin.exists(),
            "Prism is not installed at {}: run `bash scripts/test-tools.sh` first",
            bin.display()
        );
        let port = free_port();
        let mut child = Command::new(bin)
            .args(mode)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(contract)
            .args(upstream)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn prism");
        let log = Arc::new(Mutex::new(vec![]));
        let pipes: Vec<Box<dyn std::io::Read + Send>> = [
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
        .collect();
        for pipe in pipes {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
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
        let lines = |log: &Arc<Mutex<Vec<String>>>| {
            log.lock().unwrap_or_else(|p| p.into_inner()).join("\n")
        };
        loop {
            if lines(&log).contains("Prism is listening") {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("prism exited ({status}) before listening:\n{}", lines(&log));
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "prism did not start within 120 s:\n{}",
                lines(&log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Prism { port, child, log }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Error-level lines of Prism's log: a request or a response that breaks the contract.
    pub fn violations(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
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
