//! The HTTP client: base URL, bearer token, client-side rate limits, and the one path from a
//! response to a value or a [`NetlifyError`].

use std::fmt;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{NetlifyError, classify, retry_after};
use crate::limit::{RateLimits, Window};

/// The API's base as Netlify's own description declares it (`host` + `basePath`).
pub const DEFAULT_API_URL: &str = "https://api.netlify.com/api/v1";

/// How long one request may wait out Netlify's rate limits in all before the 429 is the
/// answer.
pub(crate) const RATE_LIMIT_DEADLINE: Duration = Duration::from_secs(60);

pub(crate) struct Client {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
    requests: Window,
    deploys: Window,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &"[REDACTED]")
            .finish()
    }
}

impl Client {
    pub(crate) fn new(
        base: Url,
        token: SecretString,
        limits: RateLimits,
        timeout: Duration,
    ) -> staging_core::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!(
                "staging-provider-netlify/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| {
                staging_core::Error::config(format!("cannot build the Netlify HTTP client: {e}"))
            })?;
        Ok(Client {
            http,
            base,
            token,
            requests: Window::new(limits.requests, limits.window),
            deploys: Window::new(limits.deploys, limits.window),
        })
    }

    /// `base` + path segments, each percent-encoded (site names, env keys, branch names).
    pub(crate) fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http(s) base URL has a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// The site env read (`getSiteEnvVars`). The description writes its path with the base
    /// path a second time (`/api/v1/sites/{site_id}/env` under base `/api/v1`); Netlify serves
    /// it once, at `/api/v1/sites/{id}/env`. Stripping a trailing `/api/v1` from the base and
    /// adding the path as written gives the real URL against Netlify and the path the
    /// description declares against Prism, which serves at `/` ignoring the base path.
    pub(crate) fn site_env_endpoint(&self, site_id: &str) -> Url {
        let mut url = self.base.clone();
        let trimmed = url
            .path()
            .trim_end_matches('/')
            .trim_end_matches("/api/v1")
            .to_owned();
        url.set_path(&trimmed);
        url.path_segments_mut()
            .expect("an http(s) base URL has a path")
            .pop_if_empty()
            .extend(["api", "v1", "sites", site_id, "env"]);
        url
    }

    /// Where a build hook given by id lives: `/build_hooks/{id}` at the API's host.
    pub(crate) fn build_hook_endpoint(&self, hook_id: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path("");
        url.path_segments_mut()
            .expect("an http(s) base URL has a path")
            .pop_if_empty()
            .extend(["build_hooks", hook_id]);
        url
    }

    pub(crate) fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(self.token.expose_secret())
    }

    /// A request that is not part of the API (a build hook): no token is sent.
    pub(crate) fn anonymous(&self, method: Method, url: Url) -> RequestBuilder {
        self.http.request(method, url)
    }

    /// Wait for a slot of the deploy limit (3 per minute on Netlify).
    pub(crate) async fn deploy_slot(&self) {
        self.deploys.acquire().await;
    }

    /// Sends `req`; a 429 (refused, so not done: safe for a write too) is sent again after
    /// the wait it names, within [`RATE_LIMIT_DEADLINE`]. Any other failure is returned:
    /// whole-call retries of reads are core's `RetryProvider`, writes are never repeated.
    pub(crate) async fn send(
        &self,
        operation: &'static str,
        req: RequestBuilder,
    ) -> staging_core::Result<Response> {
        let started = tokio::time::Instant::now();
        let mut fallback = Duration::from_secs(1);
        loop {
            let Some(again) = req.try_clone() else {
                return self.send_once(operation, req).await;
            };
            match self.send_once(operation, again).await {
                Err(staging_core::Error::RateLimited { retry_after, .. })
                    if started.elapsed() + retry_after.unwrap_or(fallback)
                        <= RATE_LIMIT_DEADLINE =>
                {
                    let wait = retry_after.unwrap_or(fallback);
                    fallback = (fallback * 2).min(Duration::from_secs(10));
                    tracing::info!(
                        operation,
                        ?wait,
                        "netlify rate limit: sending again after the wait"
                    );
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn send_once(
        &self,
        operation: &'static str,
        req: RequestBuilder,
    ) -> staging_core::Result<Response> {
        self.requests.acquire().await;
        tracing::debug!(operation, "netlify request");
        let resp = req
            .send()
            .await
            .map_err(|e| classify(NetlifyError::transport(operation, e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = retry_after(resp.headers());
        let body = read_capped(operation, resp)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| staging_core::Redactor::global().shorten(&body, 300));
        Err(classify(NetlifyError::Status {
            operation,
            status,
            message,
            retry_after,
        }))
    }

    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        req: RequestBuilder,
    ) -> staging_core::Result<T> {
        let resp = self.send(operation, req).await?;
        let bytes = read_capped(operation, resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            classify(NetlifyError::Decode {
                operation,
                message: e.to_string(),
            })
        })
    }

    pub(crate) async fn empty(
        &self,
        operation: &'static str,
        req: RequestBuilder,
    ) -> staging_core::Result<()> {
        self.send(operation, req).await.map(drop)
    }
}

/// The body of `resp`, read as it streams in, refused past
/// [`staging_core::limits::MAX_PROVIDER_BODY`].
async fn read_capped(operation: &'static str, mut resp: Response) -> staging_core::Result<Vec<u8>> {
    let cap = staging_core::limits::MAX_PROVIDER_BODY;
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| classify(NetlifyError::transport(operation, e)))?
    {
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(classify(NetlifyError::Decode {
                operation,
                message: format!(
                    "the answer is larger than {}",
                    staging_core::limits::format_size(cap)
                ),
            }));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Client {
        Client::new(
            Url::parse(base).unwrap(),
            "t".to_owned().into(),
            RateLimits::default(),
            Duration::from_secs(5),
        )
        .unwrap()
    }

    #[test]
    fn the_site_env_read_has_the_base_path_once_against_netlify_and_as_written_against_prism() {
        assert_eq!(
            client(DEFAULT_API_URL).site_env_endpoint("s1").as_str(),
            "https://api.netlify.com/api/v1/sites/s1/env"
        );
        assert_eq!(
            client("http://127.0.0.1:4010")
                .site_env_endpoint("s1")
                .as_str(),
            "http://127.0.0.1:4010/api/v1/sites/s1/env"
        );
        assert_eq!(
            client(DEFAULT_API_URL).endpoint(&["sites", "a b"]).as_str(),
            "https://api.netlify.com/api/v1/sites/a%20b"
        );
        assert_eq!(
            client("http://127.0.0.1:4010/")
                .endpoint(&["sites"])
                .as_str(),
            "http://127.0.0.1:4010/sites"
        );
        assert_eq!(
            client(DEFAULT_API_URL).build_hook_endpoint("h1").as_str(),
            "https://api.netlify.com/build_hooks/h1"
        );
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = Client::new(
            Url::parse(DEFAULT_API_URL).unwrap(),
            "tok-canary-91".to_owned().into(),
            RateLimits::default(),
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("tok-canary-91"));
    }
}
