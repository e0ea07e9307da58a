//! The shared client against a small local platform that answers what each test scripts:
//! the credential's shared pause, `Remaining: 0`, which failures are sent again, the body
//! cap. Orderings are asserted from the instants the server saw requests arrive.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::json;
use staging_core::{Error, RetryPolicy};
use staging_rest::{Api, Auth, Call, Client, Safety, Settings};
use tokio::time::Instant;
use url::Url;

const API: Api = Api::new("fakeplatform", "Fake", "token", "FAKE_TOKEN");

/// One scripted answer: status, headers, body.
type Scripted = (u16, Vec<(&'static str, String)>, String);

#[derive(Default)]
struct State {
    script: VecDeque<Scripted>,
    seen: Vec<(Instant, String)>,
}

#[derive(Clone)]
struct Platform {
    url: Url,
    state: Arc<Mutex<State>>,
}

impl Platform {
    async fn start() -> Platform {
        let state = Arc::new(Mutex::new(State::default()));
        let app_state = state.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let state = app_state.clone();
            async move {
                let line = format!("{} {}", req.method(), req.uri().path());
                let next = {
                    let mut s = state.lock().unwrap();
                    s.seen.push((Instant::now(), line));
                    s.script.pop_front()
                };
                let (status, headers, body) = next.unwrap_or((200, vec![], "{}".into()));
                let mut h = HeaderMap::new();
                for (k, v) in headers {
                    h.insert(k, HeaderValue::from_str(&v).unwrap());
                }
                let resp: Response =
                    (StatusCode::from_u16(status).unwrap(), h, body).into_response();
                resp
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/v1", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Platform { url, state }
    }

    fn then(&self, status: u16, headers: &[(&'static str, &str)], body: &str) {
        self.state.lock().unwrap().script.push_back((
            status,
            headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            body.to_owned(),
        ));
    }

    fn seen(&self) -> Vec<(Instant, String)> {
        self.state.lock().unwrap().seen.clone()
    }

    fn client(&self, token: &str, settings: Settings) -> Client {
        Client::with_settings(
            API,
            self.url.clone(),
            SecretString::from(token.to_owned()),
            Auth::Bearer,
            settings,
        )
        .unwrap()
    }
}

fn quick() -> Settings {
    Settings {
        timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            initial: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            deadline: Duration::from_secs(30),
            max_attempts: 3,
        },
        ..Settings::default()
    }
}

async fn read(c: &Client, path: &str) -> staging_core::Result<staging_rest::Answer> {
    c.exchange(Call::new(Method::GET, c.url(&[path]))).await
}

#[tokio::test]
async fn a_429_with_retry_after_pauses_every_client_of_the_same_credential() {
    let p = Platform::start().await;
    p.then(429, &[("retry-after", "2")], "{}");
    let one = p.client("tok_canary_shared", quick());
    let two = p.client("tok_canary_shared", quick());
    let first = tokio::spawn(async move { read(&one, "a").await });
    let until = Instant::now() + Duration::from_secs(30);
    while p.seen().is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    read(&two, "b").await.expect("b after the window");
    first.await.unwrap().expect("a after the window");
    let seen = p.seen();
    let refused = seen[0].0;
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (t, line) in &seen[1..] {
        assert!(
            t.duration_since(refused) >= Duration::from_secs(2),
            "{line} arrived {:?} after a 429 with Retry-After: 2",
            t.duration_since(refused)
        );
    }
    // Another credential on the same platform is not paused by it.
    p.then(429, &[("retry-after", "30")], "{}");
    let other = p.client("tok_canary_other", quick());
    let shared = p.client("tok_canary_third", quick());
    let slow = tokio::spawn(async move { read(&other, "c").await });
    while p.seen().len() < 4 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    read(&shared, "d")
        .await
        .expect("a different token is not paused");
    slow.abort();
}

#[tokio::test]
async fn remaining_zero_pauses_until_the_rounded_down_reset_has_surely_passed() {
    let p = Platform::start().await;
    p.then(
        200,
        &[
            ("ratelimit-limit", "400"),
            ("ratelimit-remaining", "0"),
            ("ratelimit-reset", "1"),
        ],
        "{}",
    );
    let c = p.client("tok_remaining", quick());
    read(&c, "a").await.unwrap();
    read(&c, "b").await.unwrap();
    let seen = p.seen();
    // Reset 1 is "less than two seconds": the next request waits the full two.
    assert!(
        seen[1].0.duration_since(seen[0].0) >= Duration::from_secs(2),
        "{:?}",
        seen[1].0.duration_since(seen[0].0)
    );
    // The limit advertised on a read becomes the read budget of waits.
    let declared = staging_core::ReadBudget::per_minute(100, "declared");
    assert_eq!(c.budget().read_budget(declared).reads, 400);
}

#[tokio::test]
async fn a_retry_after_http_date_is_honoured() {
    let p = Platform::start().await;
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    p.then(429, &[("retry-after", &at)], "{}");
    let c = p.client("tok_date", quick());
    read(&c, "a").await.unwrap();
    let seen = p.seen();
    assert!(seen[1].0.duration_since(seen[0].0) >= Duration::from_secs(1));
}

#[tokio::test]
async fn rate_limit_waits_do_not_use_up_the_retries_of_transient_errors() {
    let p = Platform::start().await;
    for _ in 0..4 {
        p.then(429, &[("retry-after", "0")], "{}");
    }
    p.then(503, &[], "{}");
    p.then(502, &[], "{}");
    let c = p.client("tok_mixed", quick());
    // Three attempts for transient errors; the four 429s do not count.
    read(&c, "a")
        .await
        .expect("succeeds on the third transient attempt");
    assert_eq!(p.seen().len(), 7);
}

#[tokio::test]
async fn a_write_that_must_happen_once_is_not_sent_again_after_a_5xx_but_a_read_is() {
    let p = Platform::start().await;
    let c = p.client("tok_once", quick());
    p.then(503, &[], r#"{"message":"unavailable"}"#);
    let body = json!({"commit": "abc"});
    let err = c
        .exchange(Call::new(Method::POST, c.url(&["deploys"])).body(&body))
        .await
        .unwrap_err();
    assert!(staging_rest::ambiguous(&err), "{err}");
    assert_eq!(p.seen().len(), 1, "the deploy was sent once");
    // A 429 on the same write: refused, so sent again after the wait.
    p.then(429, &[("retry-after", "0")], "{}");
    c.exchange(Call::new(Method::POST, c.url(&["deploys"])).body(&body))
        .await
        .expect("sent again after a 429");
    assert_eq!(p.seen().len(), 3);
    // An idempotent write and a read are sent again after a 503.
    p.then(503, &[], "{}");
    c.exchange(
        Call::new(Method::PUT, c.url(&["env", "KEY"]))
            .body(&body)
            .safety(Safety::Idempotent),
    )
    .await
    .expect("PUT retried");
    p.then(503, &[], "{}");
    read(&c, "a").await.expect("read retried");
    assert_eq!(p.seen().len(), 7);
    // A 500 on a read is retried only where the platform says it is passing (Vercel).
    p.then(500, &[], "{}");
    let err = read(&c, "a").await.unwrap_err();
    assert!(err.is_retryable() && !staging_rest::refused(&err), "{err}");
    assert_eq!(p.seen().len(), 8);
}

#[tokio::test]
async fn a_body_over_the_cap_fails_clearly_and_is_not_read_again() {
    let p = Platform::start().await;
    p.then(200, &[], &"x".repeat(4096));
    let c = p.client(
        "tok_cap",
        Settings {
            max_body: 1024,
            ..quick()
        },
    );
    let err = read(&c, "big").await.unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("larger than 1 KiB") && shown.contains("GET /v1/big"),
        "{shown}"
    );
    assert!(!err.is_retryable(), "{err:?}");
    assert_eq!(p.seen().len(), 1);
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_deadline_fails_at_once_naming_the_wait() {
    let p = Platform::start().await;
    p.then(429, &[("retry-after", "600")], "{}");
    let c = p.client("tok_long", quick());
    let started = Instant::now();
    let err = read(&c, "a").await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert!(err.to_string().contains("retry after"), "{err}");
    // Not slept through: well under the 600 s asked for.
    assert!(started.elapsed() < Duration::from_secs(300));
    assert_eq!(p.seen().len(), 1);
}

/// A port that accepts connections and never answers; counts what it accepted.
fn silent_peer() -> (Url, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}/v1", listener.local_addr().unwrap())).unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = vec![];
        for c in listener.incoming() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(c);
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_silent_api_costs_one_bound_per_run_not_one_per_call_or_step() {
    let (url, accepted) = silent_peer();
    let host = format!("127.0.0.1:{}", url.port().unwrap());
    // One call with its retries may take 600 ms: two requests of 300 ms.
    let settings = Settings {
        timeout: Duration::from_millis(300),
        retry: RetryPolicy {
            initial: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
            deadline: Duration::from_millis(600),
            max_attempts: 8,
        },
        ..quick()
    };
    let client = || {
        Client::with_settings(
            API,
            url.clone(),
            SecretString::from("tok_silent_canary".to_owned()),
            Auth::Bearer,
            settings,
        )
        .unwrap()
    };
    // The isolation step's client: a request and its retry wait out the bound, the third
    // attempt is not sent.
    let isolation = client();
    let first = read(&isolation, "branches").await.unwrap_err();
    let shown = first.to_string();
    assert!(
        shown.contains(&host) && shown.contains("did not answer within 600ms"),
        "names the host and the bound: {shown}"
    );
    assert!(
        shown.contains("timed out waiting for the answer"),
        "names how: {shown}"
    );
    assert!(!first.is_retryable(), "not asked again: {first:?}");
    let asked = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(asked >= 1);
    // The secrets step's client of the same credential: fails at once, sends nothing.
    let secrets = client();
    let second = read(&secrets, "connection_uri").await.unwrap_err();
    let shown = second.to_string();
    assert!(
        shown.contains("GET /v1/connection_uri")
            && shown.contains(&host)
            && shown.contains("not asked again in this run"),
        "{shown}"
    );
    assert!(!shown.contains("tok_silent_canary"), "{shown}");
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        asked,
        "the dead host was not asked again"
    );
    assert!(
        matches!(second.class(), staging_core::ErrorClass::CannotProceed),
        "exit 3: {second:?}"
    );
}

#[tokio::test]
async fn an_anonymous_call_sends_no_credential_and_never_shows_its_secret_path() {
    let auth_seen: Arc<Mutex<Vec<bool>>> = Arc::default();
    let seen = auth_seen.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let seen = seen.clone();
        async move {
            seen.lock()
                .unwrap()
                .push(req.headers().contains_key("authorization"));
            (StatusCode::BAD_REQUEST, "refused").into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}/v1", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let c = Client::with_settings(
        API,
        base.clone(),
        SecretString::from("tok_anon_canary".to_owned()),
        Auth::Bearer,
        quick(),
    )
    .unwrap();
    let mut hook = base.clone();
    hook.set_path("/build_hooks/hook-secret-id-77");
    let err = c
        .exchange(Call::new(Method::POST, hook).anonymous("/build_hooks/(hook)"))
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("/build_hooks/(hook)"), "{shown}");
    assert!(
        !shown.contains("hook-secret-id-77"),
        "the hook's id leaked: {shown}"
    );
    assert_eq!(
        *auth_seen.lock().unwrap(),
        vec![false],
        "no credential sent"
    );
    // The same client sends its credential on its own calls.
    let _ = read(&c, "x").await;
    assert_eq!(*auth_seen.lock().unwrap(), vec![false, true]);
}

#[test]
fn an_invalid_status_of_the_api_is_a_spec_error_not_a_platform_failure() {
    const NETLIFY_LIKE: Api = Api {
        invalid_statuses: &[422],
        ..API
    };
    let h = staging_rest::RateLimitHeaders::default();
    let e = NETLIFY_LIKE.error_for_status(
        reqwest::StatusCode::UNPROCESSABLE_ENTITY,
        &h,
        "POST",
        "/sites",
        Some("createSite"),
        "name taken",
    );
    assert!(matches!(e, Error::ConfigInvalid { .. }), "{e:?}");
    assert!(e.to_string().contains("createSite") && e.to_string().contains("name taken"));
    let plain = API.error_for_status(
        reqwest::StatusCode::UNPROCESSABLE_ENTITY,
        &h,
        "POST",
        "/sites",
        None,
        "m",
    );
    assert!(
        matches!(
            plain,
            Error::Provider {
                retryable: false,
                ..
            }
        ),
        "{plain:?}"
    );
}
