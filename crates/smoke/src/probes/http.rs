//! The http probe: one request, or a chain of requests whose captures feed the next.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::cookie::Jar;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, StatusCode};
use secrecy::SecretString;
use serde_json_path::JsonPath;
use staging_core::pipeline::RunContext;
use staging_core::spec::HttpCheck;
use staging_core::{Error, Probe, ProbeOutcome, Redactor, Result};

use super::{error_chain, fmt_duration};
use crate::template::{JsonTemplate, Values};
use staging_core::spec::Template;

/// How much of a response body a failure keeps as evidence.
const BODY_EXCERPT: usize = 300;

/// TLS configurations and clients shared by the http probes of one build, keyed by their
/// settings: a thousand probes of one host share one connection pool.
/// A CA file (or none) and whether verification is off.
type TlsKey = (Option<PathBuf>, bool);

/// A [`TlsKey`] and whether redirects are followed.
type ClientKey = (Option<PathBuf>, bool, bool);

#[derive(Debug, Default)]
pub(crate) struct HttpClients {
    tls: Mutex<HashMap<TlsKey, rustls::ClientConfig>>,
    clients: Mutex<HashMap<ClientKey, Client>>,
}

impl HttpClients {
    fn tls(&self, ca: Option<&PathBuf>, insecure: bool) -> Result<rustls::ClientConfig> {
        let mut map = self.tls.lock().unwrap_or_else(|e| e.into_inner());
        let key = (ca.cloned(), insecure);
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let config = crate::tls_config::client_config(ca.map(|p| p.as_path()), true, insecure)?;
        map.insert(key, config.clone());
        Ok(config)
    }

    fn shared(&self, ca: Option<&PathBuf>, insecure: bool, follow: bool) -> Result<Client> {
        let tls = self.tls(ca, insecure)?;
        let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let key = (ca.cloned(), insecure, follow);
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let client = build_client(&tls, follow, None)?;
        map.insert(key, client.clone());
        Ok(client)
    }
}

