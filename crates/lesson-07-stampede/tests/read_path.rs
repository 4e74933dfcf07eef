//! The read path per strategy: the API's answers, XFetch's early
//! recompute, negative entries, jittered TTLs, a lease a writer revoked,
//! and a dead Redis. Counts and values, never timings.

mod common;

use std::time::Duration;

use common::{Lab, eventually, get};
use lesson_07_stampede::entry::{Entry, now_ms};
use lesson_07_stampede::metrics::{DB_QUERIES, EARLY, FILLS_REFUSED, HITS, NEGATIVE_HITS};
use lesson_07_stampede::store::{self, Found};
use lesson_07_stampede::{Strategy, read};

#[tokio::test]
async fn every_strategy_serves_the_api_miss_then_hit() {
    let lab = Lab::new().await;
    for strategy in Strategy::ALL {
        let mut settings = lab.settings(strategy);
        settings.key_prefix = format!("{}{}:", settings.key_prefix, strategy.name());
        let a = lab.instance(settings);
        let first = get(&a, 7).await;
        assert_eq!(first.status, 200, "{}: {}", strategy.name(), first.body);
        assert_eq!(first.header("x-cache"), "MISS", "{}", strategy.name());
        assert_eq!(first.json()["name"], "User 7");
        let second = get(&a, 7).await;
        assert_eq!(second.header("x-cache"), "HIT", "{}", strategy.name());
        assert_eq!(second.body, first.body);
        assert_eq!(a.state.metrics.value(DB_QUERIES), 1, "{}", strategy.name());

        for bad in ["abc", "-1", "0", "99999999999999999999999"] {
            let r = lab::testing::call(a.router(), "GET", &format!("/users/{bad}"), None).await;
            assert_eq!(r.status, 400, "/users/{bad}: {}", r.body);
            assert!(r.json()["error"].is_string(), "a JSON error: {}", r.body);
        }
        let unknown = get(&a, 5_000_000).await;
        assert_eq!(unknown.status, 404, "{}", unknown.body);
        assert!(unknown.json()["error"].is_string());
        assert_eq!(
            a.state.metrics.value(DB_QUERIES),
            2,
            "a 400 queries nothing"
        );
        let metrics = lab::testing::call(a.router(), "GET", "/metrics", None).await;
        assert!(
            metrics.body.contains("cache_hits_total 1"),
            "{}",
            metrics.body
        );
    }
}

/// Writes `entry` under user `id`'s key, living an hour in Redis whatever
/// its own expiry says (so a test can put that expiry anywhere).
async fn plant(lab: &Lab, id: i64, entry: &Entry) {
    let mut redis = lab.redis().await;
    let json = serde_json::to_string(entry).expect("serialises");
    lab::testing::set_test_key(&mut redis, &lab.key(id), &json)
        .await
        .expect("SET");
}

fn user(id: i64, name: &str) -> lab::users::User {
    lab::users::User {
        id,
        name: name.into(),
        email: format!("user{id}@example.com"),
    }
}

#[tokio::test]
async fn xfetch_recomputes_an_entry_past_its_own_expiry_and_leaves_a_far_one_alone() {
    let lab = Lab::new().await;
    let x = lab.instance(lab.settings(Strategy::XFetch));
    // Far from its expiry (an hour left, Δ = 1 ms): the chance of an early
    // recompute is e^(-3.6 million), i.e. none.
    let far = Entry {
        user: Some(user(3, "Planted")),
        delta_ms: 1,
        expiry_ms: now_ms() + 3_600_000,
    };
    plant(&lab, 3, &far).await;
    for _ in 0..50 {
        let r = get(&x, 3).await;
        assert_eq!(r.header("x-cache"), "HIT");
        assert_eq!(r.json()["name"], "Planted");
    }
    assert_eq!(x.state.metrics.value(DB_QUERIES), 0);

    // Its expiry passed (Redis still holds it: the planted key lives an
    // hour): `now ≥ expiry` recomputes whatever the draw.
    let due = Entry {
        expiry_ms: now_ms().saturating_sub(1),
        ..far.clone()
    };
    plant(&lab, 3, &due).await;
    let r = get(&x, 3).await;
    assert_eq!(r.header("x-cache"), "EARLY");
    assert_eq!(r.json()["name"], "User 3", "the database's value");
    assert_eq!(x.state.metrics.value(EARLY), 1);
    assert_eq!(x.state.metrics.value(DB_QUERIES), 1);
    assert_eq!(get(&x, 3).await.header("x-cache"), "HIT", "refilled, fresh");

    // The naive strategy ignores the entry's own expiry: Redis's TTL decides.
    plant(&lab, 3, &due).await;
    let n = lab.instance(lab.settings(Strategy::Naive));
    let r = get(&n, 3).await;
    assert_eq!(r.header("x-cache"), "HIT");
    assert_eq!(r.json()["name"], "Planted");
}

