//! How often a wait asks the platform: a steady interval derived from the provider's
//! documented read budget and the number of services being waited on, not an ever-growing
//! backoff.
//!
//! A deploy that goes live right after a poll is noticed one interval later, so the interval
//! is the detection latency. A backoff that doubles towards 40 s makes the tool slower than
//! the platform it drives; polling as fast as possible spends the account's rate limit,
//! which the user's other tools share. The rule here: while deploys are in progress, poll
//! every service at one steady interval chosen so that the whole wait uses at most
//! [`BUDGET_SHARE_PERCENT`] of the provider's [`ReadBudget`], and never faster than the
//! provider's floor ([`crate::Pacing::poll_interval`]). The interval stretches only
//!
//! - after a retryable error (429, 5xx): `Retry-After` when the platform says, else
//!   doubling up to 8× the steady interval, back to steady after the next answer;
//! - when a phase has reported no change for [`LONG_PHASE`] (a long build): 2×, then 4×
//!   after twice that, never beyond [`LONG_PHASE_CAP`] unless the budget already asks for
//!   more.
//!
//! As services go live, the remaining ones are polled faster: the interval is computed
//! from the number still waiting. Every choice is logged (`-v`) with its reason.
//!
//! The functions that compute intervals are pure ([`ReadBudget::steady_interval`],
//! [`long_phase_interval`], [`error_interval`]); [`Cadence`] and [`Pacer`] hold the state of
//! one wait around them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;

/// The share of a provider's read budget the waits of one run may use, in percent.
pub const BUDGET_SHARE_PERCENT: u32 = 25;

/// How late a deploy going live should be noticed at most; an interval above it is logged
/// as a budget that does not allow the target.
pub const DETECTION_TARGET: Duration = Duration::from_secs(5);

/// How long a phase (the platform's status word) may stay unchanged before polls slow down.
pub const LONG_PHASE: Duration = Duration::from_secs(120);

/// The longest interval a long phase stretches the cadence to (unless the budget alone
/// already asks for a longer one).
pub const LONG_PHASE_CAP: Duration = Duration::from_secs(30);

/// The most consecutive errors stretch the interval: 2³ = 8× the steady interval.
const MAX_ERROR_DOUBLINGS: u32 = 3;

/// A provider's documented limit on read requests, as the cadence budgets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBudget {
    /// Reads allowed in each `per` window.
    pub reads: u32,
    /// The window.
    pub per: Duration,
    /// Requests one status poll of one service makes against this budget.
    pub reads_per_poll: u32,
    /// Where the figure comes from, for `-v` and the docs (`Render API: 100 GET/min`).
    pub source: &'static str,
}

impl ReadBudget {
    /// The budget of a provider that declares none: 60 reads a minute, conservatively.
    pub const UNDECLARED: ReadBudget = ReadBudget::per_minute(
        60,
        "not declared by the provider: assumed 60 reads a minute",
    );

    /// `reads` per minute, one read per poll.
    pub const fn per_minute(reads: u32, source: &'static str) -> Self {
        ReadBudget {
            reads,
            per: Duration::from_secs(60),
            reads_per_poll: 1,
            source,
        }
    }

    /// `reads` per hour, one read per poll (a platform that states its limit by the hour).
    pub const fn per_hour(reads: u32, source: &'static str) -> Self {
        ReadBudget {
            reads,
            per: Duration::from_secs(3600),
            reads_per_poll: 1,
            source,
        }
    }

    /// No platform limit (local processes): the provider's floor decides alone.
    pub const fn unlimited(source: &'static str) -> Self {
        ReadBudget {
            reads: u32::MAX,
            per: Duration::from_secs(1),
            reads_per_poll: 1,
            source,
        }
    }

    /// The same budget, with `n` requests per status poll.
    pub const fn with_reads_per_poll(mut self, n: u32) -> Self {
        self.reads_per_poll = n;
        self
    }

    /// The interval at which polling `services` services at once uses exactly
    /// [`BUDGET_SHARE_PERCENT`] of the budget: `per × services × reads_per_poll / (reads ×
    /// share)`. Zero services count as one.
    pub fn steady_interval(&self, services: usize) -> Duration {
        let services = services.max(1) as u128;
        let reads_in_share = (u128::from(self.reads.max(1)) * u128::from(BUDGET_SHARE_PERCENT))
            .div_ceil(100)
            .max(1);
        let nanos = self.per.as_nanos() * services * u128::from(self.reads_per_poll.max(1))
            / reads_in_share;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Polls a minute the share allows, for messages.
    fn share_per_minute(&self) -> f64 {
        f64::from(self.reads) * f64::from(BUDGET_SHARE_PERCENT) / 100.0 * 60.0
            / self.per.as_secs_f64()
    }
}

/// Why the steady interval is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CadenceReason {
    /// The read budget, shared by the services waited on, allows no faster poll.
    Budget,
    /// The budget would allow faster; the provider's floor is the shortest useful interval.
    Floor,
}

