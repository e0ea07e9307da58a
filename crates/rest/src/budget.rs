//! One rate budget per credential: every request of a run that uses the same credential
//! against the same API draws from it, so a refusal on one request pauses all of them.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use staging_core::ReadBudget;
use tokio::time::Instant;

use crate::ratelimit::RateLimitHeaders;

/// What identifies a credential's budget: the provider, the API's base URL and a digest of
/// the token. The token itself is never kept, shown or logged.
#[derive(Clone, PartialEq, Eq, Hash)]
struct BudgetKey {
    provider: String,
    base: String,
    token_digest: [u8; 32],
}

/// The shared rate budget of one credential (provider + base URL + token).
///
/// - A 429 pauses every request of the credential for its `Retry-After` (or its reset);
///   `Remaining: 0` with a reset does the same before the platform has to refuse anything.
/// - The `Limit` advertised on reads replaces the declared read budget for the cadence of
///   polls ([`RateBudget::read_budget`]); with no headers the declared budget stands.
///
/// Its `Debug` names the provider and base URL only.
pub struct RateBudget {
    label: String,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    paused_until: Option<Instant>,
    read_limit: Option<u64>,
}

/// How long an API has kept requests waiting without an answer since it last answered, and
/// how the last of them ended.
#[derive(Debug, Clone, Copy)]
struct Silence {
    spent: Duration,
    phase: &'static str,
    last: Instant,
}

/// How long a silence is remembered after the last request it kept waiting: a run's steps
/// fall within it, a process that lives on (an embedding service) asks again after it.
pub const SILENCE_MEMORY: Duration = Duration::from_secs(600);

/// The silences of the process, by API (provider and base URL, whatever the token): they
/// outlive the clients, which a run builds again from step to step.
fn silences() -> &'static Mutex<HashMap<String, Silence>> {
    static SILENCES: OnceLock<Mutex<HashMap<String, Silence>>> = OnceLock::new();
    SILENCES.get_or_init(Default::default)
}

impl fmt::Debug for RateBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("RateBudget")
            .field("credential", &self.label)
            .field("paused_until", &s.paused_until)
            .field("read_limit", &s.read_limit)
            .finish()
    }
}

fn registry() -> &'static Mutex<HashMap<BudgetKey, Weak<RateBudget>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<BudgetKey, Weak<RateBudget>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

