//! The HTTP side: the REST client every bearer-token provider shares
//! ([`staging_rest::Client`]), described for Neon's API v2.

use staging_rest::Api;
pub(crate) use staging_rest::Client;

pub(crate) const PROVIDER: &str = "neon";

/// Neon's API: a 423 (the project is locked by a running operation) and a 503 (Neon
/// documents it as always safe to retry) refuse a request without doing it, so they are
/// retried like a rate limit, writes (a restore) included.
pub(crate) const API: Api = Api {
    refused_statuses: &[423, 503],
    ..Api::new(PROVIDER, "Neon", "API key", "NEON_API_KEY")
};