/// The steady interval for `services` services: the budget's, or the floor when that is
/// longer. Pure; what [`Cadence`] uses.
pub fn steady_interval(
    budget: &ReadBudget,
    floor: Duration,
    services: usize,
) -> (Duration, CadenceReason) {
    let from_budget = budget.steady_interval(services);
    if from_budget > floor {
        (from_budget, CadenceReason::Budget)
    } else {
        (floor, CadenceReason::Floor)
    }
}

/// The interval while a phase has been unchanged for `unchanged_for`: `steady` until
/// [`LONG_PHASE`], then 2×, and 4× after twice that, capped at [`LONG_PHASE_CAP`] — never
/// shorter than `steady`.
pub fn long_phase_interval(steady: Duration, unchanged_for: Duration) -> Duration {
    let factor = if unchanged_for >= LONG_PHASE * 2 {
        4
    } else if unchanged_for >= LONG_PHASE {
        2
    } else {
        1
    };
    (steady * factor).min(LONG_PHASE_CAP).max(steady)
}

/// The interval after `consecutive` retryable errors in a row (1 for the first): the
/// platform's `Retry-After` when it gave one (honoured as given), else `steady` doubled per
/// error, at most 8×.
pub fn error_interval(
    steady: Duration,
    consecutive: u32,
    retry_after: Option<Duration>,
) -> Duration {
    match retry_after {
        Some(after) => after,
        None => steady * 2u32.pow(consecutive.clamp(1, MAX_ERROR_DOUBLINGS)),
    }
}

/// The cadence of one wait over one or more services of one provider, shared by every
/// service's poll loop: the steady interval follows the number of services still waiting.
#[derive(Debug)]
pub struct Cadence {
    provider: String,
    budget: ReadBudget,
    floor: Duration,
    waiting: AtomicUsize,
}

impl Cadence {
    /// A cadence for `provider`'s waits: its read budget and its floor.
    pub fn for_provider<P: crate::Provider + ?Sized>(provider: &P) -> Self {
        let pacing = provider.pacing();
        Cadence::new(provider.name(), pacing.read_budget, pacing.poll_interval)
    }

    /// A cadence from its parts.
    pub fn new(provider: impl Into<String>, budget: ReadBudget, floor: Duration) -> Self {
        Cadence {
            provider: provider.into(),
            budget,
            floor,
            waiting: AtomicUsize::new(0),
        }
    }

    /// The budget it paces against.
    pub fn budget(&self) -> &ReadBudget {
        &self.budget
    }

    /// The steady interval for `services` services waited on at once, and why.
    pub fn steady_for(&self, services: usize) -> (Duration, CadenceReason) {
        steady_interval(&self.budget, self.floor, services)
    }

    /// The steady interval now, for the services currently waiting.
    pub fn steady(&self) -> Duration {
        self.steady_for(self.waiting.load(Ordering::Relaxed)).0
    }

    /// One line saying which interval `services` services get and why (what `-v` prints).
    pub fn explain(&self, services: usize) -> String {
        let (interval, reason) = self.steady_for(services);
        let services = services.max(1);
        let why = match reason {
            CadenceReason::Budget => format!(
                "{}% of the read budget ({}) over {services} service(s) at {} read(s) per poll \
                 allows {:.0} polls a minute in all",
                BUDGET_SHARE_PERCENT,
                self.budget.source,
                self.budget.reads_per_poll,
                self.budget.share_per_minute() / f64::from(self.budget.reads_per_poll.max(1)),
            ),
            CadenceReason::Floor => format!(
                "the provider's shortest useful interval; {}% of the read budget ({}) would allow {}",
                BUDGET_SHARE_PERCENT,
                self.budget.source,
                fmt(self.budget.steady_interval(services)),
            ),
        };
        let target = if interval > DETECTION_TARGET {
            format!(
                "; above the {} detection target: the budget allows no faster poll for {services} service(s)",
                fmt(DETECTION_TARGET)
            )
        } else {
            String::new()
        };
        format!(
            "{}: polling each deploy every {} while {services} service(s) are in progress ({why}){target}",
            self.provider,
            fmt(interval)
        )
    }

    /// Count one more poll loop in, until the returned guard is dropped.
    pub fn join(&self) -> CadenceGuard<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        CadenceGuard { cadence: self }
    }
}

