//! Lesson 3's handler against real servers, with real outages: these tests
//! stop a private PostgreSQL or Redis mid-test. No assertion depends on timing
//! except "nothing hangs", whose bound is many times the slack.

use std::time::{Duration, Instant, SystemTime};

use axum::http::StatusCode;
use lab::Kind;
use lab::isolate::RedisPrefix;
use lab::spawn::{Instance, SpawnOptions, can_spawn};
use lab::testing::{Reply, SharedServers, call, redis_conn};
use lab::users::User;
use lesson_03_stale_fallback::entry::Entry;
use lesson_03_stale_fallback::metrics::{
    BACKGROUND_REFRESHES, BREAKER_REFUSED, DB_ATTEMPTS, REDIS_ERRORS, STALE,
};
use lesson_03_stale_fallback::{AppState, Mode, Settings, router, state};

const USERS: i64 = 200;

async fn get(state: &AppState, uri: &str) -> Reply {
    call(router(state.clone()), "GET", uri, None).await
}

fn no_settings() -> SpawnOptions {
    SpawnOptions::plain()
}

/// A private PostgreSQL (this test stops it), seeded.
async fn private_pg() -> (Instance, sqlx::PgPool) {
    let pg = Instance::start_new(Kind::Postgres, no_settings())
        .await
        .expect("a private PostgreSQL");
    let pool = lab::isolate::schema_pool(&pg.url(), "public", 5)
        .await
        .expect("pool");
    lab::seed::ensure_users_pg(&pool, USERS)
        .await
        .expect("seed");
    (pg, pool)
}

/// Moves a cached entry's timestamp `by` into the past, as if it had been
/// fetched that long ago.
async fn backdate(redis_url: &str, key: &str, by: Duration) {
    let mut c = redis_conn(redis_url).await.expect("Redis");
    let json: String = redis::cmd("GET")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("the entry is cached");
    let mut e: Entry<User> = serde_json::from_str(&json).expect("an entry");
    e.fetched_at_ms -= by.as_millis() as u64;
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(serde_json::to_string(&e).expect("json"))
        .query_async(&mut c)
        .await
        .expect("SET");
}