#[tokio::test]
async fn a_negative_entry_expires_and_the_user_is_found_once_it_exists() {
    let lab = Lab::new().await;
    let id = 900_001;
    let mut settings = lab.settings(Strategy::SingleFlight);
    // Long enough for the 21 requests and the INSERT below to happen
    // well within it on a loaded machine; the test then waits it out.
    settings.negative_ttl = Duration::from_secs(3);
    let a = lab.instance(settings);
    assert_eq!(get(&a, id).await.header("x-cache"), "MISS");
    for _ in 0..20 {
        let r = get(&a, id).await;
        assert_eq!(r.status, 404, "{}", r.body);
        assert_eq!(r.header("x-cache"), "HIT", "the absence is cached");
    }
    assert_eq!(
        a.state.metrics.value(DB_QUERIES),
        1,
        "one query for 21 requests"
    );
    assert_eq!(a.state.metrics.value(NEGATIVE_HITS), 20);

    // The user is created: the negative entry still answers until it expires.
    sqlx::query("INSERT INTO users (id, name, email, created_at) VALUES ($1, 'Newcomer', 'new@example.com', now())")
        .bind(id)
        .execute(lab.servers.schema.pool())
        .await
        .expect("INSERT");
    assert_eq!(get(&a, id).await.status, 404, "not yet: the entry lives on");
    let mut redis = lab.redis().await;
    let key = lab.key(id);
    eventually(
        "the negative entry expired",
        Duration::from_secs(10),
        || {
            let (mut redis, key) = (redis.clone(), key.clone());
            async move {
                let exists: i64 = redis::cmd("EXISTS")
                    .arg(&key)
                    .query_async(&mut redis)
                    .await
                    .expect("EXISTS");
                exists == 0
            }
        },
    )
    .await;
    let found = get(&a, id).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.json()["name"], "Newcomer");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("PTTL");
    assert!(
        pttl > 1_000,
        "a user gets the full TTL, not the negative one: {pttl} ms"
    );

    // Off: every request for a missing id is a query.
    let mut off = lab.settings(Strategy::SingleFlight);
    off.negative_ttl = Duration::ZERO;
    let b = lab.instance(off);
    for _ in 0..5 {
        assert_eq!(get(&b, 900_002).await.status, 404);
    }
    assert_eq!(b.state.metrics.value(DB_QUERIES), 5);
    assert_eq!(b.state.metrics.value(HITS), 0);
}

#[tokio::test]
async fn jittered_entries_expire_at_different_times_within_the_ttl() {
    let lab = Lab::new().await;
    let mut settings = lab.settings(Strategy::Naive);
    settings.ttl = Duration::from_secs(60);
    settings.jitter = 0.5;
    let a = lab.instance(settings);
    let mut redis = lab.redis().await;
    let mut ttls = Vec::new();
    for id in 1..=20 {
        assert_eq!(get(&a, id).await.status, 200);
        let pttl: i64 = redis::cmd("PTTL")
            .arg(lab.key(id))
            .query_async(&mut redis)
            .await
            .expect("PTTL");
        assert!(
            pttl > 29_000 && pttl <= 60_000,
            "user {id}: {pttl} ms is outside (30 s, 60 s]"
        );
        ttls.push(pttl / 1000);
    }
    ttls.sort_unstable();
    ttls.dedup();
    assert!(ttls.len() > 5, "twenty entries, spread: {ttls:?}");
}

#[tokio::test]
async fn a_writer_that_deletes_the_lease_makes_the_late_fill_a_no_op() {
    let lab = Lab::new().await;
    let a = lab.instance(lab.settings(Strategy::Lease));
    let state = &a.state;
    let token = store::new_token();
    assert!(matches!(
        store::read_or_lease(state, 5, &token).await,
        Some(Found::Lease)
    ));
    // Another reader waits while the lease is held.
    assert!(matches!(
        store::read_or_lease(state, 5, &store::new_token()).await,
        Some(Found::Busy)
    ));
    // The holder has read the old row; a writer changes it and
    // invalidates: entry and lease both go.
    let old = Entry {
        user: Some(user(5, "Old name")),
        delta_ms: 1,
        expiry_ms: now_ms() + 60_000,
    };
    assert!(store::invalidate(state, 5).await);
    let stored = store::fill_with_lease(state, 5, &old, Duration::from_secs(60), &token).await;
    assert!(!stored, "the late fill is refused");
    assert_eq!(state.metrics.value(FILLS_REFUSED), 1);
    let r = get(&a, 5).await;
    assert_eq!(r.header("x-cache"), "MISS", "nothing old was left to hit");
    assert_eq!(r.json()["name"], "User 5");
}

