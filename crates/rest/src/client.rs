//! The client: bounded requests, capped bodies, the shared [`RateBudget`], and retries that
//! know which requests are safe to send again ([`Safety`]).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use staging_core::{Backoff, Error, Result, RetryPolicy};
use tokio::time::Instant;
use url::Url;

use crate::budget::RateBudget;
use crate::ratelimit::RateLimitHeaders;
use crate::window::Window;
use crate::{Api, RestError, error_message};

/// The hard ceiling on any configured body cap: a setting above it is refused.
pub const MAX_BODY_CEILING: u64 = 64 * 1024 * 1024;

/// The variable that lowers the bounds on a platform's API for the whole process (a short
/// bound in tests and CI: `STAGING_API_TIMEOUT=5s`): every client's request bound and
/// call deadline ([`RetryPolicy::deadline`]), and so the time a silent API may cost a run,
/// are at most its value. It never raises a bound.
pub const API_TIMEOUT_VAR: &str = "STAGING_API_TIMEOUT";

/// How long every request of a credential pauses after a 429 that says nothing about when
/// to come back.
pub const RATE_LIMIT_FALLBACK: Duration = Duration::from_secs(1);

/// A provider's reading of an answer (status, headers, body) before the common mapping:
/// `Some` when the answer is a failure the status alone does not show.
pub type Inspect<'a> = dyn Fn(StatusCode, &HeaderMap, &[u8]) -> Option<Error> + Send + Sync + 'a;

/// Whether a request may be sent again after a failure that may have reached the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// A read: sent again on 429, 502/503/504, the API's
    /// [`Api::retried_read_statuses`] and a missing answer.
    Read,
    /// A write that does the same however often it is done (PUT of a variable, DELETE):
    /// retried like a read, except for [`Api::retried_read_statuses`].
    Idempotent,
    /// A write that must happen once (deploy, create, promote, rollback, a GraphQL
    /// mutation): sent again only when it was certainly not done — a 429, one of the API's
    /// [`Api::refused_statuses`], or a connection that was never made. Any other failure is
    /// returned, and [`crate::ambiguous`] tells the provider to read back whether it happened.
    Once,
}

impl Safety {
    /// The safety of a request by its method alone: GET/HEAD reads, PUT/DELETE idempotent,
    /// anything else once.
    pub fn of(method: &Method) -> Self {
        match *method {
            Method::GET | Method::HEAD | Method::OPTIONS => Safety::Read,
            Method::PUT | Method::DELETE => Safety::Idempotent,
            _ => Safety::Once,
        }
    }
}

/// How a client's credential is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// The token as the value of this header (Railway's `project-access-token`).
    Header(&'static str),
}

/// The bounds of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Bound on one request, from sending it to the last byte of the answer.
    pub timeout: Duration,
    /// Bound on opening the connection (never above `timeout`).
    pub connect_timeout: Duration,
    /// Cap on one answer's body; at most [`MAX_BODY_CEILING`].
    pub max_body: u64,
    /// Transient-error retries, and the deadline of one call (rate-limit waits included).
    pub retry: RetryPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timeout: staging_core::limits::DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: staging_core::limits::DEFAULT_CONNECT_TIMEOUT,
            max_body: staging_core::limits::MAX_PROVIDER_BODY,
            retry: RetryPolicy::default(),
        }
    }
}

impl Settings {
    /// Refuses a body cap above [`MAX_BODY_CEILING`] (or of zero), naming both.
    pub fn validate(&self, provider: &str) -> Result<()> {
        if self.max_body == 0 || self.max_body > MAX_BODY_CEILING {
            return Err(Error::config(format!(
                "{provider}: max_body of {} is outside 1 byte..{} (the ceiling on any API answer)",
                staging_core::limits::format_size(self.max_body),
                staging_core::limits::format_size(MAX_BODY_CEILING)
            )));
        }
        Ok(())
    }
}

