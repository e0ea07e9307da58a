//! The credential's shared rate budget and retries that never repeat a write, on Render's
//! stand-in: Prism in front of the stateful fake where the contract matters, the fake alone
//! where a test needs a fake of its own (its own rate limits) or abandons a request.
//!
//! Nothing here is timed against a stopwatch: orderings are asserted from the instants the
//! fake saw requests arrive ("not before N s after the 429"), and bounds loosely.

mod support;

use std::sync::Arc;
use std::time::Duration;

use staging_core::{Cadence, DeployRequest, Provider, ProviderExt, RetryProvider, ServiceHandle};
use staging_provider_render::{READ_BUDGET, RateLimits, RenderBuilder, RenderProvider, ServiceRef};
use support::{API_KEY, Fake, Fault, Kind, builder, quick_retries, stand_in};
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(60);

async fn locate(p: &RenderProvider, name: &str) -> ServiceHandle {
    p.locate("staging", name).await.expect("locate")
}

/// The provider the CLI builds (client retries inside, the read-only whole-call retry
/// outside), with a short request bound so that a timeout is cheap.
fn wrapped(url: &str, names: &[(&str, &str)]) -> (RenderProvider, RetryProvider<RenderProvider>) {
    let mut b = builder(url)
        .with_timeout(Duration::from_secs(1))
        .with_retry(quick_retries());
    for (name, id) in names {
        b = b.with_service(*name, ServiceRef::Id((*id).to_owned()));
    }
    let p = b.build().unwrap();
    (p.clone(), RetryProvider::new(p, quick_retries()))
}

fn deploy_posts(fake: &Fake, id: &str) -> usize {
    fake.requests_for(id)
        .iter()
        .filter(|r| r.starts_with("POST") && r.contains(&format!("/services/{id}/deploys ")))
        .count()
}