impl RateBudget {
    /// The budget of `token` on `provider`'s API at `base`: the same one for every client of
    /// this process built with the same three, for as long as one of them lives.
    pub fn shared(provider: &str, base: &str, token: &SecretString) -> Arc<RateBudget> {
        let key = BudgetKey {
            provider: provider.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            token_digest: Sha256::digest(token.expose_secret().as_bytes()).into(),
        };
        let mut map = registry().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(live) = map.get(&key).and_then(Weak::upgrade) {
            return live;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let budget = Arc::new(RateBudget::new(format!("{provider} at {}", key.base)));
        map.insert(key, Arc::downgrade(&budget));
        budget
    }

    /// A budget of its own (not shared), named `label` in messages.
    pub fn new(label: impl Into<String>) -> Self {
        RateBudget {
            label: label.into(),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pauses every request of the credential for `wait` from now (a pause already longer
    /// stands).
    pub fn pause_for(&self, wait: Duration, why: &str) {
        let until = Instant::now() + wait;
        let mut s = self.lock();
        if s.paused_until.is_none_or(|u| u < until) {
            tracing::info!(
                credential = %self.label,
                wait = %humantime::format_duration(wait),
                why,
                "pausing every request of this credential until the platform's window ends"
            );
            s.paused_until = Some(until);
        }
    }

    /// How much longer requests are paused, if they are.
    pub fn paused_for(&self) -> Option<Duration> {
        let now = Instant::now();
        self.lock()
            .paused_until
            .filter(|u| *u > now)
            .map(|u| u - now)
    }

    /// Waits for the end of any pause. When the pause lasts beyond `deadline`, returns at
    /// once with how long it still has to run, and waits for nothing.
    pub async fn wait_turn(&self, deadline: Instant) -> Result<(), Duration> {
        loop {
            let until = self.lock().paused_until;
            let now = Instant::now();
            match until {
                Some(u) if u > now => {
                    if u > deadline {
                        return Err(u - now);
                    }
                    tokio::time::sleep_until(u).await;
                }
                _ => return Ok(()),
            }
        }
    }

    /// What is left of `bound` (the client's call deadline), the time requests to this API
    /// may wait on it without an answer, all of them together (every client and step of the run, whatever the
    /// token), until it answers again: a dead host costs a run one bound, not one per step
    /// or per request. `Err` with how the silence showed (`timed out waiting for the
    /// answer`) when nothing is left.
    pub fn silence_left(&self, bound: Duration) -> Result<Duration, &'static str> {
        let mut map = silences().lock().unwrap_or_else(|p| p.into_inner());
        let Some(s) = map.get(&self.label).copied() else {
            return Ok(bound);
        };
        if s.last.elapsed() > SILENCE_MEMORY {
            map.remove(&self.label);
            return Ok(bound);
        }
        if s.spent >= bound {
            Err(s.phase)
        } else {
            Ok(bound - s.spent)
        }
    }

    /// Counts `waited` against the silence bound: a request got no answer (`phase`).
    pub fn record_silence(&self, waited: Duration, phase: &'static str) {
        let mut map = silences().lock().unwrap_or_else(|p| p.into_inner());
        let s = map.entry(self.label.clone()).or_insert(Silence {
            spent: Duration::ZERO,
            phase,
            last: Instant::now(),
        });
        s.spent += waited;
        s.phase = phase;
        s.last = Instant::now();
        tracing::debug!(api = %self.label, silent_for = ?s.spent, phase, "no answer");
    }

    /// The API answered: its silence bound starts again.
    pub fn record_answer(&self) {
        let mut map = silences().lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&self.label);
    }

    /// Takes in what one answer said: `Remaining: 0` with a reset pauses every request until
    /// the window renews; the `Limit` of a `read` is remembered for
    /// [`RateBudget::read_budget`]. (A refusal, 429, is paused for by the client, which
    /// also knows refusals that come inside a 200.)
    pub fn observe(&self, headers: &RateLimitHeaders, read: bool) {
        if read && let Some(limit) = headers.limit.filter(|l| *l > 0) {
            self.lock().read_limit = Some(limit);
        }
        if let Some(reset) = headers.exhausted_for() {
            self.pause_for(reset, "the platform says no request is left in this window");
        }
    }

    /// The read budget the cadence of polls should use: `declared`, with its number of reads
    /// replaced by the `Limit` the platform advertised on reads when it did.
    pub fn read_budget(&self, declared: ReadBudget) -> ReadBudget {
        match self.lock().read_limit {
            Some(limit) => ReadBudget {
                reads: u32::try_from(limit).unwrap_or(u32::MAX),
                source: "advertised by the platform (RateLimit-Limit on reads)",
                ..declared
            },
            None => declared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_budget_per_credential_and_the_token_never_shows() {
        let a = SecretString::from("tok_canary_a".to_owned());
        let b = SecretString::from("tok_canary_b".to_owned());
        let one = RateBudget::shared("render", "http://h:1/v1/", &a);
        let same = RateBudget::shared("render", "http://h:1/v1", &a);
        let other_token = RateBudget::shared("render", "http://h:1/v1", &b);
        let other_base = RateBudget::shared("render", "http://h:2/v1", &a);
        assert!(Arc::ptr_eq(&one, &same));
        assert!(!Arc::ptr_eq(&one, &other_token));
        assert!(!Arc::ptr_eq(&one, &other_base));
        let shown = format!("{one:?}");
        assert!(
            !shown.contains("canary") && shown.contains("render"),
            "{shown}"
        );
    }

    #[test]
    fn advertised_read_limits_replace_the_declared_budget_and_write_limits_do_not() {
        let declared = ReadBudget::per_minute(100, "declared");
        let b = RateBudget::new("t");
        assert_eq!(b.read_budget(declared), declared);
        let deploys = RateLimitHeaders {
            limit: Some(10),
            ..Default::default()
        };
        b.observe(&deploys, false);
        assert_eq!(b.read_budget(declared), declared);
        let reads = RateLimitHeaders {
            limit: Some(400),
            ..Default::default()
        };
        b.observe(&reads, true);
        assert_eq!(b.read_budget(declared).reads, 400);
        assert_eq!(b.read_budget(declared).per, declared.per);
    }

    #[test]
    fn silence_adds_up_to_one_bound_and_an_answer_gives_it_back() {
        let b = RateBudget::new("silence test");
        let bound = Duration::from_secs(30);
        b.record_silence(Duration::from_secs(20), "connecting timed out");
        assert_eq!(b.silence_left(bound), Ok(Duration::from_secs(10)));
        b.record_silence(Duration::from_secs(10), "timed out waiting for the answer");
        assert_eq!(
            b.silence_left(bound),
            Err("timed out waiting for the answer")
        );
        b.record_answer();
        assert_eq!(b.silence_left(bound), Ok(bound));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_beyond_the_deadline_is_refused_at_once() {
        let b = RateBudget::new("t");
        b.pause_for(Duration::from_secs(30), "test");
        let started = Instant::now();
        let left = b
            .wait_turn(started + Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(left > Duration::from_secs(29));
        assert_eq!(started.elapsed(), Duration::ZERO);
        b.wait_turn(started + Duration::from_secs(60))
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_secs(30));
    }
}
