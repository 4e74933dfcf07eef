//! Exercise 3's checks, against real servers: a private PostgreSQL that the
//! tests stop under your handler, and the shared Redis under a key prefix.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use exercise_03_stale_fallback::{AppState, Mode, Settings, router, state};
use lab::Kind;
use lab::isolate::RedisPrefix;
use lab::spawn::{Instance, SpawnOptions, can_spawn};
use lab::testing::{Reply, call};
use lab::users::User;
use lesson_03_stale_fallback::entry::Entry;

async fn get(state: &AppState, uri: &str) -> Reply {
    call(router(state.clone()), "GET", uri, None).await
}

struct Setup {
    pg: Instance,
    pool: sqlx::PgPool,
    redis_url: String,
    _redis: lab::Server,
    _prefix: RedisPrefix,
    state: AppState,
}

async fn setup(test: &str) -> Option<Setup> {
    if !can_spawn(Kind::Postgres, test) {
        return None;
    }
    let pg = Instance::start_new(Kind::Postgres, SpawnOptions::plain())
        .await
        .expect("a private PostgreSQL");
    let pool = lab::isolate::schema_pool(&pg.url(), "public", 5)
        .await
        .expect("pool");
    lab::seed::ensure_users_pg(&pool, 100).await.expect("seed");
    let redis = lab::discover(Kind::Redis).await.expect("Redis");
    let prefix = RedisPrefix::new(redis.url());
    let settings = Settings::for_tests(prefix.prefix(), Mode::Fallback);
    let state = state(pool.clone(), redis.url(), settings).expect("state");
    Some(Setup {
        pg,
        pool,
        redis_url: redis.url().to_string(),
        _redis: redis,
        _prefix: prefix,
        state,
    })
}

async fn redis(url: &str) -> redis::aio::MultiplexedConnection {
    lab::testing::redis_conn(url).await.expect("Redis")
}

async fn entry(s: &Setup, id: i64) -> Entry<User> {
    let json: String = redis::cmd("GET")
        .arg(s.state.settings.key(id))
        .query_async(&mut redis(&s.redis_url).await)
        .await
        .expect("the entry is in Redis");
    serde_json::from_str(&json).expect("the value is an Entry<User>")
}

/// Pretends the copy of `id` was fetched `by` earlier than it was.
async fn backdate(s: &Setup, id: i64, by: Duration) {
    let mut e = entry(s, id).await;
    e.fetched_at_ms -= by.as_millis() as u64;
    let _: () = redis::cmd("SET")
        .arg(s.state.settings.key(id))
        .arg(serde_json::to_string(&e).expect("json"))
        .query_async(&mut redis(&s.redis_url).await)
        .await
        .expect("SET");
}

#[tokio::test]
async fn a_miss_stores_a_timestamped_entry_for_the_hard_ttl_then_hits() {
    let Some(s) = setup("exercise 3: miss then hit").await else {
        return;
    };
    let miss = get(&s.state, "/users/5").await;
    assert_eq!(
        (miss.status, miss.header("x-cache")),
        (StatusCode::OK, "MISS"),
        "{}",
        miss.body
    );
    assert_eq!(miss.json()["email"], lab::seed::email_for(5));
    let e = entry(&s, 5).await;
    assert_eq!(e.value.map(|u| u.id), Some(5));
    let ttl: i64 = redis::cmd("TTL")
        .arg(s.state.settings.key(5))
        .query_async(&mut redis(&s.redis_url).await)
        .await
        .expect("TTL");
    assert!(
        ttl > 3600,
        "Redis keeps the copy for the hard TTL (24 h), got {ttl} s"
    );
    let hit = get(&s.state, "/users/5").await;
    assert_eq!((hit.status, hit.header("x-cache")), (StatusCode::OK, "HIT"));
    assert_eq!(hit.header("age"), "0");
}

#[tokio::test]
async fn with_postgres_down_a_fresh_copy_is_a_hit_and_an_old_one_is_stale() {
    let Some(mut s) = setup("exercise 3: outage").await else {
        return;
    };
    assert_eq!(get(&s.state, "/users/7").await.status, StatusCode::OK);
    assert_eq!(get(&s.state, "/users/8").await.status, StatusCode::OK);
    backdate(&s, 8, Duration::from_secs(120)).await;

    s.pg.stop().await.expect("stop PostgreSQL");
    let fresh = get(&s.state, "/users/7").await;
    assert_eq!(
        (fresh.status, fresh.header("x-cache")),
        (StatusCode::OK, "HIT"),
        "younger than the soft TTL: no database needed"
    );
    let stale = get(&s.state, "/users/8").await;
    assert_eq!(
        (stale.status, stale.header("x-cache")),
        (StatusCode::OK, "STALE"),
        "{}",
        stale.body
    );
    let age: u64 = stale.header("age").parse().expect("an Age header");
    assert!(age >= 120, "Age is the copy's age in seconds, got {age}");
    assert_eq!(stale.json()["email"], lab::seed::email_for(8));

    let t0 = Instant::now();
    let cold = get(&s.state, "/users/9").await;
    assert_eq!(
        cold.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        cold.body
    );
    assert!(cold.json()["error"].is_string(), "a JSON body");
    assert!(
        !cold.header("retry-after").is_empty(),
        "a 503 says when to retry"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "within the database timeout"
    );
}

#[tokio::test]
async fn after_postgres_restarts_the_service_serves_fresh_data_again() {
    let Some(mut s) = setup("exercise 3: recovery").await else {
        return;
    };
    assert_eq!(get(&s.state, "/users/3").await.status, StatusCode::OK);
    backdate(&s, 3, Duration::from_secs(120)).await;
    s.pg.stop().await.expect("stop");
    assert_eq!(get(&s.state, "/users/3").await.header("x-cache"), "STALE");
    s.pg.start().await.expect("start");
    sqlx::query("UPDATE users SET name = 'Grace Hopper' WHERE id = 3")
        .execute(&s.pool)
        .await
        .expect("update");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = get(&s.state, "/users/3").await;
        if r.header("x-cache") == "MISS" {
            assert_eq!(r.json()["name"], "Grace Hopper");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {} 30 s after the restart",
            r.header("x-cache")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn unknown_ids_are_404s_and_bad_ids_400s() {
    let Some(s) = setup("exercise 3: errors").await else {
        return;
    };
    assert_eq!(
        get(&s.state, "/users/99999").await.status,
        StatusCode::NOT_FOUND
    );
    let bad = get(&s.state, "/users/abc").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"].is_string());
}