/// One request: an absolute URL under the client's base (query included), an optional JSON
/// body, its [`Safety`], and what it asks for (for a `NotFound`).
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// The method.
    pub method: Method,
    /// The URL, query included.
    pub url: Url,
    /// A JSON body.
    pub body: Option<&'a Value>,
    /// Whether it may be sent again.
    pub safety: Safety,
    /// The thing asked for, in messages (`service web (srv-1)`); the path when `None`.
    pub what: Option<&'a str>,
    /// Whether the client's credential is sent (not to a URL that is its own credential,
    /// such as Netlify's build hooks).
    pub credential: bool,
    /// What messages show instead of the path, when the path itself is a secret.
    pub shown_path: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A call of `method` on `url`, its safety by the method ([`Safety::of`]).
    pub fn new(method: Method, url: Url) -> Self {
        Call {
            safety: Safety::of(&method),
            method,
            url,
            body: None,
            what: None,
            credential: true,
            shown_path: None,
        }
    }

    /// Without the client's credential, and with `shown` in place of the path in every
    /// message: for a URL that is a credential itself.
    pub fn anonymous(mut self, shown: &'a str) -> Self {
        self.credential = false;
        self.shown_path = Some(shown);
        self
    }

    /// With a JSON body.
    pub fn body(mut self, body: &'a Value) -> Self {
        self.body = Some(body);
        self
    }

    /// With this safety.
    pub fn safety(mut self, safety: Safety) -> Self {
        self.safety = safety;
        self
    }

    /// Naming the thing asked for.
    pub fn what(mut self, what: &'a str) -> Self {
        self.what = Some(what);
        self
    }
}

/// A successful answer: status, headers and the whole (capped) body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status (2xx).
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

/// A client of one platform's API with one credential. Its `Debug` shows the provider and
/// the base URL only.
pub struct Client {
    api: Api,
    http: reqwest::Client,
    base: Url,
    host: String,
    token: SecretString,
    auth: Auth,
    settings: Settings,
    budget: Arc<RateBudget>,
    window: Option<Arc<Window>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("provider", &self.api.provider)
            .field("base", &self.base.as_str())
            .field("token", &"[REDACTED]")
            .finish()
    }
}

