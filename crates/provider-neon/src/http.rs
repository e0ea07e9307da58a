//! The HTTP side: the REST client every bearer-token provider shares
//! ([`staging_rest::Client`]), described for Neon's API v2.

use staging_rest::Api;
pub(crate) use staging_rest::Client;

pub(crate) const PROVIDER: &str = "neon";

/// Neon's API: a 423 (the project is locked by a running operation) refuses a request
/// without doing it, so it is retried like a rate limit, writes included.
pub(crate) const API: Api = Api {
    provider: PROVIDER,
    platform: "Neon",
    credential: "API key",
    credential_var: "NEON_API_KEY",
    refused_statuses: &[423],
};
