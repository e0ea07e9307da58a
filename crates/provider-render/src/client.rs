//! The HTTP side: Render's API over the shared platform client ([`staging_rest::Client`]:
//! bounds, body cap, the credential's shared rate budget, safe retries, one status
//! mapping), plus what only Render has: cursor pagination and client-side pacing of writes.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use staging_core::{Error, Result};
use staging_rest::{Auth, Call, Safety, Settings};
use url::Url;

use crate::error::API;

/// Render pages lists with a cursor; 100 is the largest page its API accepts.
pub(crate) const PAGE_LIMIT: usize = 100;
/// A bound on pages read for one list, so a server that repeats cursors cannot loop us.
const MAX_PAGES: usize = 200;

/// Client-side pacing under Render's documented limits, so that a burst of our own requests
/// does not earn a 429 in the first place (429s are still honoured when they come).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Deploy triggers (deploys and rollbacks) per minute and per service (Render: 10).
    pub deploys_per_minute: usize,
    /// Other writes per minute (Render: 30).
    pub writes_per_minute: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            deploys_per_minute: 10,
            writes_per_minute: 30,
        }
    }
}

/// A sliding window of the instants requests were sent.
#[derive(Debug)]
struct Window {
    sent: VecDeque<Instant>,
}

impl Window {
    /// Records a request when the window has room; otherwise says how long to wait.
    fn try_take(&mut self, limit: usize, per: Duration) -> Option<Duration> {
        let now = Instant::now();
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= per)
        {
            self.sent.pop_front();
        }
        if self.sent.len() < limit.max(1) {
            self.sent.push_back(now);
            None
        } else {
            self.sent
                .front()
                .map(|t| per.saturating_sub(now.duration_since(*t)))
        }
    }
}

#[derive(Debug)]
pub(crate) struct Pacer {
    limits: RateLimits,
    writes: Mutex<Window>,
    deploys: Mutex<HashMap<String, Window>>,
}

/// What kind of request is about to be sent, for pacing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pace<'a> {
    Read,
    Write,
    Deploy(&'a str),
}

impl Pacer {
    pub(crate) fn new(limits: RateLimits) -> Self {
        Pacer {
            limits,
            writes: Mutex::new(Window {
                sent: VecDeque::new(),
            }),
            deploys: Mutex::new(HashMap::new()),
        }
    }

    async fn wait(&self, pace: Pace<'_>) {
        const MINUTE: Duration = Duration::from_secs(60);
        loop {
            let wait = match pace {
                Pace::Read => None,
                Pace::Write => lock(&self.writes).try_take(self.limits.writes_per_minute, MINUTE),
                Pace::Deploy(service) => lock(&self.deploys)
                    .entry(service.to_owned())
                    .or_insert_with(|| Window {
                        sent: VecDeque::new(),
                    })
                    .try_take(self.limits.deploys_per_minute, MINUTE),
            };
            match wait {
                None => return,
                Some(d) => {
                    tracing::info!(?d, "pacing requests under Render's rate limits");
                    tokio::time::sleep(d).await;
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The HTTP side of the provider. Its `Debug` shows the base URL only.
pub(crate) struct Client {
    rest: staging_rest::Client,
    pacer: Pacer,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.rest.base().as_str())
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// One answer: status and raw body, already known to be a success.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
}

impl Client {
    pub(crate) fn new(
        base: Url,
        key: SecretString,
        settings: Settings,
        limits: RateLimits,
    ) -> Result<Self> {
        Ok(Client {
            rest: staging_rest::Client::with_settings(API, base, key, Auth::Bearer, settings)?,
            pacer: Pacer::new(limits),
        })
    }

    /// The shared platform client (its rate budget, for the cadence of waits).
    pub(crate) fn rest(&self) -> &staging_rest::Client {
        &self.rest
    }

    /// The URL of `segments` under the base, each segment percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        self.rest.url(segments)
    }

    /// Sends one request and returns a successful answer, or the kind of error. Reads are
    /// retried inside; a deploy (or any POST) is sent again only when Render refused it.
    pub(crate) async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        pace: Pace<'_>,
        what: &str,
    ) -> Result<Answer> {
        self.pacer.wait(pace).await;
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let safety = match pace {
            Pace::Read => Safety::Read,
            Pace::Write => Safety::of(&method),
            Pace::Deploy(_) => Safety::Once,
        };
        let mut call = Call::new(method, url).safety(safety).what(what);
        if let Some(b) = body {
            call = call.body(b);
        }
        let answer = self.rest.exchange(call).await?;
        Ok(Answer {
            status: answer.status,
            body: answer.body,
        })
    }

    /// GET a JSON document.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        what: &str,
    ) -> Result<T> {
        let answer = self
            .send(Method::GET, segments, query, None, Pace::Read, what)
            .await?;
        decode("GET", &self.url(segments), &answer.body)
    }

    /// Send a JSON body, decode the JSON answer.
    pub(crate) async fn write<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: &B,
        pace: Pace<'_>,
        what: &str,
    ) -> Result<T> {
        let body = serde_json::to_value(body)
            .map_err(|e| Error::failed(format!("cannot encode a request to Render: {e}")))?;
        let answer = self
            .send(method.clone(), segments, &[], Some(&body), pace, what)
            .await?;
        decode(method.as_str(), &self.url(segments), &answer.body)
    }