impl Client {
    /// A bearer-token client of `api` at `base`, each request bounded by `timeout`
    /// (connecting by 10 s at most), retried by `retry`, bodies capped at
    /// [`staging_core::limits::MAX_PROVIDER_BODY`].
    pub fn new(
        api: Api,
        base: String,
        token: SecretString,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self> {
        let base = Url::parse(&base).map_err(|e| {
            Error::config(format!(
                "{}: the API address `{base}` is not a URL: {e}",
                api.provider
            ))
        })?;
        Client::with_settings(
            api,
            base,
            token,
            Auth::Bearer,
            Settings {
                timeout,
                connect_timeout: staging_core::limits::DEFAULT_CONNECT_TIMEOUT,
                max_body: staging_core::limits::MAX_PROVIDER_BODY,
                retry,
            },
        )
    }

    /// A client with every setting given; refuses a `max_body` above the ceiling. Its
    /// request bound and call deadline are lowered to [`API_TIMEOUT_VAR`] when that is set
    /// (a value that is not a duration, or is zero, is refused).
    pub fn with_settings(
        api: Api,
        base: Url,
        token: SecretString,
        auth: Auth,
        mut settings: Settings,
    ) -> Result<Self> {
        settings.validate(api.provider)?;
        if let Some(cap) = api_timeout_cap()? {
            settings.timeout = settings.timeout.min(cap);
            settings.retry.deadline = settings.retry.deadline.min(cap);
        }
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(Error::config(format!(
                "{}: the API address `{base}` is not an http(s) URL with a host",
                api.provider
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout.min(settings.timeout))
            .timeout(settings.timeout)
            .user_agent(concat!("staging/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::config(format!(
                    "{}: cannot build the HTTP client: {e}",
                    api.provider
                ))
            })?;
        let host = format!(
            "{}:{}",
            base.host_str().unwrap_or_default(),
            base.port_or_known_default().unwrap_or_default()
        );
        let budget = RateBudget::shared(api.provider, base.as_str(), &token);
        Ok(Client {
            api,
            http,
            base,
            host,
            token,
            auth,
            settings,
            budget,
            window: None,
        })
    }

    /// With a client-side limit the platform documents (Netlify: 500 requests a minute):
    /// every attempt waits for a place in `window` first, within the call's deadline.
    pub fn with_window(mut self, window: Arc<Window>) -> Self {
        self.window = Some(window);
        self
    }

    /// The API this client speaks to.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The credential's shared rate budget.
    pub fn budget(&self) -> &Arc<RateBudget> {
        &self.budget
    }

    /// The bounds of this client.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The URL of `segments` under the base, each segment percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    /// The URL of `path` (already a path, `/projects/p`) under the base, with `query`.
    fn path_url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url> {
        let joined = format!("{}{path}", self.base.as_str().trim_end_matches('/'));
        let mut url = Url::parse(&joined).map_err(|e| {
            Error::failed(format!(
                "{}: bad request path `{path}`: {e}",
                self.api.provider
            ))
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// A JSON read.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let url = self.path_url(path, query)?;
        let answer = self.exchange(Call::new(Method::GET, url.clone())).await?;
        self.decode("GET", &url, &answer.body)
    }

    /// A text read (logs).
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let url = self.path_url(path, &[])?;
        let answer = self.exchange(Call::new(Method::GET, url)).await?;
        Ok(String::from_utf8_lossy(&answer.body).into_owned())
    }

    /// A JSON write that must happen once: sent again only when it was refused without
    /// being done ([`Safety::Once`]).
    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        let url = self.path_url(path, &[])?;
        let answer = self
            .exchange(Call::new(Method::POST, url.clone()).body(&body))
            .await?;
        self.decode("POST", &url, &answer.body)
    }

    /// A delete of `path`: idempotent ([`Safety::Idempotent`]), so sent again within the
    /// call's bounds when it failed in a way that may be transient. The answer as it came (a
    /// 204 has no body); a 404 is [`Error::NotFound`], for the caller to take as "gone".
    pub async fn delete(&self, path: &str) -> Result<Answer> {
        let url = self.path_url(path, &[])?;
        self.exchange(Call::new(Method::DELETE, url)).await
    }

    /// Decodes a JSON body; a 2xx with a body that is not the JSON expected is a provider
    /// error naming the request.
    pub fn decode<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        url: &Url,
        body: &[u8],
    ) -> Result<T> {
        serde_json::from_slice(body).map_err(|source| Error::Provider {
            provider: self.api.provider.to_owned(),
            source: Box::new(RestError::Decode {
                method: method.to_owned(),
                path: url.path().to_owned(),
                source,
            }),
            retryable: true,
        })
    }

    /// Sends `call` until it succeeds or may not be sent again, within the call's deadline
    /// ([`RetryPolicy::deadline`]).
    ///
    /// Every attempt first waits for the credential's [`RateBudget`]; a 429 pauses the
    /// budget and is sent again whatever its [`Safety`] (the platform did not do it). Those
    /// waits do not count against [`RetryPolicy::max_attempts`], which counts transient
    /// failures only; all of it stays within the deadline, past which the last error is
    /// returned.
    pub async fn exchange(&self, call: Call<'_>) -> Result<Answer> {
        self.exchange_with(call, &|_, _, _| None).await
    }

