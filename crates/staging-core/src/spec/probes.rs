//! `[[probes]]`: smoke checks. Each probe has a name, common timing settings, and exactly
//! one kind table (`http`, `tls`, `dns`, `tcp`, `postgres`, `redis`, `command`), or `steps`
//! for a chained HTTP flow.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::Template;

/// One probe.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// Its name in reports.
    pub name: String,
    /// Bound on one attempt.
    #[serde(default = "default_timeout", with = "super::duration")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Keep retrying a failing probe, backing off, until it passes or this much time has
    /// passed ("wait until healthy"). Unset: one attempt.
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<String>")]
    pub retry_for: Option<Duration>,
    /// Only run in these environments (default: all).
    #[serde(default)]
    pub environments: Option<Vec<String>>,
    /// An HTTP request with assertions.
    #[serde(default)]
    pub http: Option<HttpCheck>,
    /// A chain of HTTP requests run in order; captures of one feed the next.
    #[serde(default)]
    pub steps: Option<Vec<HttpCheck>>,
    /// A TLS handshake and certificate check.
    #[serde(default)]
    pub tls: Option<TlsCheck>,
    /// A DNS lookup.
    #[serde(default)]
    pub dns: Option<DnsCheck>,
    /// A TCP connect.
    #[serde(default)]
    pub tcp: Option<TcpCheck>,
    /// A Postgres round trip.
    #[serde(default)]
    pub postgres: Option<PostgresCheck>,
    /// A Redis round trip and policy check.
    #[serde(default)]
    pub redis: Option<RedisCheck>,
    /// A program's exit code and output.
    #[serde(default)]
    pub command: Option<CommandCheck>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl ProbeSpec {
    /// The names of the kind tables that are set; a valid probe has exactly one.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k = vec![];
        if self.http.is_some() {
            k.push("http");
        }
        if self.steps.is_some() {
            k.push("steps");
        }
        if self.tls.is_some() {
            k.push("tls");
        }
        if self.dns.is_some() {
            k.push("dns");
        }
        if self.tcp.is_some() {
            k.push("tcp");
        }
        if self.postgres.is_some() {
            k.push("postgres");
        }
        if self.redis.is_some() {
            k.push("redis");
        }
        if self.command.is_some() {
            k.push("command");
        }
        k
    }
}

/// An HTTP request and what its response must satisfy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// The URL (`${services.web.url}/up`).
    pub url: Template,
    /// The method (default GET).
    #[serde(default = "default_method")]
    pub method: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, Template>,
    /// A JSON body.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<toml::Value>,
    /// A form body.
    #[serde(default)]
    pub form: Option<BTreeMap<String, Template>>,
    /// Follow redirects (default true).
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    /// A PEM file of a CA to trust besides the system roots.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Accept any certificate. Only when asked; reported in the evidence.
    #[serde(default)]
    pub insecure: bool,
    /// What the response must satisfy.
    #[serde(default)]
    pub expect: HttpExpect,
    /// The most bytes of response body the probe reads (default 1 MiB,
    /// `staging_core::limits::DEFAULT_MAX_BODY`). The body is read as it streams in; one
    /// larger fails the probe with "larger than ..." and nothing past the cap is kept.
    #[serde(default)]
    pub max_body: Option<u64>,
    /// Values to capture from the response for later steps, by name: `"$.token"` (JSONPath),
    /// `"header:location"`, `"cookie:session"`.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
}

fn default_method() -> String {
    "GET".to_owned()
}

fn default_true() -> bool {
    true
}

/// Assertions on an HTTP response.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpExpect {
    /// The status (default: any 2xx).
    #[serde(default)]
    pub status: Option<u16>,
    /// Headers that must be present with these values.
    #[serde(default)]
    pub headers: BTreeMap<String, Template>,
    /// A regular expression the body must match.
    #[serde(default)]
    pub body_regex: Option<Template>,
    /// JSONPath expressions and the value each must equal (`"$.status" = "ok"`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub json: BTreeMap<String, toml::Value>,
    /// Latency budget for the whole request.
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<String>")]
    pub max_latency: Option<Duration>,
}

/// A TLS check of a host's certificate.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsCheck {
    /// The host (used for SNI and the SAN check).
    pub host: Template,
    /// The port (default 443).
    #[serde(default = "default_tls_port")]
    pub port: u16,
    /// Connect to this address instead of resolving `host` (tests, split DNS).
    #[serde(default)]
    pub connect_to: Option<Template>,
    /// A PEM file of a CA to trust instead of the webpki roots.
    #[serde(default)]
    pub ca_file: Option<Template>,
    /// The certificate must be valid for at least this many more days.
    #[serde(default = "default_min_days")]
    pub min_days_left: u32,
}

fn default_tls_port() -> u16 {
    443
}

fn default_min_days() -> u32 {
    14
}

/// A DNS lookup.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsCheck {
    /// The name to resolve.
    pub name: Template,
    /// The record type: `A`, `AAAA` or `CNAME` (default `A`).
    #[serde(default = "default_record")]
    pub record: String,
    /// A value one of the answers must equal (an address, or a CNAME target).
    #[serde(default)]
    pub expect: Option<Template>,
    /// Use this resolver (`127.0.0.1:5353`) instead of the system's.
    #[serde(default)]
    pub resolver: Option<Template>,
}

fn default_record() -> String {
    "A".to_owned()
}

/// A TCP connect.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    /// `host:port`.
    pub address: Template,
}

/// A Postgres check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresCheck {
    /// The variable (in `[vars]`) holding the connection URL.
    pub url_var: String,
    /// A query to run.
    #[serde(default)]
    pub query: Option<Template>,
    /// The rows it must return, each a list of column values as text.
    #[serde(default)]
    pub expect_rows: Option<Vec<Vec<String>>>,
    /// Do a write/read round trip inside a transaction that is rolled back.
    #[serde(default = "default_true")]
    pub round_trip: bool,
}

/// A Redis check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisCheck {
    /// The variable (in `[vars]`) holding the connection URL.
    pub url_var: String,
    /// The `maxmemory-policy` the server must have (the runbooks require `noeviction`).
    #[serde(default)]
    pub maxmemory_policy: Option<Template>,
    /// Do a SET/GET/DEL round trip with a unique key.
    #[serde(default = "default_true")]
    pub round_trip: bool,
}

/// A program run as a check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandCheck {
    /// The program and its arguments.
    pub run: Vec<Template>,
    /// The exit code it must return (default 0).
    #[serde(default)]
    pub exit_code: i32,
    /// A regular expression its standard output must match.
    #[serde(default)]
    pub stdout_regex: Option<String>,
}
