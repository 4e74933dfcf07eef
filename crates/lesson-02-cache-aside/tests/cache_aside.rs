//! Lesson 2 against real PostgreSQL and Redis. No test here depends on a
//! timing except the paused-Redis one, whose bound is 25 times the Redis
//! timeouts it checks and a twelfth of the pause. The write path's own
//! tests are in `writes.rs`.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use lab::Kind;
use lab::isolate::RedisPrefix;
use lab::testing::{CountingPostgres, Reply, SharedServers, call};
use lesson_02_cache_aside::metrics::{DB_QUERIES, HITS, MISSES, REDIS_ERRORS};
use lesson_02_cache_aside::{AppState, Settings, router, state};

mod common;

const USERS: i64 = 300;

fn settings(prefix: &str) -> Settings {
    Settings::for_tests(prefix)
}

/// A schema of this test's own, a key prefix of its own, shared servers.
type Shared = SharedServers;

async fn shared() -> Shared {
    lab::init_tracing();
    SharedServers::new(USERS).await.expect("shared servers")
}

/// Lesson 2's state over the shared servers, under the test's key prefix.
fn state_of(s: &Shared) -> AppState {
    state(
        s.schema.pool().clone(),
        &s.redis_url,
        settings(s.prefix.prefix()),
    )
    .expect("state")
}

async fn get(state: &AppState, uri: &str) -> Reply {
    call(router(state.clone()), "GET", uri, None).await
}

async fn put(state: &AppState, uri: &str, body: &str) -> Reply {
    call(router(state.clone()), "PUT", uri, Some(body)).await
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    lab::testing::redis_conn(url)
        .await
        .expect("Redis connection")
}

#[tokio::test]
async fn a_miss_then_a_hit_costs_one_database_query() {
    let s = shared().await;
    let state = state_of(&s);
    let first = get(&state, "/users/5").await;
    assert_eq!(
        (first.status, first.header("x-cache")),
        (StatusCode::OK, "MISS")
    );
    let second = get(&state, "/users/5").await;
    assert_eq!(
        (second.status, second.header("x-cache")),
        (StatusCode::OK, "HIT")
    );
    assert_eq!(
        first.json(),
        second.json(),
        "a hit returns exactly what the miss returned"
    );
    assert_eq!(second.header("content-type"), "application/json");
    assert_eq!(state.metrics.counter(DB_QUERIES), 1);
    assert_eq!(state.metrics.counter(MISSES), 1);
    assert_eq!(state.metrics.counter(HITS), 1);
}

/// `GET /metrics` through the router, as Prometheus would scrape it: a miss
/// and a hit show up as one of each.
#[tokio::test]
async fn metrics_show_a_miss_and_a_hit() {
    let s = shared().await;
    let state = state_of(&s);
    assert_eq!(get(&state, "/users/6").await.header("x-cache"), "MISS");
    assert_eq!(get(&state, "/users/6").await.header("x-cache"), "HIT");
    let scrape = get(&state, "/metrics").await;
    assert_eq!(scrape.status, StatusCode::OK);
    let lines: Vec<&str> = scrape.body.lines().collect();
    for want in [
        "cache_misses_total 1",
        "cache_hits_total 1",
        "db_queries_total 1",
    ] {
        assert!(lines.contains(&want), "no {want:?} in {}", scrape.body);
    }
    assert!(
        scrape
            .body
            .contains("get_user_duration_seconds_count{cache=\"hit\"} 1"),
        "{}",
        scrape.body
    );
}