#[tokio::test]
async fn a_dead_redis_costs_a_query_per_request_never_a_hang_or_an_error() {
    let lab = Lab::new().await;
    for strategy in Strategy::ALL {
        let settings = lab.settings(strategy);
        // Nothing listens on port 1: every Redis call fails at once.
        let a = lesson_07_stampede::Instance::start(
            lab.servers.schema.pool().clone(),
            "redis://127.0.0.1:1/",
            settings,
            std::sync::Arc::new(lesson_07_stampede::db::Queries::new()),
        )
        .expect("starts without Redis");
        for _ in 0..3 {
            let r = tokio::time::timeout(Duration::from_secs(20), get(&a, 9))
                .await
                .unwrap_or_else(|_| panic!("{}: a request hung", strategy.name()));
            assert_eq!(r.status, 200, "{}: {}", strategy.name(), r.body);
        }
        assert_eq!(a.state.metrics.value(DB_QUERIES), 3, "{}", strategy.name());
        let (entry, _) = read(&a.state, 9).await.expect("reads");
        assert_eq!(entry.user.map(|u| u.id), Some(9));
    }
}

#[tokio::test]
async fn a_failed_early_refresh_serves_the_entry_in_hand() {
    let lab = Lab::new().await;
    let mut settings = lab.settings(Strategy::XFetch);
    // Every load times out: the database is as good as down.
    settings.latency = Duration::from_secs(3);
    settings.db_timeout = Duration::from_millis(300);
    let x = lab.instance(settings);
    let due = Entry {
        user: Some(user(4, "Cached")),
        delta_ms: 50,
        expiry_ms: now_ms().saturating_sub(1),
    };
    plant(&lab, 4, &due).await;
    let r = get(&x, 4).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["name"], "Cached", "the valid entry, not a 503");
    assert_eq!(x.state.metrics.value(EARLY), 1, "it did try");
}

#[tokio::test]
async fn a_cancelled_lease_holder_still_fills_and_frees_the_key() {
    let lab = Lab::new().await;
    let mut settings = lab.settings(Strategy::Lease);
    settings.latency = Duration::from_millis(500);
    let a = lab.instance(settings);
    let holder = {
        let a = a.clone();
        tokio::spawn(async move { get(&a, 6).await })
    };
    let queries = a.state.queries.clone();
    eventually("the holder's load started", Duration::from_secs(10), || {
        let q = queries.clone();
        async move { q.total() == 1 }
    })
    .await;
    holder.abort(); // its client hung up
    assert!(holder.await.is_err_and(|e| e.is_cancelled()));
    let mut redis = lab.redis().await;
    let (key, lease) = (
        lab.key(6),
        store::lease_key(&a.state.settings.key_prefix, 6),
    );
    eventually(
        "the holder's task filled the entry",
        Duration::from_secs(10),
        || {
            let (mut redis, key) = (redis.clone(), key.clone());
            async move {
                let n: i64 = redis::cmd("EXISTS")
                    .arg(&key)
                    .query_async(&mut redis)
                    .await
                    .expect("EXISTS");
                n == 1
            }
        },
    )
    .await;
    let left: Option<String> = redis::cmd("GET")
        .arg(&lease)
        .query_async(&mut redis)
        .await
        .expect("GET");
    assert_eq!(left, None, "the fill gave the lease back");
    let r = get(&a, 6).await;
    assert_eq!(r.header("x-cache"), "HIT");
    assert_eq!(a.state.queries.total(), 1, "one load in all");
}

#[tokio::test]
async fn an_unreadable_value_is_overwritten_under_a_lease_too() {
    let lab = Lab::new().await;
    let a = lab.instance(lab.settings(Strategy::Lease));
    let mut redis = lab.redis().await;
    lab::testing::set_test_key(&mut redis, &lab.key(2), "not an entry")
        .await
        .expect("SET");
    let r = get(&a, 2).await;
    assert_eq!((r.status.as_u16(), r.header("x-cache")), (200, "MISS"));
    let r = get(&a, 2).await;
    assert_eq!(r.header("x-cache"), "HIT", "the fill replaced it");
    assert_eq!(a.state.metrics.value(DB_QUERIES), 1);
}

#[tokio::test]
async fn with_negative_caching_off_a_lease_still_answers_its_waiters_404() {
    let lab = Lab::new().await;
    let mut settings = lab.settings(Strategy::Lease);
    settings.negative_ttl = Duration::ZERO;
    settings.latency = Duration::from_millis(300);
    let a = lab.instance(settings);
    let replies = common::herd(&a, 900_005, 20).await;
    assert!(
        replies.iter().all(|r| r.status == 404),
        "every answer a 404"
    );
    assert_eq!(
        a.state.metrics.value(DB_QUERIES),
        1,
        "the holder's 404 answered its waiters: no query each, one after another"
    );
    // Nothing cached: the next request, after the mark, asks again.
    let redis = lab.redis().await;
    let lease = store::lease_key(&a.state.settings.key_prefix, 900_005);
    eventually("the mark expired", Duration::from_secs(10), || {
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
    assert_eq!(get(&a, 900_005).await.status, 404);
    assert_eq!(a.state.metrics.value(DB_QUERIES), 2);
}
