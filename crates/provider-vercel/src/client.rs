//! The HTTP side: bearer token, the team as `teamId`/`slug` on every request, a bound on
//! every request and a cap on every body, every failure mapped through
//! [`crate::error::error_for_status`].

use std::fmt;
use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use staging_core::{Error, Result};
use url::Url;

use crate::error::{VercelError, error_for_status, error_for_transport, error_message};

/// The team a token acts for: Vercel's `teamId` or `slug` query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Team {
    Id(String),
    Slug(String),
}

/// The REST client. Its `Debug` shows the address only.
pub(crate) struct Client {
    http: reqwest::Client,
    base: Url,
    /// Where calls missing from the published contract go (the rollback).
    unlisted_base: Url,
    token: SecretString,
    team: Option<Team>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("team", &self.team)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

impl Client {
    pub(crate) fn new(
        base: Url,
        unlisted_base: Url,
        token: SecretString,
        team: Option<Team>,
        timeout: Duration,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(staging_core::limits::DEFAULT_CONNECT_TIMEOUT))
            .user_agent(concat!(
                "staging-provider-vercel/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| Error::config(format!("cannot build the HTTP client for Vercel: {e}")))?;
        Ok(Client {
            http,
            base,
            unlisted_base,
            token,
            team,
        })
    }

    fn url(&self, base: &Url, path: &str, query: &[(&str, String)]) -> Result<Url> {
        let mut url = base
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::config(format!("bad Vercel path {path}: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
            match &self.team {
                Some(Team::Id(id)) => {
                    q.append_pair("teamId", id);
                }
                Some(Team::Slug(slug)) => {
                    q.append_pair("slug", slug);
                }
                None => {}
            }
        }
        Ok(url)
    }

    /// Sends one request; decodes a JSON answer (`()`-like answers use [`Client::send_empty`]).
    pub(crate) async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        operation: &str,
        what: &str,
    ) -> Result<T> {
        let raw = self
            .raw(&self.base, method, path, query, body, operation, what)
            .await?;
        serde_json::from_slice(&raw).map_err(|e| {
            // A 2xx that is not the operation's answer: a proxy or the platform misbehaving;
            // another attempt may get a proper answer. Neither the body nor serde's message
            // (which can quote a value) is kept: an env var answer holds decrypted values.
            VercelError::Decode {
                operation: operation.to_owned(),
                detail: format!(
                    "{:?} error at line {} column {} of {} bytes",
                    e.classify(),
                    e.line(),
                    e.column(),
                    raw.len()
                ),
            }
            .into_core(true)
        })
    }

    /// Sends one request whose answer has no body worth reading.
    pub(crate) async fn send_empty(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        operation: &str,
        what: &str,
    ) -> Result<()> {
        self.raw(&self.base, method, path, &[], body, operation, what)
            .await
            .map(drop)
    }

    /// A call that is not in Vercel's published contract (sent to the unlisted address,
    /// which is the API's own unless a test points it at its double).
    pub(crate) async fn send_unlisted(
        &self,
        path: &str,
        operation: &str,
        what: &str,
    ) -> Result<()> {
        self.raw(
            &self.unlisted_base,
            Method::POST,
            path,
            &[],
            None,
            operation,
            what,
        )
        .await
        .map(drop)
    }

    #[allow(clippy::too_many_arguments)]
    async fn raw(
        &self,
        base: &Url,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        operation: &str,
        what: &str,
    ) -> Result<Vec<u8>> {
        let url = self.url(base, path, query)?;
        let host = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        tracing::debug!(operation, "vercel request");
        let mut resp = req
            .send()
            .await
            .map_err(|e| error_for_transport(operation, &host, e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let cap = staging_core::limits::MAX_PROVIDER_BODY;
        let mut raw = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| error_for_transport(operation, &host, e))?
        {
            if raw.len() as u64 + chunk.len() as u64 > cap {
                return Err(VercelError::TooLarge {
                    operation: operation.to_owned(),
                    cap: staging_core::limits::format_size(cap),
                }
                .into_core(false));
            }
            raw.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(error_for_status(
                status,
                &headers,
                operation,
                what,
                error_message(&raw),
            ));
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreadable_answer_never_quotes_the_body() {
        // A loopback server answering 200 with an env list whose value has the wrong type.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let body = r#"{"envs": "canary-decrypted-value-31"}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(answer.as_bytes()).await.unwrap();
        });
        let base = Url::parse(&format!("http://{addr}/")).unwrap();
        let client = Client::new(
            base.clone(),
            base,
            SecretString::from("t".to_owned()),
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Envs {
            envs: Vec<String>,
        }
        let err = client
            .send::<Envs>(
                Method::GET,
                "v10/projects/p/env",
                &[],
                None,
                "filterProjectEnvs",
                "env",
            )
            .await
            .unwrap_err();
        assert!(err.is_retryable());
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("canary"), "{shown}");
    }
}
