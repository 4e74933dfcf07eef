//! The herd, counted by PostgreSQL itself (`pg_stat_statements` on a
//! private server): fifty concurrent misses of one key are fifty queries
//! with lesson 2's cache-aside, and one with single-flight or a lease.
//! Counts, never timings.

mod common;

use std::time::Duration;

use common::{Counting, Lab, count, eventually, get, herd};
use lesson_07_stampede::Strategy;
use lesson_07_stampede::metrics::{COALESCED, DB_QUERIES, HITS};

/// Long enough that fifty requests started together all miss before the
/// first load fills the key: the herd's window.
const LOAD: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_query_per_expiry_with_single_flight_and_leases() {
    let Some(lab) = Counting::new("one_query_per_expiry_with_single_flight_and_leases").await
    else {
        return;
    };
    for strategy in [Strategy::SingleFlight, Strategy::Lease] {
        let a = lab.instance(lab.settings(strategy, LOAD)).await;
        let mut redis = lab::testing::redis_conn(&lab.redis_url)
            .await
            .expect("Redis");
        lab.pg.reset().await.expect("reset");
        for expiry in 1..=2 {
            let replies = herd(&a, 7, 50).await;
            assert_eq!(
                replies.iter().filter(|r| r.status == 200).count(),
                50,
                "{}: every request answered",
                strategy.name()
            );
            assert_eq!(
                count(&replies, 200, "MISS"),
                1,
                "{}: one loader",
                strategy.name()
            );
            assert_eq!(
                lab.loads().await,
                expiry,
                "{}: PostgreSQL ran one load per expiry",
                strategy.name()
            );
            // The expiry, without waiting for the TTL.
            let key = lesson_07_stampede::store::key(&a.state.settings.key_prefix, 7);
            let _: () = redis::cmd("DEL")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .expect("DEL");
        }
        assert_eq!(a.state.metrics.value(DB_QUERIES), 2, "{}", strategy.name());
        // The 49 others either awaited the load (most) or, arriving after
        // its fill, hit: none queried.
        assert_eq!(
            a.state.metrics.value(COALESCED) + a.state.metrics.value(HITS),
            98,
            "{}",
            strategy.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_protection_the_herd_reaches_the_database() {
    let Some(lab) = Counting::new("without_protection_the_herd_reaches_the_database").await else {
        return;
    };
    let a = lab.instance(lab.settings(Strategy::Naive, LOAD)).await;
    lab.pg.reset().await.expect("reset");
    let replies = herd(&a, 7, 50).await;
    assert_eq!(replies.iter().filter(|r| r.status == 200).count(), 50);
    let loads = lab.loads().await;
    // Every request that missed before the first fill loaded: with 300
    // ms loads and fifty requests released together, far more than one
    // (the pool's 10 connections are the most that run at once, and the
    // rest queue for them, each to run its own query).
    assert!(loads >= 10, "the naive herd made only {loads} queries");
    assert_eq!(loads as u64, a.state.metrics.value(DB_QUERIES));
    assert_eq!(
        a.state.queries.overlapping() + 1,
        loads as u64,
        "all but the first overlapped another load of the same user"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_load_answers_every_waiter_and_the_next_request_retries() {
    let lab = Lab::new().await;
    for strategy in [Strategy::SingleFlight, Strategy::Lease] {
        // Every load outlives the database timeout: it fails, after 1 s,
        // with every request of the herd waiting for it.
        let mut settings = lab.settings(strategy);
        settings.key_prefix = format!("{}{}:", settings.key_prefix, strategy.name());
        settings.latency = Duration::from_secs(3);
        settings.db_timeout = Duration::from_secs(1);
        let a = lab.instance(settings);
        let replies = herd(&a, 8, 20).await;
        assert_eq!(
            replies.iter().filter(|r| r.status == 503).count(),
            20,
            "{}: every request got the load's error: {:?}",
            strategy.name(),
            replies.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        assert!(
            replies.iter().all(|r| r.json()["error"].is_string()),
            "JSON error bodies"
        );
        assert_eq!(
            a.state.metrics.value(DB_QUERIES),
            1,
            "{}: one load for twenty requests; none of them retried it",
            strategy.name()
        );
        let lease = lesson_07_stampede::store::lease_key(&a.state.settings.key_prefix, 8);
        let mut redis = lab.redis().await;
        if strategy == Strategy::Lease {
            let held: Option<String> = redis::cmd("GET")
                .arg(&lease)
                .query_async(&mut redis)
                .await
                .expect("GET");
            assert_eq!(
                held.as_deref(),
                Some("failed"),
                "the lease says so, for a second"
            );
            eventually("the failure mark expired", Duration::from_secs(10), || {
                let (mut redis, lease) = (redis.clone(), lease.clone());
                async move {
                    let held: Option<String> = redis::cmd("GET")
                        .arg(&lease)
                        .query_async(&mut redis)
                        .await
                        .expect("GET");
                    held.is_none()
                }
            })
            .await;
        }
        // The next request loads again (and fails again): the error was
        // not kept as if it were the answer.
        assert_eq!(get(&a, 8).await.status, 503);
        assert_eq!(a.state.metrics.value(DB_QUERIES), 2, "{}", strategy.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_request_does_not_cancel_the_load_or_wedge_the_key() {
    let Some(lab) =
        Counting::new("a_cancelled_request_does_not_cancel_the_load_or_wedge_the_key").await
    else {
        return;
    };
    let a = lab
        .instance(lab.settings(Strategy::SingleFlight, LOAD * 2))
        .await;
    let first = {
        let a = a.clone();
        tokio::spawn(async move { get(&a, 9).await })
    };
    let queries = a.state.queries.clone();
    eventually(
        "the first request's load started",
        Duration::from_secs(10),
        || {
            let q = queries.clone();
            async move { q.total() == 1 }
        },
    )
    .await;
    first.abort(); // the client hung up
    assert!(first.await.is_err_and(|e| e.is_cancelled()));
    let second = get(&a, 9).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert!(
        matches!(second.header("x-cache"), "WAIT" | "HIT"),
        "it joined the load the cancelled request started, or found its fill: {}",
        second.header("x-cache")
    );
    assert_eq!(a.state.queries.total(), 1, "one load in all");
    assert!(a.state.flight.is_empty(), "no key left in flight");
}