/// The same, confirmed by PostgreSQL itself: a private instance with
/// pg_stat_statements loaded counts the lesson's query once.
#[tokio::test]
async fn postgres_confirms_one_query_for_a_miss_and_a_hit() {
    if !lab::spawn::can_spawn(
        lab::Kind::Postgres,
        "postgres_confirms_one_query_for_a_miss_and_a_hit",
    ) {
        return;
    }
    let pg = CountingPostgres::start(USERS)
        .await
        .expect("a counting PostgreSQL");
    let redis = lab::discover(Kind::Redis).await.expect("Redis");
    let prefix = RedisPrefix::new(redis.url());
    let state = state(pg.pool.clone(), redis.url(), settings(prefix.prefix())).expect("state");

    assert_eq!(get(&state, "/users/9").await.header("x-cache"), "MISS");
    assert_eq!(get(&state, "/users/9").await.header("x-cache"), "HIT");
    assert_eq!(get(&state, "/users/9").await.header("x-cache"), "HIT");
    let calls = pg
        .calls("SELECT id, name, email FROM users WHERE id = $1%")
        .await
        .expect("pg_stat_statements");
    assert_eq!(
        calls, 1,
        "PostgreSQL ran the user query once for a miss and two hits"
    );
}

#[tokio::test]
async fn the_key_is_user_id_with_a_ttl_of_at_most_60_s() {
    let s = shared().await;
    let state = state_of(&s);
    assert_eq!(get(&state, "/users/7").await.status, StatusCode::OK);
    let mut c = redis_conn(&s.redis_url).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(s.prefix.key("user:7"))
        .query_async(&mut c)
        .await
        .expect("TTL");
    assert!(
        ttl > 0 && ttl <= 60,
        "TTL of user:7 should be in (0, 60], got {ttl}"
    );
    let cached: String = redis::cmd("GET")
        .arg(s.prefix.key("user:7"))
        .query_async(&mut c)
        .await
        .expect("GET");
    let user: lab::users::User =
        serde_json::from_str(&cached).expect("the cached value is the user's JSON");
    assert_eq!(user.email, lab::seed::email_for(7));
}

