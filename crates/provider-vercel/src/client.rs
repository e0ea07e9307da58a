//! The HTTP side: Vercel's REST API over the shared platform client
//! ([`staging_rest::Client`]: bounds, body cap, the token's shared rate budget, safe
//! retries, the common mapping of statuses with Vercel's 403 override), the team as
//! `teamId`/`slug` on every request.

use std::fmt;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use staging_core::{Error, Result};
use staging_rest::{Auth, Call, Settings};
use url::Url;

use crate::error::{API, VercelError, forbidden};

/// The team a token acts for: Vercel's `teamId` or `slug` query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Team {
    Id(String),
    Slug(String),
}

/// The REST client. Its `Debug` shows the address only.
pub(crate) struct Client {
    rest: staging_rest::Client,
    /// Where calls missing from the published contract go (the rollback).
    unlisted: staging_rest::Client,
    team: Option<Team>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.rest.base().as_str())
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
        settings: Settings,
    ) -> Result<Self> {
        Ok(Client {
            rest: staging_rest::Client::with_settings(
                API,
                base,
                token.clone(),
                Auth::Bearer,
                settings,
            )?,
            unlisted: staging_rest::Client::with_settings(
                API,
                unlisted_base,
                token,
                Auth::Bearer,
                settings,
            )?,
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
            .raw(&self.rest, method, path, query, body, operation, what)
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
        self.raw(&self.rest, method, path, &[], body, operation, what)
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
            &self.unlisted,
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
        client: &staging_rest::Client,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        operation: &str,
        what: &str,
    ) -> Result<Vec<u8>> {
        let url = self.url(client.base(), path, query)?;
        tracing::debug!(operation, "vercel request");
        let inspect = |status: StatusCode, _: &HeaderMap, raw: &[u8]| {
            forbidden(status, operation, what, &staging_rest::error_message(raw))
        };
        let mut call = Call::new(method, url).what(what);
        if let Some(b) = body {
            call = call.body(b);
        }
        Ok(client.exchange_with(call, &inspect).await?.body)
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
            Settings::default(),
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
