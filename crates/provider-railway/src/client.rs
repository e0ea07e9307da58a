//! The HTTP side: one POST per GraphQL operation to one address, the token in its header,
//! a bound on every request and a cap on every body, and every answer mapped through
//! [`crate::error::error_for_answer`].

use std::fmt;
use std::time::Duration;

use graphql_client::GraphQLQuery;
use secrecy::{ExposeSecret, SecretString};
use staging_core::{Error, Result};
use url::Url;

use crate::error::{GraphqlError, RailwayError, error_for_answer, error_for_transport};

/// Which kind of token the provider holds; each goes in its own header.
#[derive(Clone)]
pub(crate) enum Credentials {
    /// An account or workspace token (`RAILWAY_API_TOKEN`): `Authorization: Bearer`.
    Account(SecretString),
    /// A project token (`RAILWAY_TOKEN`): the `project-access-token` header.
    Project(SecretString),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credentials::Account(_) => "Account([REDACTED])",
            Credentials::Project(_) => "Project([REDACTED])",
        })
    }
}

/// The GraphQL client. Its `Debug` shows the address only.
pub(crate) struct Client {
    http: reqwest::Client,
    url: Url,
    credentials: Credentials,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url.as_str())
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl Client {
    pub(crate) fn new(url: Url, credentials: Credentials, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(staging_core::limits::DEFAULT_CONNECT_TIMEOUT))
            .user_agent(concat!(
                "staging-provider-railway/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| Error::config(format!("cannot build the HTTP client for Railway: {e}")))?;
        Ok(Client {
            http,
            url,
            credentials,
        })
    }

    pub(crate) fn is_project_token(&self) -> bool {
        matches!(self.credentials, Credentials::Project(_))
    }

    /// Sends operation `Q` with `variables`; returns its `data`, or the kind of error.
    /// `what` names the thing asked for, for messages.
    pub(crate) async fn run<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
        what: &str,
    ) -> Result<Q::ResponseData> {
        let body = Q::build_query(variables);
        let operation = body.operation_name;
        let mut req = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body);
        req = match &self.credentials {
            Credentials::Account(token) => req.bearer_auth(token.expose_secret()),
            Credentials::Project(token) => {
                req.header("project-access-token", token.expose_secret())
            }
        };
        tracing::debug!(operation, "railway request");
        let host = format!(
            "{}:{}",
            self.url.host_str().unwrap_or_default(),
            self.url.port_or_known_default().unwrap_or_default()
        );
        let mut resp = req
            .send()
            .await
            .map_err(|e| error_for_transport(operation, &host, e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        // Streamed against the cap: a misbehaving endpoint cannot grow memory without end.
        let cap = staging_core::limits::MAX_PROVIDER_BODY;
        let mut raw = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| error_for_transport(operation, &host, e))?
        {
            if raw.len() as u64 + chunk.len() as u64 > cap {
                return Err(RailwayError::TooLarge {
                    operation: operation.to_owned(),
                    cap: staging_core::limits::format_size(cap),
                }
                .into_core(false));
            }
            raw.extend_from_slice(&chunk);
        }
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&raw).ok();
        let errors = parsed.as_ref().map(graphql_errors).unwrap_or_default();
        if !status.is_success() || !errors.is_empty() {
            return Err(error_for_answer(status, &headers, operation, what, &errors));
        }
        let decode_error = |detail: String| {
            // A success whose body is not a GraphQL answer: the platform (or a proxy before
            // it) is misbehaving; another attempt may well get a proper answer.
            RailwayError::Decode {
                operation: operation.to_owned(),
                detail,
            }
            .into_core(true)
        };
        let mut parsed = parsed.ok_or_else(|| {
            decode_error(format!(
                "not JSON: {}",
                staging_core::Redactor::global().shorten(String::from_utf8_lossy(&raw).trim(), 200)
            ))
        })?;
        let data = parsed
            .get_mut("data")
            .map(serde_json::Value::take)
            .filter(|d| !d.is_null())
            .ok_or_else(|| decode_error("no `data` and no `errors`".to_owned()))?;
        serde_json::from_value(data).map_err(|e| decode_error(e.to_string()))
    }
}

/// The `errors` of a GraphQL answer, message and `extensions.code` of each.
fn graphql_errors(body: &serde_json::Value) -> Vec<GraphqlError> {
    body.get("errors")
        .and_then(serde_json::Value::as_array)
        .map(|list| {
            list.iter()
                .map(|e| GraphqlError {
                    message: e
                        .get("message")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("no message")
                        .to_owned(),
                    code: e
                        .pointer("/extensions/code")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_debug_never_shows_the_token() {
        for creds in [
            Credentials::Account(SecretString::from("rw_canary_account".to_owned())),
            Credentials::Project(SecretString::from("rw_canary_project".to_owned())),
        ] {
            let c = Client::new(
                Url::parse("https://backboard.railway.com/graphql/v2").unwrap(),
                creds,
                Duration::from_secs(1),
            )
            .unwrap();
            let shown = format!("{c:?}");
            assert!(!shown.contains("rw_canary"), "{shown}");
            assert!(shown.contains("backboard.railway.com"), "{shown}");
        }
    }
}
