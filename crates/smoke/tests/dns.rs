//! The dns probe against a tiny DNS responder on loopback (UDP, built on hickory-proto).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;

use common::*;
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use staging_smoke::ProbeStatus;

/// Answers:
/// - `app.staging.test` A 10.0.0.7
/// - `www.staging.test` CNAME `web-abc.onrender.test`, which has A 10.0.0.8
/// - anything else: NXDOMAIN.
async fn dns_server() -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut response = Message::response(query.metadata.id, OpCode::Query);
            response.metadata.recursion_desired = query.metadata.recursion_desired;
            response.metadata.recursion_available = true;
            response.metadata.authoritative = true;
            let mut found = false;
            for q in &query.queries {
                response.add_query(q.clone());
                let name = q.name().to_ascii().to_ascii_lowercase();
                let web = Name::from_str("web-abc.onrender.test.").unwrap();
                match (name.as_str(), q.query_type()) {
                    ("app.staging.test.", RecordType::A) => {
                        response.add_answer(Record::from_rdata(
                            q.name().clone(),
                            60,
                            RData::A(A(Ipv4Addr::new(10, 0, 0, 7))),
                        ));
                        found = true;
                    }
                    ("app.staging.test.", _) => found = true,
                    ("www.staging.test.", t) => {
                        response.add_answer(Record::from_rdata(
                            q.name().clone(),
                            60,
                            RData::CNAME(CNAME(web.clone())),
                        ));
                        if t == RecordType::A {
                            response.add_answer(Record::from_rdata(
                                web,
                                60,
                                RData::A(A(Ipv4Addr::new(10, 0, 0, 8))),
                            ));
                        }
                        found = true;
                    }
                    _ => {}
                }
            }
            if !found {
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            if let Ok(bytes) = response.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    addr
}

fn dns_probe(
    name: &str,
    query: &str,
    record: &str,
    expect: Option<&str>,
    resolver: SocketAddr,
) -> String {
    let expect = expect
        .map(|e| format!(", expect = \"{e}\""))
        .unwrap_or_default();
    format!(
        "[[probes]]\nname = \"{name}\"\ndns = {{ name = \"{query}\", record = \"{record}\", resolver = \"{resolver}\"{expect} }}\n"
    )
}

#[tokio::test]
async fn dns_probe_resolves_an_a_record_to_the_expected_address() {
    let resolver = dns_server().await;
    let spec = [
        dns_probe("a", "app.staging.test", "A", Some("10.0.0.7"), resolver),
        dns_probe("a-any", "app.staging.test", "A", None, resolver),
        dns_probe(
            "a-wrong",
            "app.staging.test",
            "A",
            Some("10.9.9.9"),
            resolver,
        ),
    ]
    .concat();
    let (ctx, _dir) = context(&spec, &[]);
    let report = smoke(&ctx).await;
    assert_eq!(report.probes[0].status, ProbeStatus::Passed, "{report:#?}");
    assert_eq!(report.probes[1].status, ProbeStatus::Passed, "{report:#?}");
    let wrong = &report.probes[2];
    assert_eq!(
        wrong.expected.as_deref(),
        Some("A app.staging.test → 10.9.9.9")
    );
    assert_eq!(wrong.observed.as_deref(), Some("10.0.0.7"));
}

#[tokio::test]
async fn dns_probe_checks_a_cname_points_at_the_platform() {
    let resolver = dns_server().await;
    let spec = [
        dns_probe(
            "cname",
            "www.staging.test",
            "CNAME",
            Some("web-abc.onrender.test"),
            resolver,
        ),
        dns_probe(
            "a-via-cname",
            "www.staging.test",
            "A",
            Some("web-abc.onrender.test."),
            resolver,
        ),
        dns_probe(
            "cname-wrong",
            "www.staging.test",
            "CNAME",
            Some("old-host.herokuapp.test"),
            resolver,
        ),
    ]
    .concat();
    let (ctx, _dir) = context(&spec, &[]);
    let report = smoke(&ctx).await;
    assert_eq!(report.probes[0].status, ProbeStatus::Passed, "{report:#?}");
    assert_eq!(report.probes[1].status, ProbeStatus::Passed, "{report:#?}");
    assert_eq!(
        report.probes[2].observed.as_deref(),
        Some("CNAME web-abc.onrender.test")
    );
}

#[tokio::test]
async fn dns_probe_fails_a_name_that_does_not_exist() {
    let resolver = dns_server().await;
    let (ctx, _dir) = context(
        &dns_probe("missing", "nope.staging.test", "A", None, resolver),
        &[],
    );
    let report = smoke(&ctx).await;
    let p = &report.probes[0];
    assert_eq!(p.status, ProbeStatus::Failed);
    assert_eq!(
        p.observed.as_deref(),
        Some(format!("no A records for nope.staging.test (via {resolver})").as_str())
    );
}

/// A resolver that receives queries and never answers (UDP and TCP): the probe fails within
/// its bound, naming the resolver and the query.
#[tokio::test]
async fn dns_probe_against_a_silent_resolver_fails_naming_it_and_the_query() {
    let peer = staging_core::testkit::SilentPeer::start();
    // The same port on UDP, bound and never read.
    let _udp = std::net::UdpSocket::bind(peer.addr()).unwrap();
    let (ctx, _dir) = context(
        &format!(
            "[[probes]]\nname = \"silent\"\ntimeout = \"2s\"\ndns = {{ name = \"app.example.test\", record = \"A\", resolver = \"{}\" }}\n",
            peer.addr()
        ),
        &[],
    );
    let report = smoke(&ctx).await;
    let p = &report.probes[0];
    assert_eq!(p.status, ProbeStatus::Failed);
    let observed = p.observed.as_deref().unwrap();
    assert!(
        observed.contains(&format!("no answer from {}", peer.addr()))
            && observed.contains("A query for app.example.test"),
        "{p:#?}"
    );
}
