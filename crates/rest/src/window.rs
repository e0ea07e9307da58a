//! A client-side limit a platform documents but does not signal before it refuses: at most
//! so many calls in any window (Netlify: 500 requests and 3 deploys a minute). Waiting here
//! is cheaper than being refused, and a refused deploy would cost a retry.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// A sliding-window limiter: at most `max` calls in any `window`.
#[derive(Debug)]
pub struct Window {
    max: usize,
    window: Duration,
    calls: Mutex<VecDeque<Instant>>,
}

impl Window {
    /// At most `max` (at least 1) calls in any `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        Window {
            max: max.max(1) as usize,
            window,
            calls: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits until one more call fits in the window, then counts it. Never longer than the
    /// window itself.
    pub async fn acquire(&self) {
        let far = Instant::now() + self.window + Duration::from_secs(1);
        // A wait never exceeds the window, so a deadline past it is never reached.
        let _ = self.acquire_by(far).await;
    }

    /// [`Window::acquire`], but when the place would come after `deadline`, returns at once
    /// with how long the wait would still be, and counts nothing.
    pub async fn acquire_by(&self, deadline: Instant) -> Result<(), Duration> {
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
                    return Ok(());
                }
                self.window - now.duration_since(calls[0])
            };
            if Instant::now() + wait > deadline {
                return Err(wait);
            }
            tracing::debug!(?wait, "client-side rate limit: waiting");
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

    #[tokio::test(start_paused = true)]
    async fn a_place_after_the_deadline_is_refused_at_once() {
        let w = Window::new(1, Duration::from_secs(60));
        let start = Instant::now();
        w.acquire().await;
        let left = w
            .acquire_by(start + Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(left > Duration::from_secs(50), "{left:?}");
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
