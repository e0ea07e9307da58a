//! Probe bodies are read as they stream in, against a cap: an endless chunked body fails
//! the probe with "larger than ..." and the process's peak memory stays small.
//! (One test per binary: VmHWM is the whole process's peak.)

mod common;

use std::io::{Read, Write};

use common::*;
use staging_smoke::ProbeStatus;

/// A loopback server answering every request with a 200 whose chunked body never ends.
fn endless_body_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                if conn
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n")
                    .is_err()
                {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
                framed.extend_from_slice(&chunk);
                framed.extend_from_slice(b"\r\n");
                // Until the client hangs up.
                while conn.write_all(&framed).is_ok() {}
            });
        }
    });
    addr
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_endless_body_fails_the_probe_past_its_cap_and_memory_stays_small() {
    let addr = endless_body_server();
    let (ctx, _dir) = context(
        &format!(
            "[[probes]]\nname = \"endless\"\ntimeout = \"60s\"\nhttp = {{ url = \"http://{addr}/\" }}\n\n\
             [[probes]]\nname = \"endless-small-cap\"\ntimeout = \"60s\"\nhttp = {{ url = \"http://{addr}/\", max_body = 100000 }}\n"
        ),
        &[],
    );
    let report = smoke(&ctx).await;
    let default_cap = &report.probes[0];
    assert_eq!(default_cap.status, ProbeStatus::Failed, "{default_cap:#?}");
    let observed = default_cap.observed.as_deref().unwrap();
    assert!(
        observed.contains("larger than 1 MiB") && observed.contains("max_body"),
        "{default_cap:#?}"
    );
    let small = &report.probes[1];
    let observed = small.observed.as_deref().unwrap();
    assert!(observed.contains("larger than 97.7 KiB"), "{small:#?}");
    let peak = peak_rss_kib();
    assert!(
        peak < 100 * 1024,
        "peak RSS {peak} KiB: the body was not read against the cap"
    );
}