#[tokio::test]
async fn a_status_read_answered_429_503_or_timeout_never_sends_a_second_deploy() {
    let fake = &stand_in().fake;
    let cases: [(&str, Fault, bool); 3] = [
        ("429", Fault::Status(429, Some(1)), true),
        ("503", Fault::Status(503, None), true),
        // A timeout straight at the fake: an abandoned request would reach Prism's log at
        // a moment no test controls.
        ("timeout", Fault::Delay(Duration::from_secs(3)), false),
    ];
    for (label, fault, via_prism) in cases {
        let name = format!("worker-read-{label}");
        let id = fake.add_service(&name, Kind::Worker);
        let url = if via_prism {
            stand_in().prism.url()
        } else {
            fake.url()
        };
        let (raw, p) = wrapped(&url, &[(&name, &id)]);
        let h = locate(&raw, &name).await;
        let target = staging_core::testkit::target(&h);
        // Queued (202, no body): the deploy call itself reads the deploy list after the
        // trigger, and that read is the one that fails.
        fake.queue_next_deploy(&id);
        fake.inject(&id, Fault::Pass);
        fake.inject(&id, fault.clone());
        let d = p
            .deploy(&target, &DeployRequest::commit("abcabc1234567"))
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            deploy_posts(fake, &id),
            1,
            "{label}: {:#?}",
            fake.requests_for(&id)
        );
        // And a status read of the deploy, while it is being waited for.
        fake.inject(&id, fault.clone());
        p.wait_until_live(&h, &d.id, WAIT, &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            deploy_posts(fake, &id),
            1,
            "{label}: {:#?}",
            fake.requests_for(&id)
        );
        assert_eq!(fake.deploys_of(&id), 1, "{label}");
    }
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_deploy_without_an_answer_is_read_back_and_sent_again_only_when_it_did_not_start() {
    let fake = &stand_in().fake;
    // 503: Render did not start it; the read-back finds nothing, the trigger is sent again.
    let id = fake.add_service("worker-post-503", Kind::Worker);
    let (raw, p) = wrapped(&stand_in().prism.url(), &[("worker-post-503", &id)]);
    let h = locate(&raw, "worker-post-503").await;
    fake.inject(&id, Fault::Status(503, None));
    p.deploy(
        &staging_core::testkit::target(&h),
        &DeployRequest::commit("dddd1234567"),
    )
    .await
    .expect("deploy after a 503");
    assert_eq!(deploy_posts(fake, &id), 2);
    assert_eq!(fake.deploys_of(&id), 1);

    // No answer within the bound, and Render never got to it (the abandoned request is
    // dropped): nothing listed, so it is sent again, once.
    let id = fake.add_service("worker-post-dropped", Kind::Worker);
    let (raw, p) = wrapped(&fake.url(), &[("worker-post-dropped", &id)]);
    let h = locate(&raw, "worker-post-dropped").await;
    fake.inject(&id, Fault::Delay(Duration::from_secs(3)));
    p.deploy(
        &staging_core::testkit::target(&h),
        &DeployRequest::commit("ffff1234567"),
    )
    .await
    .expect("sent again after the read-back found nothing");
    assert_eq!(deploy_posts(fake, &id), 2);
    assert_eq!(fake.deploys_of(&id), 1);

    // No answer within the bound, but Render did start it: found by its commit, not re-sent.
    let id = fake.add_service("worker-post-slow", Kind::Worker);
    let (raw, p) = wrapped(&fake.url(), &[("worker-post-slow", &id)]);
    let h = locate(&raw, "worker-post-slow").await;
    fake.inject(&id, Fault::AnswerLate(Duration::from_secs(3)));
    let d = p
        .deploy(
            &staging_core::testkit::target(&h),
            &DeployRequest::commit("eeee1234567"),
        )
        .await
        .expect("the started deploy is found");
    assert_eq!(d.commit.as_deref(), Some("eeee1234567"));
    assert_eq!(deploy_posts(fake, &id), 1, "{:#?}", fake.requests_for(&id));
    assert_eq!(fake.deploys_of(&id), 1);
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_429_with_retry_after_pauses_every_request_of_the_credential() {
    let fake = &stand_in().fake;
    let a = fake.add_service("worker-pause-a", Kind::Worker);
    let b = fake.add_service("worker-pause-b", Kind::Worker);
    let (raw, _) = wrapped(
        &stand_in().prism.url(),
        &[("worker-pause-a", &a), ("worker-pause-b", &b)],
    );
    let ha = locate(&raw, "worker-pause-a").await;
    let hb = locate(&raw, "worker-pause-b").await;
    // Another provider built with the same key and address: the same budget.
    let (other, _) = wrapped(&stand_in().prism.url(), &[("worker-pause-b", &b)]);
    const N: u64 = 2;
    fake.inject(&a, Fault::Status(429, Some(N)));
    let first = {
        let raw = raw.clone();
        tokio::spawn(async move { raw.env_vars(&ha).await })
    };
    // Wait (bounded) until the 429 was answered, and a little for it to be read.
    let until = Instant::now() + WAIT;
    while fake.pending_faults(&a) > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = other.env_vars(&hb).await;
    first
        .await
        .unwrap()
        .expect("service a is read after the window");
    second.expect("service b is read after the window");
    let times = fake.all_requests_with_times();
    let refused_at = times
        .iter()
        .find(|(_, r)| r.contains(&a) && r.contains("env-vars"))
        .map(|(t, _)| *t)
        .expect("a's 429");
    let after: Vec<_> = times
        .iter()
        .filter(|(t, r)| *t > refused_at && (r.contains(&a) || r.contains(&b)))
        .collect();
    assert!(after.len() >= 2, "{after:#?}");
    for (t, r) in after {
        assert!(
            t.duration_since(refused_at) >= Duration::from_secs(N),
            "{r} arrived {:?} after the 429 with Retry-After: {N}",
            t.duration_since(refused_at)
        );
    }
}

/// A provider as users get it (Render's declared budget and poll floor), on a fake of its own.
fn plain(fake: &Fake, names: &[(String, String)]) -> RenderProvider {
    let mut b = RenderBuilder::new()
        .with_api_key(API_KEY.to_owned())
        .with_base_url(fake.url())
        .with_retry(quick_retries())
        .with_rate_limits(RateLimits {
            deploys_per_minute: 1000,
            writes_per_minute: 1000,
        });
    for (name, id) in names {
        b = b.with_service(name.clone(), ServiceRef::Id(id.clone()));
    }
    b.build().unwrap()
}

#[tokio::test]
async fn five_services_are_seen_live_promptly_within_a_quarter_of_render_s_advertised_reads() {
    let fake = Fake::start();
    fake.advertise_read_limit(400);
    let names: Vec<(String, String)> = (0..5)
        .map(|i| {
            let name = format!("web-{i}");
            let id = fake.add_service(&name, Kind::Worker);
            fake.plan_next_deploy_live_after(&id, Duration::from_secs(4 + i));
            (name, id)
        })
        .collect();
    let p = plain(&fake, &names);
    let mut handles = vec![];
    for (name, _) in &names {
        handles.push(locate(&p, name).await);
    }
    let cadence = Arc::new(Cadence::for_provider(&p));
    assert_eq!(cadence.budget().reads, 400, "{:?}", cadence.budget());
    assert!(cadence.steady_for(5).0 <= Duration::from_secs(5));
    let started = Instant::now();
    let before = fake.all_requests_with_times().len();
    let mut waits = vec![];
    for h in &handles {
        let d = p
            .deploy(
                &staging_core::testkit::target(h),
                &DeployRequest::commit("f00d1234567"),
            )
            .await
            .unwrap();
        let (p, h, cadence) = (p.clone(), h.clone(), cadence.clone());
        waits.push(tokio::spawn(async move {
            let _guard = cadence.join();
            p.wait_until_live_paced(&h, &d.id, WAIT, &cadence, &mut |_| {})
                .await
        }));
    }
    for w in waits {
        w.await.unwrap().expect("live");
    }
    let elapsed = started.elapsed();
    for (name, id) in &names {
        let t = fake.timed_deploy(id).expect("timed");
        let late = t.seen_live.expect("seen live") - t.live_at;
        assert!(
            late <= Duration::from_secs(5),
            "{name} seen live {late:?} late"
        );
    }
    // Within 25 % of 400 a minute (plus each service's first poll and some slack).
    let reads = fake.all_requests_with_times().len() - before - names.len();
    let allowed = 100.0 * elapsed.as_secs_f64() / 60.0 * 1.25 + 10.0;
    assert!(
        (reads as f64) <= allowed,
        "{reads} reads in {elapsed:?}, allowed {allowed:.0}"
    );

    // With no headers, the declared budget stands.
    let quiet = Fake::start();
    let id = quiet.add_service("web", Kind::Worker);
    let p = plain(&quiet, &[("web".to_owned(), id)]);
    locate(&p, "web").await;
    assert_eq!(p.read_budget(), READ_BUDGET);
}

#[tokio::test]
async fn twelve_deploys_under_a_limit_of_ten_a_window_all_start_and_go_live() {
    let fake = Fake::start();
    const WINDOW: Duration = Duration::from_secs(3);
    fake.limit_deploys(10, WINDOW);
    let names: Vec<(String, String)> = (0..12)
        .map(|i| {
            let name = format!("svc-{i}");
            let id = fake.add_service(&name, Kind::Worker);
            (name, id)
        })
        .collect();
    let raw = plain(&fake, &names);
    let p = Arc::new(RetryProvider::new(raw.clone(), quick_retries()));
    let mut handles = vec![];
    for (name, _) in &names {
        handles.push(locate(&raw, name).await);
    }
    let mut deploys = vec![];
    for h in &handles {
        let (p, raw, h) = (p.clone(), raw.clone(), h.clone());
        deploys.push(tokio::spawn(async move {
            let d = p
                .deploy(
                    &staging_core::testkit::target(&h),
                    &DeployRequest::commit("aaaa1234567"),
                )
                .await?;
            p.wait_until_live(&h, &d.id, WAIT, &mut |_| {}).await?;
            raw.verify_live_commit(&h, "aaaa1234567").await
        }));
    }
    for d in deploys {
        d.await
            .unwrap()
            .expect("every service deployed, waited for and verified");
    }
    let (refused, accepted) = fake.deploy_limit_log();
    assert_eq!(accepted.len(), 12, "{refused:?}");
    // Each deploy over the limit is refused at most once: it waits for the window (the
    // reset rounded down, plus a second), it does not hammer.
    assert!(
        !refused.is_empty() && refused.len() <= 2,
        "{} refusals",
        refused.len()
    );
    let window_start = accepted[0];
    for t in &accepted[10..] {
        assert!(
            t.duration_since(window_start) >= WINDOW,
            "a deploy beyond the limit arrived {:?} into a {WINDOW:?} window",
            t.duration_since(window_start)
        );
    }
}