fn build_client(tls: &rustls::ClientConfig, follow: bool, jar: Option<Arc<Jar>>) -> Result<Client> {
    let policy = if follow {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    let mut builder = Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .redirect(policy)
        .user_agent(concat!("staging-smoke/", env!("CARGO_PKG_VERSION")));
    if let Some(jar) = jar {
        builder = builder.cookie_provider(jar);
    }
    builder
        .build()
        .map_err(|e| Error::config(format!("cannot build HTTP client: {}", error_chain(&e))))
}

/// An HTTP probe: one request with assertions, or a chain of them run in order, where the
/// captures of one step (a token, a cookie, a header) fill `${capture.NAME}` in the next.
/// A chain keeps cookies between its steps.
#[derive(Debug)]
pub struct HttpProbe {
    name: String,
    steps: Vec<HttpStep>,
    values: Values,
    redactor: Redactor,
}

#[derive(Debug)]
struct HttpStep {
    method: Method,
    url: Template,
    headers: Vec<(HeaderName, Template)>,
    body: Body,
    follow_redirects: bool,
    insecure: bool,
    tls: rustls::ClientConfig,
    /// The shared client, for a probe of one step (no cookie jar needed).
    client: Option<Client>,
    /// The most bytes of body read.
    max_body: u64,
    /// Bound on the whole request (connect, TLS, headers, body).
    bound: Duration,
    expect: Expect,
    captures: Vec<(String, Capture)>,
}

#[derive(Debug)]
enum Body {
    None,
    Json(JsonTemplate),
    Form(Vec<(String, Template)>),
}

#[derive(Debug)]
struct Expect {
    status: Option<u16>,
    headers: Vec<(HeaderName, Template)>,
    body_regex: Option<Template>,
    json: Vec<(String, JsonPath, JsonTemplate)>,
    max_latency: Option<Duration>,
}

#[derive(Debug)]
enum Capture {
    Json(String, JsonPath),
    Header(HeaderName),
    Cookie(String),
}

impl HttpProbe {
    /// Bound each request of the probe (connect, TLS, headers and body) by `bound`
    /// (default 30 s): a silent server fails naming its host and the phase.
    pub fn with_bound(mut self, bound: Duration) -> Self {
        for step in &mut self.steps {
            step.bound = bound;
        }
        self
    }

    /// A probe named `name` from one or more spec steps, its templates checked against `ctx`.
    pub fn from_spec(name: &str, steps: &[HttpCheck], ctx: &RunContext) -> Result<Self> {
        Self::build(name, steps, ctx, &HttpClients::default())
    }

    pub(crate) fn build(
        name: &str,
        checks: &[HttpCheck],
        ctx: &RunContext,
        clients: &HttpClients,
    ) -> Result<Self> {
        if checks.is_empty() {
            return Err(Error::config(format!("probe `{name}`: `steps` is empty")));
        }
        let chained = checks.len() > 1;
        let cfg = |m: String| Error::config(format!("probe `{name}`: {m}"));
        let mut captured = BTreeSet::new();
        let mut values = Values::default();
        let mut steps = vec![];
        for (i, c) in checks.iter().enumerate() {
            let at = if chained {
                format!("step {}: ", i + 1)
            } else {
                String::new()
            };
            // Templates of this step may use the captures of earlier steps only.
            let json_body = c
                .json
                .as_ref()
                .map(|v| JsonTemplate::from_toml(v).map_err(|e| cfg(format!("{at}json body: {e}"))))
                .transpose()?;
            let mut json_expect = vec![];
            for (path, want) in &c.expect.json {
                let parsed = JsonPath::parse(path)
                    .map_err(|e| cfg(format!("{at}JSONPath `{path}`: {e}")))?;
                let want =
                    JsonTemplate::from_toml(want).map_err(|e| cfg(format!("{at}`{path}`: {e}")))?;
                json_expect.push((path.clone(), parsed, want));
            }
            let mut templates: Vec<&Template> = vec![&c.url];
            templates.extend(c.headers.values());
            templates.extend(c.expect.headers.values());
            templates.extend(c.expect.body_regex.iter());
            templates.extend(c.form.iter().flat_map(|f| f.values()));
            if let Some(j) = &json_body {
                j.templates(&mut templates);
            }
            for (_, _, want) in &json_expect {
                want.templates(&mut templates);
            }
            let step_values = Values::collect(ctx, name, templates, &captured)?;
            values.extend(step_values);

            let method = Method::from_bytes(c.method.to_ascii_uppercase().as_bytes())
                .map_err(|_| cfg(format!("{at}`{}` is not an HTTP method", c.method)))?;
            let header_names = |map: &std::collections::BTreeMap<String, Template>| {
                map.iter()
                    .map(|(k, v)| {
                        HeaderName::from_bytes(k.as_bytes())
                            .map(|h| (h, v.clone()))
                            .map_err(|_| cfg(format!("{at}`{k}` is not a header name")))
                    })
                    .collect::<Result<Vec<_>>>()
            };
            let headers = header_names(&c.headers)?;
            let expect_headers = header_names(&c.expect.headers)?;
            if let Some(re) = c.expect.body_regex.as_ref().and_then(|t| t.as_literal()) {
                regex::Regex::new(&re).map_err(|e| cfg(format!("{at}body_regex: {e}")))?;
            }
            let body = match (json_body, &c.form) {
                (Some(_), Some(_)) => {
                    return Err(cfg(format!("{at}give `json` or `form`, not both")));
                }
                (Some(j), None) => Body::Json(j),
                (None, Some(f)) => {
                    Body::Form(f.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                }
                (None, None) => Body::None,
            };
            let mut captures = vec![];
            for (cap_name, source) in &c.capture {
                let capture = if let Some(h) = source.strip_prefix("header:") {
                    Capture::Header(HeaderName::from_bytes(h.trim().as_bytes()).map_err(|_| {
                        cfg(format!(
                            "{at}capture `{cap_name}`: `{h}` is not a header name"
                        ))
                    })?)
                } else if let Some(ck) = source.strip_prefix("cookie:") {
                    Capture::Cookie(ck.trim().to_owned())
                } else if source.starts_with('$') {
                    Capture::Json(
                        source.clone(),
                        JsonPath::parse(source)
                            .map_err(|e| cfg(format!("{at}capture `{cap_name}`: {e}")))?,
                    )
                } else {
                    return Err(cfg(format!(
                        "{at}capture `{cap_name}` = `{source}`: write a JSONPath (`$.token`), `header:NAME` or `cookie:NAME`"
                    )));
                };
                captures.push((cap_name.clone(), capture));
                captured.insert(cap_name.clone());
            }
            let ca = c.ca_file.as_deref().map(|p| ctx.spec.resolve_path(p));
            let tls = clients.tls(ca.as_ref(), c.insecure)?;
            let client = if chained {
                None
            } else {
                Some(clients.shared(ca.as_ref(), c.insecure, c.follow_redirects)?)
            };
            steps.push(HttpStep {
                method,
                url: c.url.clone(),
                headers,
                body,
                follow_redirects: c.follow_redirects,
                insecure: c.insecure,
                tls,
                client,
                bound: staging_core::limits::DEFAULT_REQUEST_TIMEOUT,
                // Validation refuses a setting above the ceiling; a spec built in code is
                // held to it here.
                max_body: c
                    .max_body
                    .unwrap_or(staging_core::limits::DEFAULT_MAX_BODY)
                    .min(staging_core::limits::MAX_PROBE_BODY_CEILING),
                expect: Expect {
                    status: c.expect.status,
                    headers: expect_headers,
                    body_regex: c.expect.body_regex.clone(),
                    json: json_expect,
                    max_latency: c.expect.max_latency,
                },
                captures,
            });
        }
        Ok(HttpProbe {
            name: name.to_owned(),
            steps,
            values,
            redactor: ctx.redactor.clone(),
        })
    }
}

/// What one step saw, for evidence.
struct Seen {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes_like::Body,
    latency: Duration,
}

mod bytes_like {
    /// A response body, and its JSON parse when asked for.
    pub(super) struct Body {
        pub(super) bytes: Vec<u8>,
        pub(super) json: Option<std::result::Result<serde_json::Value, String>>,
    }

    impl Body {
        pub(super) fn text(&self) -> std::borrow::Cow<'_, str> {
            String::from_utf8_lossy(&self.bytes)
        }

        pub(super) fn json(&mut self) -> std::result::Result<&serde_json::Value, String> {
            if self.json.is_none() {
                self.json = Some(serde_json::from_slice(&self.bytes).map_err(|e| e.to_string()));
            }
            match self.json.as_ref().expect("just parsed") {
                Ok(v) => Ok(v),
                Err(e) => Err(e.clone()),
            }
        }
    }
}

impl HttpStep {
    fn label(&self, i: usize, total: usize, url: &str) -> String {
        if total > 1 {
            format!("step {} ({} {url}): ", i + 1, self.method)
        } else {
            String::new()
        }
    }

    async fn send(
        &self,
        values: &Values,
        jar: Option<&Arc<Jar>>,
    ) -> Result<std::result::Result<Seen, String>> {
        let client = match (&self.client, jar) {
            (Some(c), None) => c.clone(),
            _ => build_client(&self.tls, self.follow_redirects, jar.cloned())?,
        };
        let url = values.render_url(&self.url)?;
        let host = reqwest::Url::parse(&url)
            .ok()
            .map(|u| {
                format!(
                    "{}:{}",
                    u.host_str().unwrap_or_default(),
                    u.port_or_known_default().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        let silent = |phase: &str| {
            format!(
                "no answer from {host} {phase} within {}",
                super::fmt_duration(self.bound)
            )
        };
        let mut request = client
            .request(self.method.clone(), &url)
            .timeout(self.bound);
        for (name, template) in &self.headers {
            let mut value = HeaderValue::from_str(&values.render(template)?).map_err(|_| {
                Error::config(format!(
                    "header `{name}` has a value that is not valid in HTTP"
                ))
            })?;
            value.set_sensitive(true);
            request = request.header(name.clone(), value);
        }
        request = match &self.body {
            Body::None => request,
            Body::Json(j) => request.json(&j.render(values)?),
            Body::Form(f) => {
                let rendered = f
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), values.render(v)?)))
                    .collect::<Result<Vec<_>>>()?;
                request.form(&rendered)
            }
        };
        let started = Instant::now();
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() && e.is_connect() => {
                return Ok(Err(silent("while connecting")));
            }
            Err(e) if e.is_timeout() => {
                return Ok(Err(silent("to the request (no response headers)")));
            }
            Err(e) => return Ok(Err(error_chain(&e))),
        };
        let status = response.status();
        let headers = response.headers().clone();
        // Streamed against the cap: an endless or huge body never grows memory past it.
        let mut response = response;
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(None) => break,
                Ok(Some(chunk)) => {
                    if bytes.len() as u64 + chunk.len() as u64 > self.max_body {
                        return Ok(Err(format!(
                            "the response body is larger than {} (`max_body` of this probe)",
                            staging_core::limits::format_size(self.max_body)
                        )));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Err(e) if e.is_timeout() => {
                    return Ok(Err(silent("finishing the response body")));
                }
                Err(e) => {
                    return Ok(Err(format!("reading the body failed: {}", error_chain(&e))));
                }
            }
        }
        Ok(Ok(Seen {
            status,
            headers,
            body: bytes_like::Body { bytes, json: None },
            latency: started.elapsed(),
        }))
    }

    /// Check the response; on failure, (expected, observed).
    fn check(
        &self,
        values: &Values,
        seen: &mut Seen,
        redactor: &Redactor,
    ) -> Result<std::result::Result<String, (String, String)>> {
        let mut held = vec![];
        let status_ok = match self.expect.status {
            Some(s) => seen.status.as_u16() == s,
            None => seen.status.is_success(),
        };
        let want_status = self
            .expect
            .status
            .map(|s| format!("status {s}"))
            .unwrap_or_else(|| "status 2xx".into());
        if !status_ok {
            return Ok(Err((
                want_status,
                format!("status {}", seen.status.as_u16()),
            )));
        }
        held.push(want_status);
        for (name, template) in &self.expect.headers {
            let want = values.render(template)?;
            let got = seen
                .headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let got: Vec<String> = got.collect();
            if !got.iter().any(|g| g == &want) {
                let observed = if got.is_empty() {
                    format!("no {name} header")
                } else {
                    format!("{name}: {}", got.join(", "))
                };
                return Ok(Err((format!("{name}: {want}"), observed)));
            }
            held.push(format!("{name}: {want}"));
        }
        if let Some(template) = &self.expect.body_regex {
            let pattern = values.render(template)?;
            let re = regex::Regex::new(&pattern)
                .map_err(|e| Error::config(format!("body_regex: {e}")))?;
            if !re.is_match(&seen.body.text()) {
                return Ok(Err((
                    format!("body matching /{pattern}/"),
                    format!("body \"{}\"", redactor.shorten(&seen.body.text(), 120)),
                )));
            }
            held.push(format!("body matching /{pattern}/"));
        }
        for (path, parsed, want) in &self.expect.json {
            let want = want.render(values)?;
            let expected = format!("{path} == {}", show_json(&want));
            let doc = match seen.body.json() {
                Ok(d) => d,
                Err(e) => {
                    return Ok(Err((
                        expected,
                        format!(
                            "body is not JSON ({e}): \"{}\"",
                            redactor.shorten(&seen.body.text(), 120)
                        ),
                    )));
                }
            };
            let nodes = parsed.query(doc).all();
            match nodes.as_slice() {
                [one] if json_equal(one, &want) => held.push(expected),
                [] => return Ok(Err((expected, format!("{path} matches nothing")))),
                [one] => return Ok(Err((expected, format!("{path} == {}", show_json(one))))),
                many => {
                    let shown: Vec<String> = many.iter().map(|v| show_json(v)).collect();
                    return Ok(Err((
                        expected,
                        format!(
                            "{path} matches {} values: [{}]",
                            many.len(),
                            shown.join(", ")
                        ),
                    )));
                }
            }
        }
        if let Some(budget) = self.expect.max_latency {
            let expected = format!("latency ≤ {}", fmt_duration(budget));
            if seen.latency > budget {
                return Ok(Err((
                    expected,
                    format!("latency {}", fmt_duration(seen.latency)),
                )));
            }
            held.push(expected);
        }
        Ok(Ok(held.join(", ")))
    }

    fn capture(
        &self,
        name: &str,
        capture: &Capture,
        seen: &mut Seen,
    ) -> std::result::Result<String, (String, String)> {
        match capture {
            Capture::Json(path, parsed) => {
                let expected = format!("capture `{name}` from {path}");
                let doc = seen
                    .body
                    .json()
                    .map_err(|e| (expected.clone(), format!("body is not JSON ({e})")))?;
                match parsed.query(doc).all().as_slice() {
                    [serde_json::Value::String(s)] => Ok(s.clone()),
                    [serde_json::Value::Null] | [] => {
                        Err((expected, format!("{path} matches nothing")))
                    }
                    [one] => Ok(one.to_string()),
                    many => Err((expected, format!("{path} matches {} values", many.len()))),
                }
            }
            Capture::Header(h) => seen
                .headers
                .get(h)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .ok_or_else(|| {
                    (
                        format!("capture `{name}` from header {h}"),
                        format!("no {h} header"),
                    )
                }),
            Capture::Cookie(cookie) => seen
                .headers
                .get_all(reqwest::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| v.split(';').next()?.split_once('='))
                .find(|(k, _)| k.trim() == cookie)
                .map(|(_, v)| v.trim().to_owned())
                .ok_or_else(|| {
                    (
                        format!("capture `{name}` from cookie {cookie}"),
                        format!("no Set-Cookie for {cookie}"),
                    )
                }),
        }
    }
}