#[tokio::test]
async fn a_put_deletes_the_key_and_the_next_read_sees_the_new_data() {
    let s = shared().await;
    let state = state_of(&s);
    get(&state, "/users/11").await;
    assert_eq!(get(&state, "/users/11").await.header("x-cache"), "HIT");

    let r = put(
        &state,
        "/users/11",
        r#"{"name":"Grace Hopper","email":"grace@example.com"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut c = redis_conn(&s.redis_url).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(s.prefix.key("user:11"))
        .query_async(&mut c)
        .await
        .expect("EXISTS");
    assert_eq!(exists, 0, "the PUT must delete user:11");

    let after = get(&state, "/users/11").await;
    assert_eq!(after.header("x-cache"), "MISS");
    assert_eq!(after.json()["name"], "Grace Hopper");
    assert_eq!(after.json()["email"], "grace@example.com");
}

#[tokio::test]
async fn bad_puts_are_400s_and_change_nothing() {
    let s = shared().await;
    let state = state_of(&s);
    for (body, why) in [
        ("{not json", "malformed JSON"),
        (r#"{"name":"X"}"#, "a missing field"),
        (
            r#"{"name":"X","email":"x@example.com","admin":true}"#,
            "an unknown field",
        ),
        (r#"{"name":42,"email":"x@example.com"}"#, "a wrong type"),
        (r#"{"name":"","email":"x@example.com"}"#, "an empty name"),
        (r#"{"name":"X","email":"not-an-email"}"#, "a bad email"),
    ] {
        let r = put(&state, "/users/13", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{why}: {}", r.body);
        assert!(r.json()["error"].is_string(), "{why}: {}", r.body);
    }
    let r = put(
        &state,
        "/users/abc",
        r#"{"name":"X","email":"x@example.com"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = put(
        &state,
        "/users/999999",
        r#"{"name":"X","email":"x@example.com"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let (name, email): (String, String) =
        sqlx::query_as("SELECT name, email FROM users WHERE id = 13")
            .fetch_one(s.schema.pool())
            .await
            .expect("row 13");
    assert_eq!(
        (name.as_str(), email),
        ("User 13", lab::seed::email_for(13)),
        "a rejected PUT must not write"
    );
}

#[tokio::test]
async fn unknown_users_are_404s_and_are_not_cached() {
    let s = shared().await;
    let state = state_of(&s);
    let r = get(&state, "/users/99999").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let mut c = redis_conn(&s.redis_url).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(s.prefix.key("user:99999"))
        .query_async(&mut c)
        .await
        .expect("EXISTS");
    assert_eq!(exists, 0);
    assert_eq!(
        get(&state, "/users/abc").await.status,
        StatusCode::BAD_REQUEST
    );
}

/// A stopped Redis costs nothing but the cache: GET is still a 200, from
/// the database, and the failure is counted. When Redis comes back, caching
/// resumes without a restart.
#[tokio::test]
async fn with_redis_stopped_reads_are_served_from_the_database() {
    if !lab::spawn::can_spawn(
        lab::Kind::Redis,
        "with_redis_stopped_reads_are_served_from_the_database",
    ) {
        return;
    }
    let s = shared().await;
    let (mut redis, state) = common::with_private_redis(&s).await;
    assert_eq!(get(&state, "/users/3").await.header("x-cache"), "MISS");

    redis.stop().await.expect("stop Redis");
    for id in [3, 4] {
        let r = get(&state, &format!("/users/{id}")).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "Redis down must not fail user {id}: {}",
            r.body
        );
        assert_eq!(r.header("x-cache"), "MISS");
    }
    assert!(
        state.metrics.counter(REDIS_ERRORS) > 0,
        "the failures are counted"
    );

    redis.start().await.expect("restart Redis");
    let mut hit = false;
    for _ in 0..5 {
        if get(&state, "/users/4").await.header("x-cache") == "HIT" {
            hit = true;
            break;
        }
    }
    assert!(
        hit,
        "after Redis restarts, caching must resume without restarting the service"
    );
}

/// A paused Redis (CLIENT PAUSE) accepts connections but never answers: the
/// Redis timeout must cut it short. The bound is generous both ways: 10 s is
/// 25 times the two 200 ms Redis calls a miss makes (two busy cores cannot
/// stretch it that far), and far short of the 120 s pause, which is what a
/// request without a timeout would wait.
#[tokio::test]
async fn a_paused_redis_does_not_hang_a_request() {
    if !lab::spawn::can_spawn(lab::Kind::Redis, "a_paused_redis_does_not_hang_a_request") {
        return;
    }
    let s = shared().await;
    let (redis, state) = common::with_private_redis(&s).await;
    assert_eq!(
        get(&state, "/users/8").await.header("x-cache"),
        "MISS",
        "warm the connection"
    );

    let mut admin = redis_conn(&redis.url()).await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(120_000)
        .arg("ALL")
        .query_async(&mut admin)
        .await
        .expect("pause");
    let t0 = Instant::now();
    let r = get(&state, "/users/8").await;
    let took = t0.elapsed();
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        took < Duration::from_secs(10),
        "a paused Redis held the request for {took:?}; the 200 ms Redis timeout should have cut it"
    );
    // No UNPAUSE: the private Redis is dropped, paused or not.
}

#[tokio::test]
async fn the_expensive_summary_is_cached_too() {
    let s = shared().await;
    lab::seed::ensure_orders_pg(s.schema.pool(), 3_000, USERS)
        .await
        .expect("orders");
    let state = state_of(&s);
    let first = get(&state, "/users/5/summary").await;
    assert_eq!(
        (first.status, first.header("x-cache")),
        (StatusCode::OK, "MISS"),
        "{}",
        first.body
    );
    let (orders,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders WHERE user_id = 5")
        .fetch_one(s.schema.pool())
        .await
        .expect("count");
    assert_eq!(first.json()["orders"], orders);
    let second = get(&state, "/users/5/summary").await;
    assert_eq!(second.header("x-cache"), "HIT");
    assert_eq!(second.json(), first.json());
    assert_eq!(state.metrics.counter(DB_QUERIES), 1);
    assert_eq!(
        get(&state, "/users/99999/summary").await.status,
        StatusCode::NOT_FOUND
    );
}