#[tokio::test]
async fn with_postgres_down_a_stale_copy_is_served_with_its_age_and_a_cold_key_is_a_503() {
    if !can_spawn(Kind::Postgres, "stale copy with postgres down") {
        return;
    }
    lab::init_tracing();
    let (mut pg, pool) = private_pg().await;
    let redis = lab::discover(Kind::Redis).await.expect("Redis");
    let prefix = RedisPrefix::new(redis.url());
    let settings = Settings::for_tests(prefix.prefix(), Mode::Fallback);
    let key = settings.key(5);
    let state = state(pool, redis.url(), settings).expect("state");

    let first = get(&state, "/users/5").await;
    assert_eq!(
        (first.status, first.header("x-cache")),
        (StatusCode::OK, "MISS")
    );
    assert_eq!(get(&state, "/users/5").await.header("x-cache"), "HIT");
    // Past the 60 s soft TTL: 90 s old.
    backdate(redis.url(), &key, Duration::from_secs(90)).await;

    pg.stop().await.expect("stop PostgreSQL");
    let stale = get(&state, "/users/5").await;
    assert_eq!(stale.status, StatusCode::OK, "{}", stale.body);
    assert_eq!(stale.header("x-cache"), "STALE");
    let age: u64 = stale.header("age").parse().expect("an Age header");
    assert!(
        (90..90 + 30).contains(&age),
        "Age is the copy's age, got {age}"
    );
    assert_eq!(
        stale.json(),
        first.json(),
        "the stale copy is the same user"
    );

    let cold = get(&state, "/users/6").await;
    assert_eq!(cold.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(cold.json()["error"].is_string(), "{}", cold.body);
    let retry: u64 = cold.header("retry-after").parse().expect("Retry-After");
    assert!(retry >= 1);
    assert_eq!(state.metrics.counter(STALE), 1);
}

#[tokio::test]
async fn after_k_failures_the_breaker_stops_calling_the_database() {
    if !can_spawn(Kind::Postgres, "breaker") {
        return;
    }
    let (mut pg, pool) = private_pg().await;
    let redis = lab::discover(Kind::Redis).await.expect("Redis");
    let prefix = RedisPrefix::new(redis.url());
    let mut settings = Settings::for_tests(prefix.prefix(), Mode::Fallback);
    // Every copy is stale at once, so every request wants the database;
    // and the breaker stays open for the whole test.
    settings.soft_ttl = Duration::ZERO;
    settings.breaker.open_for = Duration::from_secs(600);
    let k = settings.breaker.failures as u64;
    let state = state(pool, redis.url(), settings).expect("state");
    for id in 1..=10 {
        assert_eq!(
            get(&state, &format!("/users/{id}")).await.status,
            StatusCode::OK
        );
    }
    let attempts_before = state.metrics.counter(DB_ATTEMPTS);

    pg.stop().await.expect("stop PostgreSQL");
    for id in 1..=10 {
        let r = get(&state, &format!("/users/{id}")).await;
        assert_eq!(
            (r.status, r.header("x-cache")),
            (StatusCode::OK, "STALE"),
            "{}",
            r.body
        );
    }
    assert_eq!(
        state.metrics.counter(DB_ATTEMPTS) - attempts_before,
        k,
        "only the first K requests may try the database"
    );
    assert_eq!(state.metrics.counter(BREAKER_REFUSED), 10 - k);
    let scrape = get(&state, "/metrics").await.body;
    assert!(
        scrape.contains("breaker_open 1"),
        "the gauge shows the open breaker: {scrape}"
    );

    // With the breaker open, a key with no copy is refused at once.
    let t0 = Instant::now();
    let cold = get(&state, "/users/50").await;
    assert_eq!(cold.status, StatusCode::SERVICE_UNAVAILABLE);
    let retry: u64 = cold.header("retry-after").parse().expect("Retry-After");
    assert!(
        retry > 500,
        "Retry-After says when the breaker probes again, got {retry}"
    );
    assert!(
        t0.elapsed() < state.settings.db_timeout,
        "no database wait while open"
    );
}

#[tokio::test]
async fn after_postgres_restarts_fresh_data_comes_back_without_a_service_restart() {
    if !can_spawn(Kind::Postgres, "recovery") {
        return;
    }
    let (mut pg, pool) = private_pg().await;
    let redis = lab::discover(Kind::Redis).await.expect("Redis");
    let prefix = RedisPrefix::new(redis.url());
    let mut settings = Settings::for_tests(prefix.prefix(), Mode::Fallback);
    settings.soft_ttl = Duration::ZERO;
    let state = state(pool.clone(), redis.url(), settings).expect("state");
    assert_eq!(get(&state, "/users/7").await.header("x-cache"), "MISS");

    pg.stop().await.expect("stop");
    for _ in 0..5 {
        assert_eq!(get(&state, "/users/7").await.header("x-cache"), "STALE");
    }
    pg.start().await.expect("start");
    // The row changes while the service is cut off from it...
    sqlx::query("UPDATE users SET name = 'Ada Lovelace' WHERE id = 7")
        .execute(&pool)
        .await
        .expect("update after the restart");

    // ...and the service picks it up once the breaker lets a probe through.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = get(&state, "/users/7").await;
        assert_eq!(r.status, StatusCode::OK);
        if r.header("x-cache") != "STALE" {
            assert_eq!(r.header("x-cache"), "MISS");
            assert_eq!(r.json()["name"], "Ada Lovelace");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no fresh data 30 s after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_dead_redis_costs_the_cache_and_both_dead_is_a_quick_503() {
    if !can_spawn(Kind::Postgres, "dead redis") || !can_spawn(Kind::Redis, "dead redis") {
        return;
    }
    let (mut pg, pool) = private_pg().await;
    let mut redis = Instance::start_new(Kind::Redis, no_settings())
        .await
        .expect("a private Redis");
    let state = state(pool, &redis.url(), Settings::for_tests("", Mode::Fallback)).expect("state");
    assert_eq!(get(&state, "/users/3").await.header("x-cache"), "MISS");

    redis.stop().await.expect("stop Redis");
    let r = get(&state, "/users/3").await;
    assert_eq!(
        (r.status, r.header("x-cache")),
        (StatusCode::OK, "MISS"),
        "served from the database: {}",
        r.body
    );
    assert!(state.metrics.counter(REDIS_ERRORS) > 0);

    pg.stop().await.expect("stop PostgreSQL");
    let t0 = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), get(&state, "/users/3"))
        .await
        .expect("a request with both servers down must not hang");
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(r.json()["error"].is_string());
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
}

/// Shared servers from here on: nothing is stopped.
async fn shared() -> SharedServers {
    SharedServers::new(USERS).await.expect("shared servers")
}

async fn wait_idle(state: &AppState) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !state.inflight.is_empty() {
        assert!(
            Instant::now() < deadline,
            "a background refresh never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stale_while_revalidate_refreshes_a_hot_stale_key_exactly_once() {
    let s = shared().await;
    let mut settings = Settings::for_tests(s.prefix.prefix(), Mode::Swr);
    settings.soft_ttl = Duration::ZERO;
    // The refresh takes 300 ms inside PostgreSQL, so all 50 requests below
    // arrive while it is still in flight.
    settings.latency = Duration::from_millis(300);
    let state = state(s.schema.pool().clone(), &s.redis_url, settings).expect("state");
    assert_eq!(get(&state, "/users/9").await.header("x-cache"), "MISS");
    assert_eq!(state.metrics.counter(DB_ATTEMPTS), 1);

    let mut set = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let st = state.clone();
        set.spawn(async move { get(&st, "/users/9").await });
    }
    while let Some(r) = set.join_next().await {
        let r = r.expect("request task");
        assert_eq!(
            (r.status, r.header("x-cache")),
            (StatusCode::OK, "STALE"),
            "served at once"
        );
    }
    wait_idle(&state).await;
    assert_eq!(state.metrics.counter(BACKGROUND_REFRESHES), 1);
    assert_eq!(
        state.metrics.counter(DB_ATTEMPTS),
        2,
        "one miss and one refresh"
    );
}

#[tokio::test]
async fn cache_first_answers_from_the_cache_only_and_loads_misses_in_the_background() {
    let s = shared().await;
    let settings = Settings::for_tests(s.prefix.prefix(), Mode::CacheFirst);
    let state = state(s.schema.pool().clone(), &s.redis_url, settings).expect("state");

    let first = get(&state, "/users/12").await;
    assert_eq!(
        first.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        first.body
    );
    assert_eq!(first.header("retry-after"), "1");
    wait_idle(&state).await;
    let second = get(&state, "/users/12").await;
    assert_eq!(
        (second.status, second.header("x-cache")),
        (StatusCode::OK, "HIT")
    );
    assert_eq!(second.json()["email"], lab::seed::email_for(12));

    // An unknown id: 503 while loading, then a cached 404.
    assert_eq!(
        get(&state, "/users/99999").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    wait_idle(&state).await;
    let r = get(&state, "/users/99999").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(
        state.metrics.counter(DB_ATTEMPTS),
        2,
        "the cached 404 cost no query"
    );
}

#[tokio::test]
async fn bad_ids_are_400s_unknown_ids_404s_and_an_entry_is_timestamped() {
    let s = shared().await;
    let settings = Settings::for_tests(s.prefix.prefix(), Mode::Fallback);
    let key = settings.key(4);
    let state = state(s.schema.pool().clone(), &s.redis_url, settings).expect("state");
    for bad in ["/users/abc", "/users/-1", "/users/0"] {
        let r = get(&state, bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.json()["error"].is_string());
    }
    assert_eq!(
        get(&state, "/users/99999").await.status,
        StatusCode::NOT_FOUND
    );

    let before = SystemTime::now();
    assert_eq!(get(&state, "/users/4").await.status, StatusCode::OK);
    let mut c = redis_conn(&s.redis_url).await.expect("Redis");
    let json: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut c)
        .await
        .expect("cached");
    let e: Entry<User> = serde_json::from_str(&json).expect("an entry");
    assert!(e.fetched_at_ms >= lesson_03_stale_fallback::entry::unix_ms(before));
    assert_eq!(e.value.map(|u| u.email), Some(lab::seed::email_for(4)));
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut c)
        .await
        .expect("TTL");
    assert!(
        ttl > 86_000,
        "Redis keeps the copy for the hard TTL, got {ttl}"
    );
}