    /// Every item of a cursor-paginated list, pages of [`PAGE_LIMIT`].
    ///
    /// Render answers an array of `{cursor, <item>}`; the last page is the one shorter than
    /// the limit. A repeated cursor also ends the list, as a guard.
    pub(crate) async fn list_all<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        what: &str,
    ) -> Result<Vec<T>> {
        let mut out = vec![];
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("limit", PAGE_LIMIT.to_string()));
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let page: Vec<Cursored<T>> = self.get(segments, &q, what).await?;
            let len = page.len();
            let last = page.last().and_then(|p| p.cursor.clone());
            out.extend(page.into_iter().map(|p| p.item));
            match last {
                Some(next) if len >= PAGE_LIMIT && cursor.as_deref() != Some(next.as_str()) => {
                    cursor = Some(next)
                }
                _ => return Ok(out),
            }
        }
        Ok(out)
    }
}

/// One element of a paginated list: the item plus the cursor that points after it.
#[derive(serde::Deserialize)]
struct Cursored<T> {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(flatten)]
    item: T,
}

pub(crate) fn decode<T: DeserializeOwned>(method: &str, url: &Url, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| {
        // A success with a body we cannot read: the platform (or a proxy before it) is
        // misbehaving; another attempt may well get a proper answer.
        Error::Provider {
            provider: API.provider.to_owned(),
            source: Box::new(staging_rest::RestError::Decode {
                method: method.to_owned(),
                path: url.path().to_owned(),
                source,
            }),
            retryable: true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_lets_the_limit_through_then_asks_to_wait() {
        let mut w = Window {
            sent: VecDeque::new(),
        };
        let per = Duration::from_secs(60);
        assert!(w.try_take(2, per).is_none());
        assert!(w.try_take(2, per).is_none());
        let wait = w
            .try_take(2, per)
            .expect("third request in the window must wait");
        assert!(wait <= per);
    }

    #[test]
    fn urls_escape_each_segment() {
        let c = Client::new(
            Url::parse("https://api.render.com/v1").unwrap(),
            SecretString::from("k".to_owned()),
            Settings::default(),
            RateLimits::default(),
        )
        .unwrap();
        assert_eq!(
            c.url(&["services", "srv-1", "env-vars", "A B/C"]).as_str(),
            "https://api.render.com/v1/services/srv-1/env-vars/A%20B%2FC"
        );
        let c2 = Client::new(
            Url::parse("http://127.0.0.1:4010/").unwrap(),
            SecretString::from("k".to_owned()),
            Settings::default(),
            RateLimits::default(),
        )
        .unwrap();
        assert_eq!(
            c2.url(&["services"]).as_str(),
            "http://127.0.0.1:4010/services"
        );
    }

    #[test]
    fn client_debug_never_shows_the_key() {
        let c = Client::new(
            Url::parse("https://api.render.com/v1").unwrap(),
            SecretString::from("rnd_canary_value".to_owned()),
            Settings::default(),
            RateLimits::default(),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("rnd_canary_value"));
    }
}
