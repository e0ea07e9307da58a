//! Client-side rate limits: Netlify allows 500 requests and 3 deploys per minute. They are
//! kept by the shared client's [`staging_rest::Window`]s: waiting is cheaper than being
//! refused, and a refused deploy trigger would cost a retry.

use std::time::Duration;

/// How many calls Netlify accepts per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Any API request (Netlify: 500 per minute).
    pub requests: u32,
    /// Deploy triggers: builds API and build hooks (Netlify: 3 per minute).
    pub deploys: u32,
    /// The window both limits count over (Netlify: one minute).
    pub window: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            requests: 500,
            deploys: 3,
            window: Duration::from_secs(60),
        }
    }
}