/// One poll loop counted in a [`Cadence`]; leaving (live, failed, timed out, dropped) lets
/// the others poll faster.
#[derive(Debug)]
pub struct CadenceGuard<'a> {
    cadence: &'a Cadence,
}

impl Drop for CadenceGuard<'_> {
    fn drop(&mut self) {
        let left = self.cadence.waiting.fetch_sub(1, Ordering::Relaxed) - 1;
        if left > 0 {
            tracing::debug!(
                provider = %self.cadence.provider,
                "{left} service(s) still in progress: polling every {}",
                fmt(self.cadence.steady_for(left).0)
            );
        }
    }
}

/// The state of one poll loop: the phase last seen and since when, errors in a row. The
/// loops of one wait are counted in their [`Cadence`] by whoever starts them
/// ([`Cadence::join`], before the first poll, so that the first interval already counts
/// every service); a lone loop counts as one.
#[derive(Debug)]
pub struct Pacer<'a> {
    cadence: &'a Cadence,
    what: String,
    phase: Option<(String, Instant)>,
    stretched: bool,
    errors: u32,
}

impl<'a> Pacer<'a> {
    /// A pacer for the loop waiting for `what`, at `cadence`.
    pub fn new(cadence: &'a Cadence, what: impl Into<String>) -> Self {
        Pacer {
            cadence,
            what: what.into(),
            phase: None,
            stretched: false,
            errors: 0,
        }
    }

    /// The delay before the next poll after an answer in `phase` (the platform's word).
    pub fn after_answer(&mut self, phase: &str) -> Duration {
        self.errors = 0;
        let now = Instant::now();
        let since = match &self.phase {
            Some((p, since)) if p == phase => *since,
            _ => {
                self.phase = Some((phase.to_owned(), now));
                self.stretched = false;
                now
            }
        };
        let steady = self.cadence.steady();
        let unchanged = now - since;
        let delay = long_phase_interval(steady, unchanged);
        if delay > steady && !self.stretched {
            self.stretched = true;
            tracing::info!(
                provider = %self.cadence.provider,
                "{}: `{phase}` unchanged for {}; polling every {} until it changes",
                self.what,
                fmt(unchanged),
                fmt(delay)
            );
        }
        delay
    }

    /// The delay before the next poll after the retryable error `error`.
    pub fn after_error(&mut self, error: &Error) -> Duration {
        self.errors = self.errors.saturating_add(1);
        let delay = error_interval(self.cadence.steady(), self.errors, error.retry_after());
        let why = if error.retry_after().is_some() {
            "as its Retry-After asks"
        } else {
            "backing off"
        };
        tracing::info!(
            provider = %self.cadence.provider,
            "{}: {error}; next poll in {} ({why})",
            self.what,
            fmt(delay)
        );
        delay
    }
}

