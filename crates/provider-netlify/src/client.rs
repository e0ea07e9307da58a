//! Netlify's API on the shared platform client ([`staging_rest::Client`]): base URL and
//! token, Netlify's documented limits as client-side windows, and the few paths Netlify
//! serves off its base. Bounds, body caps, statuses, `Retry-After` and retries are the
//! shared client's.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use staging_rest::{Auth, Call, Settings, Window};
use url::Url;

use crate::error::API;
use crate::limit::RateLimits;

/// The API's base as Netlify's own description declares it (`host` + `basePath`).
pub const DEFAULT_API_URL: &str = "https://api.netlify.com/api/v1";

/// What messages show of a build hook's URL: its id is its secret.
const HOOK_PATH: &str = "/build_hooks/(hook)";

pub(crate) struct Client {
    rest: staging_rest::Client,
    deploys: Window,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.rest.base().as_str())
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// One request to Netlify, built like reqwest's: a method, a URL, its query and a JSON body.
#[derive(Debug)]
pub(crate) struct Request {
    method: Method,
    url: Url,
    body: Option<Result<Value, String>>,
    anonymous: bool,
}

impl Request {
    /// With these query pairs added.
    pub(crate) fn query<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        self.url
            .query_pairs_mut()
            .extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
        self
    }

    /// With this JSON body.
    pub(crate) fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.body = Some(serde_json::to_value(body).map_err(|e| e.to_string()));
        self
    }
}

impl Client {
    pub(crate) fn new(
        base: Url,
        token: SecretString,
        limits: RateLimits,
        timeout: Duration,
    ) -> staging_core::Result<Self> {
        let settings = Settings {
            timeout,
            ..Settings::default()
        };
        let rest = staging_rest::Client::with_settings(API, base, token, Auth::Bearer, settings)?
            .with_window(Arc::new(Window::new(limits.requests, limits.window)));
        Ok(Client {
            rest,
            deploys: Window::new(limits.deploys, limits.window),
        })
    }

    /// `base` + path segments, each percent-encoded (site names, env keys, branch names).
    pub(crate) fn endpoint(&self, segments: &[&str]) -> Url {
        self.rest.url(segments)
    }

    /// The site env read (`getSiteEnvVars`). The description writes its path with the base
    /// path a second time (`/api/v1/sites/{site_id}/env` under base `/api/v1`); Netlify serves
    /// it once, at `/api/v1/sites/{id}/env`. Stripping a trailing `/api/v1` from the base and
    /// adding the path as written gives the real URL against Netlify and the path the
    /// description declares against Prism, which serves at `/` ignoring the base path.
    pub(crate) fn site_env_endpoint(&self, site_id: &str) -> Url {
        let mut url = self.rest.base().clone();
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
        let mut url = self.rest.base().clone();
        url.set_path("");
        url.path_segments_mut()
            .expect("an http(s) base URL has a path")
            .pop_if_empty()
            .extend(["build_hooks", hook_id]);
        url
    }

    pub(crate) fn request(&self, method: Method, url: Url) -> Request {
        Request {
            method,
            url,
            body: None,
            anonymous: false,
        }
    }

    /// A request that is not part of the API (a build hook): no token is sent, and its
    /// path (the hook's secret id) is never shown.
    pub(crate) fn anonymous(&self, method: Method, url: Url) -> Request {
        Request {
            anonymous: true,
            ..self.request(method, url)
        }
    }

    /// Wait for a slot of the deploy limit (3 per minute on Netlify).
    pub(crate) async fn deploy_slot(&self) {
        self.deploys.acquire().await;
    }

    /// Sends `req` through the shared client, `operation` naming it in messages.
    async fn send(
        &self,
        operation: &'static str,
        req: Request,
    ) -> staging_core::Result<staging_rest::Answer> {
        let body = match req.body {
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                return Err(staging_core::Error::failed(format!(
                    "netlify {operation}: the request body cannot be written as JSON: {e}"
                )));
            }
            None => None,
        };
        let mut call = Call::new(req.method, req.url).what(operation);
        if let Some(b) = &body {
            call = call.body(b);
        }
        if req.anonymous {
            call = call.anonymous(HOOK_PATH);
        }
        self.rest.exchange(call).await
    }

    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        req: Request,
    ) -> staging_core::Result<T> {
        let (method, url) = (req.method.clone(), req.url.clone());
        let answer = self.send(operation, req).await?;
        self.rest.decode(method.as_str(), &url, &answer.body)
    }

    pub(crate) async fn empty(
        &self,
        operation: &'static str,
        req: Request,
    ) -> staging_core::Result<()> {
        self.send(operation, req).await.map(drop)
    }
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
