//! The HTTP side: one POST per GraphQL operation to one address over the shared platform
//! client ([`staging_rest::Client`]: bounds, body cap, the token's shared rate budget, safe
//! retries, the common mapping of HTTP statuses); GraphQL `errors` are mapped by
//! [`crate::error::error_for_answer`].

use std::fmt;

use graphql_client::GraphQLQuery;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use staging_core::{Error, Result};
use staging_rest::{Auth, Call, Safety, Settings};
use url::Url;

use crate::error::{API, GraphqlError, RailwayError, error_for_answer};

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
    rest: staging_rest::Client,
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
    pub(crate) fn new(url: Url, credentials: Credentials, settings: Settings) -> Result<Self> {
        let (token, auth) = match &credentials {
            Credentials::Account(t) => (t.clone(), Auth::Bearer),
            Credentials::Project(t) => (t.clone(), Auth::Header("project-access-token")),
        };
        Ok(Client {
            rest: staging_rest::Client::with_settings(API, url.clone(), token, auth, settings)?,
            url,
            credentials,
        })
    }

    /// The bounds of the shared client.
    pub(crate) fn settings(&self) -> &Settings {
        self.rest.settings()
    }

    pub(crate) fn is_project_token(&self) -> bool {
        matches!(self.credentials, Credentials::Project(_))
    }

    /// Sends operation `Q` with `variables`; returns its `data`, or the kind of error.
    /// `what` names the thing asked for, for messages.
    ///
    /// A query is a read, retried inside the shared client; a mutation is sent once, again
    /// only when Railway refused it (a rate limit, over HTTP or in the GraphQL `errors`).
    pub(crate) async fn run<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
        what: &str,
    ) -> Result<Q::ResponseData> {
        let body = Q::build_query(variables);
        let operation = body.operation_name;
        let safety = safety_of(body.query);
        let json = serde_json::to_value(&body)
            .map_err(|e| Error::failed(format!("cannot encode {operation} for Railway: {e}")))?;
        tracing::debug!(operation, "railway request");
        let inspect = |status: StatusCode, headers: &HeaderMap, raw: &[u8]| {
            // GraphQL errors inside a 200 (or a 400 that carries them) are Railway's; any
            // other non-success is the common mapping's.
            let parsed: Option<serde_json::Value> = serde_json::from_slice(raw).ok();
            let errors = parsed.as_ref().map(graphql_errors).unwrap_or_default();
            let graphql = status.is_success() || status == StatusCode::BAD_REQUEST;
            (graphql && !errors.is_empty())
                .then(|| error_for_answer(status, headers, operation, what, &errors))
        };
        let call = Call::new(Method::POST, self.url.clone())
            .body(&json)
            .safety(safety)
            .what(what);
        let answer = self.rest.exchange_with(call, &inspect).await?;
        let decode_error = |detail: String| {
            // A success whose body is not a GraphQL answer: the platform (or a proxy before
            // it) is misbehaving; another attempt may well get a proper answer.
            RailwayError::Decode {
                operation: operation.to_owned(),
                detail,
            }
            .into_core(true)
        };
        let mut parsed: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|_| {
            decode_error(format!(
                "not JSON: {}",
                staging_core::Redactor::global()
                    .shorten(String::from_utf8_lossy(&answer.body).trim(), 200)
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

/// A document whose operation is a `query` is a read; anything else (a `mutation`, or a
/// document this cannot tell) must happen once. Comment lines before it are skipped.
fn safety_of(document: &str) -> Safety {
    let first = document
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    match first {
        Some(l) if l.starts_with("query") => Safety::Read,
        _ => Safety::Once,
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
    fn every_mutation_is_sent_once_and_only_queries_are_reads() {
        for (name, document) in crate::queries::DOCUMENTS {
            let want = if document.contains("\nmutation ") || document.starts_with("mutation ") {
                Safety::Once
            } else {
                Safety::Read
            };
            assert_eq!(safety_of(document), want, "{name}");
        }
        assert_eq!(safety_of("# a comment\nmutation X { a }"), Safety::Once);
        assert_eq!(
            safety_of("{ a }"),
            Safety::Once,
            "unknown shape: fail closed"
        );
    }

    #[test]
    fn client_debug_never_shows_the_token() {
        for creds in [
            Credentials::Account(SecretString::from("rw_canary_account".to_owned())),
            Credentials::Project(SecretString::from("rw_canary_project".to_owned())),
        ] {
            let c = Client::new(
                Url::parse("https://backboard.railway.com/graphql/v2").unwrap(),
                creds,
                Settings::default(),
            )
            .unwrap();
            let shown = format!("{c:?}");
            assert!(!shown.contains("rw_canary"), "{shown}");
            assert!(shown.contains("backboard.railway.com"), "{shown}");
        }
    }
}