fn fmt(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDER: ReadBudget = ReadBudget::per_minute(100, "render");
    const NETLIFY: ReadBudget = ReadBudget::per_minute(500, "netlify");
    const TWO_S: Duration = Duration::from_secs(2);

    #[test]
    fn one_render_service_is_polled_every_2_4_s_to_use_a_quarter_of_100_reads() {
        assert_eq!(RENDER.steady_interval(1), Duration::from_millis(2400));
        let (interval, reason) = steady_interval(&RENDER, TWO_S, 1);
        assert_eq!(
            (interval, reason),
            (Duration::from_millis(2400), CadenceReason::Budget)
        );
        // 60 s / 2.4 s = 25 polls a minute: exactly 25 % of 100.
        assert_eq!(
            Duration::from_secs(60).as_millis() / interval.as_millis(),
            25
        );
    }

    #[test]
    fn the_interval_grows_with_the_services_waited_on_so_the_total_stays_in_the_share() {
        for services in [1usize, 2, 5, 20] {
            let interval = RENDER.steady_interval(services);
            let polls_per_minute = 60.0 / interval.as_secs_f64() * services as f64;
            assert!(
                polls_per_minute <= 25.0 + 1e-9,
                "{services}: {polls_per_minute}"
            );
            assert!(polls_per_minute >= 24.9, "{services}: {polls_per_minute}");
        }
        assert_eq!(RENDER.steady_interval(5), Duration::from_secs(12));
        assert_eq!(RENDER.steady_interval(20), Duration::from_secs(48));
    }

    #[test]
    fn a_generous_budget_is_held_to_the_providers_floor() {
        // Netlify: 125 reads a minute for one service would be one every 0.48 s.
        assert_eq!(NETLIFY.steady_interval(1), Duration::from_millis(480));
        assert_eq!(
            steady_interval(&NETLIFY, TWO_S, 1),
            (TWO_S, CadenceReason::Floor)
        );
        // Twenty sites need 9.6 s to stay within the quarter.
        assert_eq!(
            steady_interval(&NETLIFY, TWO_S, 20),
            (Duration::from_millis(9600), CadenceReason::Budget)
        );
    }

    #[test]
    fn reads_per_poll_count_against_the_budget() {
        let two = RENDER.with_reads_per_poll(2);
        assert_eq!(two.steady_interval(1), Duration::from_millis(4800));
    }

    #[test]
    fn an_unlimited_budget_leaves_the_floor() {
        let local = ReadBudget::unlimited("local");
        let floor = Duration::from_millis(200);
        assert_eq!(
            steady_interval(&local, floor, 50),
            (floor, CadenceReason::Floor)
        );
    }

    #[test]
    fn zero_services_count_as_one() {
        assert_eq!(RENDER.steady_interval(0), RENDER.steady_interval(1));
    }

    #[test]
    fn long_unchanged_phases_slow_down_up_to_the_cap() {
        let steady = Duration::from_millis(2400);
        assert_eq!(
            long_phase_interval(steady, Duration::from_secs(119)),
            steady
        );
        assert_eq!(long_phase_interval(steady, LONG_PHASE), steady * 2);
        assert_eq!(long_phase_interval(steady, LONG_PHASE * 2), steady * 4);
        let fast = Duration::from_secs(12);
        assert_eq!(long_phase_interval(fast, LONG_PHASE * 5), LONG_PHASE_CAP);
        // A budget interval beyond the cap is never shortened.
        let slow = Duration::from_secs(48);
        assert_eq!(long_phase_interval(slow, LONG_PHASE * 5), slow);
    }

    #[test]
    fn errors_double_up_to_eight_times_and_retry_after_is_honoured_as_given() {
        let steady = Duration::from_secs(2);
        assert_eq!(error_interval(steady, 1, None), Duration::from_secs(4));
        assert_eq!(error_interval(steady, 2, None), Duration::from_secs(8));
        assert_eq!(error_interval(steady, 3, None), Duration::from_secs(16));
        assert_eq!(error_interval(steady, 9, None), Duration::from_secs(16));
        let after = Duration::from_secs(37);
        assert_eq!(error_interval(steady, 1, Some(after)), after);
        assert_eq!(
            error_interval(steady, 1, Some(Duration::from_millis(1))),
            Duration::from_millis(1)
        );
    }

    #[test]
    fn the_cadence_follows_the_services_still_waiting() {
        let cadence = Cadence::new("render", RENDER, TWO_S);
        let a = cadence.join();
        let b = cadence.join();
        assert_eq!(cadence.steady(), Duration::from_millis(4800));
        drop(a);
        assert_eq!(cadence.steady(), Duration::from_millis(2400));
        drop(b);
        assert_eq!(cadence.steady(), Duration::from_millis(2400));
    }

    #[test]
    fn the_explanation_names_the_interval_the_budget_and_a_missed_target() {
        let cadence = Cadence::new("render", RENDER, TWO_S);
        let one = cadence.explain(1);
        assert!(
            one.contains("every 2.4s") && one.contains("25%") && one.contains("render"),
            "{one}"
        );
        assert!(!one.contains("detection target"), "{one}");
        let twenty = cadence.explain(20);
        assert!(
            twenty.contains("every 48.0s") && twenty.contains("detection target"),
            "{twenty}"
        );
        let floor = Cadence::new("netlify", NETLIFY, TWO_S).explain(1);
        assert!(floor.contains("shortest useful interval"), "{floor}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pacer_stretches_an_unchanged_phase_and_resets_on_a_new_one() {
        let cadence = Cadence::new("render", RENDER, TWO_S);
        let mut pacer = Pacer::new(&cadence, "deploy");
        let steady = Duration::from_millis(2400);
        assert_eq!(pacer.after_answer("build_in_progress"), steady);
        tokio::time::advance(LONG_PHASE).await;
        assert_eq!(pacer.after_answer("build_in_progress"), steady * 2);
        assert_eq!(pacer.after_answer("update_in_progress"), steady);
        let limited = Error::RateLimited {
            provider: "render".into(),
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(pacer.after_error(&limited), Duration::from_secs(30));
        let flaky = Error::Provider {
            provider: "render".into(),
            source: "503".into(),
            retryable: true,
        };
        assert_eq!(pacer.after_error(&flaky), steady * 4);
        assert_eq!(pacer.after_answer("update_in_progress"), steady);
    }
}
