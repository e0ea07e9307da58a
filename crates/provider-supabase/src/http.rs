//! The HTTP side: the REST client every bearer-token provider shares
//! ([`staging_rest::Client`]), described for Supabase's Management API v1.

use staging_rest::Api;
pub(crate) use staging_rest::Client;

pub(crate) const PROVIDER: &str = "supabase";

/// Supabase's Management API: only a rate limit (429) refuses a write without doing it;
/// reads are retried on 502/503/504 (Supabase answers a passing 502) and a missing answer.
pub(crate) const API: Api = Api::new(
    PROVIDER,
    "Supabase",
    "access token",
    "SUPABASE_ACCESS_TOKEN",
);
