//! Stand-ins for the contract tests: Prism serving Netlify's own API description (as a mock,
//! or as a validating proxy in front of the stateful fake in `fake.rs`), started once per
//! test binary and stopped when the binary exits.

#![allow(dead_code, unreachable_pub)]

pub mod fake;

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use staging_provider_netlify::{
    DeployContext, NetlifyBuilder, NetlifyProvider, RateLimits, SiteRef, SiteTarget,
};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Netlify's API description, found by the repository's one convention
/// ([`staging_core::testkit::contract_path`]).
pub fn contract() -> PathBuf {
    staging_core::testkit::contract_path("netlify-swagger.json")
}

fn prism_bin() -> PathBuf {
    let bin = workspace_root().join(".tools/prism/node_modules/.bin/prism");
    assert!(
        bin.exists(),
        "Prism is not installed at {}: run `bash scripts/test-tools.sh` first",
        bin.display()
    );
    bin
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prism process. It runs under a small shell that kills it when its stdin closes, which
/// happens when this test binary exits, even from a `static` that is never dropped.
pub struct Prism {
    pub url: String,
    child: Child,
}

impl Prism {
    pub fn start(mode_args: &[&str]) -> Prism {
        let port = free_port();
        let mut args: Vec<String> = vec![];
        args.push(mode_args[0].to_owned());
        args.extend([
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ]);
        args.push(contract().display().to_string());
        args.extend(mode_args[1..].iter().map(|s| s.to_string()));
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" "$@" >/dev/null 2>&1 & pid=$!; read _ignored; kill $pid"#)
            .arg(prism_bin())
            .args(&args)
            .stdin(Stdio::piped())
            .spawn()
            .expect("start prism");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "prism {args:?} did not answer within 90 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Prism {
            url: format!("http://127.0.0.1:{port}"),
            child,
        }
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.child.wait();
    }
}

/// `prism mock`: the description's own example answers; rejects requests that break it.
pub fn mock() -> &'static Prism {
    static MOCK: OnceLock<Prism> = OnceLock::new();
    MOCK.get_or_init(|| Prism::start(&["mock"]))
}

/// The stateful fake, and `prism proxy --errors` in front of it: requests and the fake's
/// answers are both checked against the description.
pub struct Stack {
    pub fake: fake::Fake,
    pub proxy: Prism,
}

pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let fake = fake::Fake::start();
        let proxy = Prism::start(&["proxy", &fake.url, "--errors"]);
        Stack { fake, proxy }
    })
}

/// Fast polls and no client-side waiting: tests check behaviour, not timing.
pub fn builder(base: &str) -> NetlifyBuilder {
    NetlifyBuilder::new()
        .with_token("test-token-canary-3141".to_owned().into())
        .with_base_url(base)
        .with_poll_interval(Duration::from_millis(20))
        .with_rate_limits(RateLimits {
            requests: 100_000,
            deploys: 10_000,
            window: Duration::from_secs(60),
        })
        .with_request_timeout(Duration::from_secs(30))
        .with_hook_wait(Duration::from_secs(30))
}

pub fn target(site_id: &str, context: DeployContext) -> SiteTarget {
    SiteTarget::new(SiteRef::Id(site_id.to_owned()), context)
}

/// A provider for service `web` on `site_id` in `context`, through the validating proxy.
pub fn provider(site_id: &str, context: DeployContext) -> NetlifyProvider {
    builder(&stack().proxy.url)
        .with_site("web", target(site_id, context))
        .build()
        .unwrap()
}