    /// [`Client::exchange`], with the provider's reading of every answer first: `inspect`
    /// sees status, headers and body of each answer (a success included) and may say it is
    /// a failure (Railway's GraphQL `errors` inside a 200, a rate limit among them); what it
    /// leaves alone goes through [`Api::error_for_status`]. The error it returns is retried
    /// by the same rules: a rate limit pauses the credential and is sent again.
    pub async fn exchange_with(&self, call: Call<'_>, inspect: &Inspect<'_>) -> Result<Answer> {
        let retry = self.settings.retry;
        let deadline = Instant::now() + retry.deadline;
        let mut backoff = Backoff::new(retry.initial, retry.max_delay);
        let mut transient_attempts = 0u32;
        loop {
            let turn = match &self.window {
                Some(w) => match self.budget.wait_turn(deadline).await {
                    Ok(()) => w.acquire_by(deadline).await,
                    Err(left) => Err(left),
                },
                None => self.budget.wait_turn(deadline).await,
            };
            if let Err(left) = turn {
                return Err(Error::RateLimited {
                    provider: self.api.provider.to_owned(),
                    retry_after: Some(left),
                });
            }
            let err = match self.once(&call, inspect).await {
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            if let Error::RateLimited { retry_after, .. } = &err {
                // Refused, so not done: pause every request of the credential, then send it
                // again. Not counted against the transient retries; bounded by the deadline.
                self.budget.pause_for(
                    retry_after.unwrap_or(RATE_LIMIT_FALLBACK),
                    "the platform refused a request (429)",
                );
                tracing::debug!(error = %err, "rate limited; sending again after the window");
                continue;
            }
            transient_attempts += 1;
            // A read (or idempotent write) left unanswered for the whole silence bound is
            // said as such, and not sent again by anyone: a write that must happen once
            // keeps its own error, which tells its provider to read back.
            if call.safety != Safety::Once
                && crate::unanswered(&err)
                && let Err(phase) = self.budget.silence_left(retry.deadline)
            {
                return Err(self.silent(&call, phase));
            }
            let again = match call.safety {
                Safety::Read => self.transient(&err, true),
                Safety::Idempotent => self.transient(&err, false),
                Safety::Once => crate::refused(&err) || not_sent(&err),
            };
            if !again || transient_attempts >= retry.max_attempts {
                return Err(err);
            }
            let delay = backoff.next_delay();
            if Instant::now() + delay > deadline {
                return Err(err);
            }
            tracing::debug!(attempt = transient_attempts, ?delay, error = %err, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// Whether a failure of a read (or an idempotent write) is worth another attempt.
    fn transient(&self, e: &Error, read: bool) -> bool {
        match e {
            Error::Provider { source, .. } => match source.downcast_ref::<RestError>() {
                Some(RestError::Transport { .. }) => true,
                Some(RestError::Status {
                    status, refused, ..
                }) => {
                    *refused
                        || matches!(status, 502..=504)
                        || (read && self.api.retried_read_statuses.contains(status))
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// One attempt: the request, its capped body, and the mapping of a non-success.
    async fn once(&self, call: &Call<'_>, inspect: &Inspect<'_>) -> Result<Answer> {
        let method = call.method.as_str();
        let path = call
            .shown_path
            .map_or_else(|| call.url.path().to_owned(), str::to_owned);
        let mut req = self
            .http
            .request(call.method.clone(), call.url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        req = match (call.credential, self.auth) {
            (false, _) => req,
            (true, Auth::Bearer) => req.bearer_auth(self.token.expose_secret()),
            (true, Auth::Header(name)) => req.header(name, self.token.expose_secret()),
        };
        if let Some(b) = call.body {
            req = req.json(b);
        }
        let host = self.host_of(&call.url);
        // One silence bound per API and run, the bound of one call with its retries: what
        // earlier requests (of any client, any step) waited on a silent API is not waited
        // again. One slow answer and its retry fit in it; a dead host costs it once.
        let left = self
            .budget
            .silence_left(self.settings.retry.deadline)
            .map_err(|phase| self.silent(call, phase))?;
        req = req.timeout(left.min(self.settings.timeout));
        tracing::debug!(provider = self.api.provider, method, %path, "request");
        let started = Instant::now();
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                // No answer: what it waited counts against the silence bound.
                self.budget
                    .record_silence(started.elapsed(), transport_phase(&e));
            }
            self.transport(method, &path, &host, e)
        };
        let mut resp = req.send().await.map_err(transport)?;
        self.budget.record_answer();
        let status = resp.status();
        let headers = resp.headers().clone();
        let limits = RateLimitHeaders::parse(&headers, SystemTime::now());
        self.budget.observe(&limits, call.safety == Safety::Read);
        // Streamed against the cap: a misbehaving endpoint cannot grow memory without end.
        let cap = self.settings.max_body;
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() as u64 + chunk.len() as u64 > cap {
                return Err(Error::Provider {
                    provider: self.api.provider.to_owned(),
                    source: Box::new(RestError::TooLarge {
                        method: method.to_owned(),
                        path,
                        host: host.clone(),
                        cap: staging_core::limits::format_size(cap),
                    }),
                    retryable: false,
                });
            }
            body.extend_from_slice(&chunk);
        }
        if let Some(e) = inspect(status, &headers, &body) {
            return Err(e);
        }
        if status.is_success() {
            return Ok(Answer {
                status,
                headers,
                body,
            });
        }
        Err(self.api.error_for_status(
            status,
            &limits,
            method,
            &path,
            call.what,
            &error_message(&body),
        ))
    }

    /// The host asked, which is the base's except for a URL given whole (a build hook).
    fn host_of(&self, url: &Url) -> String {
        match url.host_str() {
            Some(h) => format!("{h}:{}", url.port_or_known_default().unwrap_or_default()),
            None => self.host.clone(),
        }
    }

    /// The error of a request not sent, or not sent again, because the API has been
    /// silent for the whole bound ([`RateBudget::silence_left`]).
    fn silent(&self, call: &Call<'_>, phase: &'static str) -> Error {
        Error::Provider {
            provider: self.api.provider.to_owned(),
            source: Box::new(RestError::Silent {
                method: call.method.as_str().to_owned(),
                path: call
                    .shown_path
                    .map_or_else(|| call.url.path().to_owned(), str::to_owned),
                host: self.host_of(&call.url),
                bound: humantime::format_duration(self.settings.retry.deadline).to_string(),
                phase,
            }),
            retryable: false,
        }
    }

    fn transport(&self, method: &str, path: &str, host: &str, source: reqwest::Error) -> Error {
        let phase = transport_phase(&source);
        Error::Provider {
            provider: self.api.provider.to_owned(),
            source: Box::new(RestError::Transport {
                method: method.to_owned(),
                path: path.to_owned(),
                host: host.to_owned(),
                phase,
                source: source.without_url(),
            }),
            retryable: true,
        }
    }
}

/// The process-wide lower bound of [`API_TIMEOUT_VAR`], when set.
fn api_timeout_cap() -> Result<Option<Duration>> {
    let Ok(raw) = std::env::var(API_TIMEOUT_VAR) else {
        return Ok(None);
    };
    match humantime::parse_duration(raw.trim()) {
        Ok(d) if !d.is_zero() => Ok(Some(d)),
        _ => Err(Error::config(format!(
            "{API_TIMEOUT_VAR}=`{raw}` is not a duration above zero (such as `30s`)"
        ))),
    }
}

/// What did not happen, by what the transport said.
fn transport_phase(source: &reqwest::Error) -> &'static str {
    match (source.is_connect(), source.is_timeout()) {
        (true, true) => "connecting timed out",
        (true, false) => crate::CANNOT_CONNECT,
        (false, true) => "timed out waiting for the answer",
        (false, false) if source.is_body() || source.is_decode() => "reading the answer failed",
        (false, false) => "the request failed",
    }
}

/// Whether the request never left: the connection was never made.
fn not_sent(e: &Error) -> bool {
    match e {
        Error::Provider { source, .. } => matches!(
            source.downcast_ref::<RestError>(),
            Some(RestError::Transport { phase, .. }) if *phase == crate::CANNOT_CONNECT
                || *phase == "connecting timed out"
        ),
        _ => false,
    }
}
