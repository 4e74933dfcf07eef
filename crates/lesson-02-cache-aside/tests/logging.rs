//! What lesson 2 writes to the log under load and during a Redis outage,
//! counted by a subscriber of the test's own. A file of its own: the
//! warnings are throttled per call site for the whole process, so another
//! test failing Redis calls at the same time would change the count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lab::Kind;
use lab::testing::{SharedServers, call};
use lesson_02_cache_aside::metrics::REDIS_ERRORS;
use lesson_02_cache_aside::router;
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

mod common;

/// Counts the lesson's own events by level: its own target, and
/// `lab::log`, where `Throttle` writes the warnings it lets through (not
/// the harness's other lines, not sqlx's).
#[derive(Clone, Default)]
struct Counts {
    info_or_above_but_warn: Arc<AtomicU64>,
    warn: Arc<AtomicU64>,
}

impl<S: Subscriber> Layer<S> for Counts {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let target = meta.target();
        if !(target.starts_with("lesson_02_cache_aside") || target == "lab::log") {
            return;
        }
        match *meta.level() {
            Level::WARN => self.warn.fetch_add(1, Ordering::Relaxed),
            Level::INFO | Level::ERROR => {
                self.info_or_above_but_warn.fetch_add(1, Ordering::Relaxed)
            }
            _ => 0,
        };
    }
}

/// Issue 18, defect 9. Reads write no INFO line per request, and a Redis
/// outage writes one warning per call site (GET and SET), not two per
/// request; the metric still counts every failure.
#[tokio::test]
async fn a_redis_outage_is_a_few_warnings_not_two_per_request() {
    if !lab::spawn::can_spawn(Kind::Redis, "a_redis_outage_is_a_few_warnings") {
        return;
    }
    let counts = Counts::default();
    // The test's runtime runs on this thread, so a thread-local subscriber
    // sees every event of every request below.
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(counts.clone()));

    let s = SharedServers::new(50).await.expect("shared servers");
    let (mut redis, state) = common::with_private_redis(&s).await;
    for _ in 0..10 {
        call(router(state.clone()), "GET", "/users/3", None).await;
    }
    assert_eq!(
        counts.info_or_above_but_warn.load(Ordering::Relaxed),
        0,
        "hits and misses are logged at DEBUG, not once per request at INFO"
    );

    redis.stop().await.expect("stop Redis");
    let outage = std::time::Instant::now();
    let requests = 20;
    for id in 1..=requests {
        let r = call(router(state.clone()), "GET", &format!("/users/{id}"), None).await;
        assert_eq!(r.status, axum::http::StatusCode::OK, "{}", r.body);
    }
    let failures = state.metrics.counter(REDIS_ERRORS);
    let warnings = counts.warn.load(Ordering::Relaxed);
    // One line per call site (GET, SET) per throttle period that the
    // outage lasted: a slower machine only raises the allowance, so the
    // clock cannot flip the verdict, while one line per failure (two per
    // request) exceeds it.
    let periods = 1 + outage.elapsed().as_secs() / 5;
    let allowed = 2 * periods;
    assert!(
        failures >= requests,
        "every failed Redis call is counted: {failures}"
    );
    assert!(
        (1..=allowed).contains(&warnings),
        "{failures} Redis failures in {requests} requests over {periods} throttle period(s) \
         wrote {warnings} warnings; one per call site (GET, SET) per period is enough"
    );
}
