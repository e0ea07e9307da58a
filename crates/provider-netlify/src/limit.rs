//! Client-side rate limits: Netlify allows 500 requests and 3 deploys per minute. Waiting
//! here is cheaper than being refused, and a refused deploy trigger would cost a retry.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

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

/// A sliding-window limiter: at most `max` calls in any `window`.
#[derive(Debug)]
pub(crate) struct Window {
    max: usize,
    window: Duration,
    calls: Mutex<VecDeque<Instant>>,
}

impl Window {
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        Window {
            max: max.max(1) as usize,
            window,
            calls: Mutex::new(VecDeque::new()),
        }
    }

    /// Wait until one more call fits in the window, then count it.
    pub(crate) async fn acquire(&self) {
        loop {
            let wait = {
                let mut calls = self.calls.lock().await;
                let now = Instant::now();
                while calls
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    calls.pop_front();
                }
                if calls.len() < self.max {
                    calls.push_back(now);
                    return;
                }
                self.window - now.duration_since(calls[0])
            };
            tracing::debug!(?wait, "netlify client-side rate limit: waiting");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_fourth_deploy_in_a_minute_waits_for_the_window() {
        let w = Window::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            w.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "three deploys fit in the window"
        );
        w.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(60),
            "the fourth waited only {:?}",
            start.elapsed()
        );
    }
}