/// A JSON value for a report. Strings are quoted but not escaped: an escaped secret would
/// no longer match the redactor's registered value.
fn show_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

/// JSON equality, where an expected string also matches a number or boolean that prints the
/// same (`"3"` matches `3`): TOML specs often quote what JSON does not.
fn json_equal(got: &serde_json::Value, want: &serde_json::Value) -> bool {
    if got == want {
        return true;
    }
    match (got, want) {
        (
            serde_json::Value::Number(_) | serde_json::Value::Bool(_),
            serde_json::Value::String(w),
        ) => &got.to_string() == w,
        (serde_json::Value::Number(g), serde_json::Value::Number(w)) => g.as_f64() == w.as_f64(),
        _ => false,
    }
}

#[async_trait]
impl Probe for HttpProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &str {
        "http"
    }

    async fn run(&self) -> Result<ProbeOutcome> {
        let started = Instant::now();
        let total = self.steps.len();
        let jar = (total > 1).then(|| Arc::new(Jar::default()));
        let mut values = self.values.clone();
        let mut passed = vec![];
        let mut last_observed = String::new();
        let mut evidence = vec![];
        for (i, step) in self.steps.iter().enumerate() {
            let shown_url = values
                .render_url(&step.url)
                .unwrap_or_else(|_| step.url.to_source());
            let label = step.label(i, total, &shown_url);
            if step.insecure {
                evidence.push((
                    format!("{label}tls"),
                    "certificate not verified (insecure = true)".to_owned(),
                ));
            }
            let mut seen = match step.send(&values, jar.as_ref()).await? {
                Ok(s) => s,
                Err(e) => {
                    let expected = format!("{label}a response from {} {shown_url}", step.method);
                    return Ok(ProbeOutcome::fail(
                        expected,
                        format!("{label}{e}"),
                        started.elapsed(),
                    ));
                }
            };
            let observed = format!(
                "{label}status {} in {}",
                seen.status.as_u16(),
                fmt_duration(seen.latency)
            );
            match step.check(&values, &mut seen, &self.redactor)? {
                Ok(held) => passed.push(format!("{label}{held}")),
                Err((expected, got)) => {
                    let mut out = ProbeOutcome::fail(
                        format!("{label}{expected}"),
                        format!("{label}{got}"),
                        started.elapsed(),
                    )
                    .with_evidence("request", format!("{} {shown_url}", step.method))
                    .with_evidence("status", seen.status.as_u16().to_string())
                    .with_evidence("latency", fmt_duration(seen.latency))
                    .with_evidence(
                        "body",
                        self.redactor.shorten(&seen.body.text(), BODY_EXCERPT),
                    );
                    out.evidence.extend(evidence);
                    return Ok(out);
                }
            }
            for (name, capture) in &step.captures {
                match step.capture(name, capture, &mut seen) {
                    Ok(value) => {
                        let value = SecretString::from(value);
                        self.redactor
                            .register_if_secret(staging_core::secretness::Origin::Captured, &value);
                        values = values.with(format!("capture.{name}"), value);
                    }
                    Err((expected, got)) => {
                        let mut out = ProbeOutcome::fail(
                            format!("{label}{expected}"),
                            format!("{label}{got}"),
                            started.elapsed(),
                        )
                        .with_evidence("request", format!("{} {shown_url}", step.method))
                        .with_evidence("status", seen.status.as_u16().to_string())
                        .with_evidence(
                            "body",
                            self.redactor.shorten(&seen.body.text(), BODY_EXCERPT),
                        );
                        out.evidence.extend(evidence);
                        return Ok(out);
                    }
                }
            }
            last_observed = observed;
        }
        let observed = if total > 1 {
            // What each step expected is already in `expected`; the count says they all held.
            format!(
                "all {total} steps passed in {} ms",
                started.elapsed().as_millis()
            )
        } else {
            last_observed
        };
        let mut out = ProbeOutcome::pass(passed.join("; "), observed, started.elapsed());
        out.evidence = evidence;
        Ok(out)
    }
}
