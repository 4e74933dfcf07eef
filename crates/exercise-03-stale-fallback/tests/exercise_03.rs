//! Exercise 3's checks, against real servers: a private PostgreSQL that the
//! tests stop under your handler, and a private Redis they stop, pause and
//! read every key of. Each failure message says what to look at.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use exercise_03_stale_fallback::{AppState, Mode, Settings, router, state};
use lab::Kind;
use lab::exercise::{PREFIX, PrivateRedis, assert_reads_survive_a_paused_redis};
use lab::spawn::{Instance, SpawnOptions};
use lab::testing::{Reply, call};
use lab::users::User;
use lesson_03_stale_fallback::entry::Entry;

async fn get(state: &AppState, uri: &str) -> Reply {
    call(router(state.clone()), "GET", uri, None).await
}

struct Setup {
    pg: Instance,
    pool: sqlx::PgPool,
    redis: PrivateRedis,
    state: AppState,
}

/// A private PostgreSQL with users 1 to 100, a private Redis, and lesson
/// 3's state (soft TTL 60 s, hard TTL 24 h, database timeout 500 ms) with
/// a Redis connection that has no timeout of its own, so yours is tested.
async fn setup(test: &str) -> Setup {
    lab::spawn::require_spawn(Kind::Postgres, test);
    let pg = Instance::start_new(Kind::Postgres, SpawnOptions::plain())
        .await
        .expect("the tests could not start a private PostgreSQL (not your code)");
    let pool = lab::isolate::schema_pool(&pg.url(), "public", 5)
        .await
        .expect("the tests could not connect (not your code)");
    lab::seed::ensure_users_pg(&pool, 100)
        .await
        .expect("the tests could not seed their users (not your code)");
    let redis = PrivateRedis::start(test).await;
    let state = state(
        pool.clone(),
        &redis.url(),
        Settings::for_tests(PREFIX, Mode::Fallback),
    )
    .expect("the tests could not build the state (not your code)")
    .with_redis(redis.manager_without_timeout());
    Setup {
        pg,
        pool,
        redis,
        state,
    }
}

/// The entry your handler stored for `id`.
async fn entry(s: &Setup, id: i64) -> Entry<User> {
    let key = s.state.settings.key(id);
    let Some(json) = s.redis.get(&key).await else {
        panic!(
            "after a successful read of user {id}, Redis should hold its entry under \
             `state.settings.key({id})` ({key:?}); it holds {:?}",
            s.redis.keys().await
        )
    };
    serde_json::from_str(&json).unwrap_or_else(|e| {
        panic!(
            "the value under {key:?} should be an `Entry<User>` as JSON \
             (`serde_json::to_string(&Entry::new(user, SystemTime::now()))`), got {json:?}: {e}"
        )
    })
}

/// Pretends the copy of `id` was fetched `by` earlier than it was.
async fn backdate(s: &Setup, id: i64, by: Duration) {
    let mut e = entry(s, id).await;
    e.fetched_at_ms -= by.as_millis() as u64;
    let _: () = redis::cmd("SET")
        .arg(s.state.settings.key(id))
        .arg(serde_json::to_string(&e).expect("json"))
        .query_async(&mut s.redis.conn().await)
        .await
        .expect("SET");
}

fn age(r: &Reply) -> u64 {
    r.header("age").parse().unwrap_or_else(|_| {
        panic!(
            "the answer should carry an `Age` header (the copy's age in seconds); `respond` adds it. Headers: {:?}",
            r.headers
        )
    })
}

#[tokio::test]
async fn a_miss_stores_a_timestamped_entry_for_the_hard_ttl_then_hits() {
    let s = setup("a_miss_stores_a_timestamped_entry_for_the_hard_ttl_then_hits").await;
    let miss = get(&s.state, "/users/5").await;
    assert_eq!(
        (miss.status, miss.header("x-cache")),
        (StatusCode::OK, "MISS"),
        "the first read of user 5 finds no copy, reads the database, and answers `respond(id, entry, \"MISS\")`: {}",
        miss.body
    );
    assert_eq!(
        miss.json()["email"],
        lab::seed::email_for(5),
        "the answer should be user 5 as JSON"
    );
    let e = entry(&s, 5).await;
    assert_eq!(
        e.value.map(|u| u.id),
        Some(5),
        "the stored entry should hold user 5"
    );
    let ttl = s.redis.ttl(&s.state.settings.key(5)).await;
    assert!(
        ttl > 3600,
        "Redis keeps the copy for the hard TTL (24 h: `set_ex(.., state.settings.hard_ttl.as_secs())`), \
         so it can be served stale in an outage; its TTL is {ttl} s (-1: none)"
    );
    let hit = get(&s.state, "/users/5").await;
    assert_eq!(
        (hit.status, hit.header("x-cache")),
        (StatusCode::OK, "HIT"),
        "the second read finds a copy younger than the soft TTL and answers `respond(id, entry, \"HIT\")` \
         without the database: {}",
        hit.body
    );
    // Seconds, not zero: two busy cores may take a while between the reads.
    let age = age(&hit);
    assert!(
        age < 30,
        "`Age` is the copy's age in seconds, from its `fetched_at`: a copy stored a moment ago is \
         a few seconds old at most, got {age}"
    );
    s.redis.assert_every_key_is_under_the_prefix().await;
}

#[tokio::test]
async fn with_postgres_down_a_fresh_copy_is_a_hit_and_an_old_one_is_stale() {
    let mut s = setup("with_postgres_down_a_fresh_copy_is_a_hit_and_an_old_one_is_stale").await;
    for id in [7, 8] {
        let r = get(&s.state, &format!("/users/{id}")).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "GET /users/{id} should answer 200: {}",
            r.body
        );
    }
    backdate(&s, 8, Duration::from_secs(120)).await;

    s.pg.stop().await.expect("stop PostgreSQL");
    let fresh = get(&s.state, "/users/7").await;
    assert_eq!(
        (fresh.status, fresh.header("x-cache")),
        (StatusCode::OK, "HIT"),
        "with PostgreSQL down, user 7's copy is younger than the soft TTL: a HIT, no database needed ({})",
        fresh.body
    );
    let stale = get(&s.state, "/users/8").await;
    assert_eq!(
        (stale.status, stale.header("x-cache")),
        (StatusCode::OK, "STALE"),
        "with PostgreSQL down, user 8's copy is 2 minutes old: the database fails, so answer the old \
         copy with `respond(id, old, \"STALE\")` rather than an error ({})",
        stale.body
    );
    let age = age(&stale);
    assert!(
        age >= 120,
        "`Age` on a STALE answer is the copy's age in seconds (at least 120 here), got {age}: pass the \
         old entry to `respond`, not a new one"
    );
    assert_eq!(
        stale.json()["email"],
        lab::seed::email_for(8),
        "the stale answer should be user 8"
    );

    let t0 = Instant::now();
    let cold = get(&s.state, "/users/9").await;
    assert_eq!(
        cold.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "user 9 has no copy and the database is down: answer `ServeError::Unavailable` (503), not {} ({})",
        cold.status,
        cold.body
    );
    let message = cold.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        !message.is_empty(),
        "the 503's body should be JSON like {{\"error\": \"...\"}} (ServeError::Unavailable's message), got {}",
        cold.body
    );
    for internal in [
        "os error",
        "communicating",
        "pool timed out",
        "refused",
        "sqlx",
    ] {
        assert!(
            !message.to_lowercase().contains(internal),
            "the 503's message reaches the client: say that user 9 is unavailable, without the \
             database's error text (log that instead); it says {message:?}"
        );
    }
    assert!(
        !cold.header("retry-after").is_empty(),
        "a 503 says when to retry: set `retry_after` in `ServeError::Unavailable`"
    );
    // 20 times the 500 ms database timeout: only a missing timeout exceeds it.
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "the 503 took {:?}: bound the database call with `tokio::time::timeout(state.settings.db_timeout, ...)`",
        t0.elapsed()
    );
}

#[tokio::test]
async fn a_stale_copy_is_replaced_when_the_database_answers() {
    let s = setup("a_stale_copy_is_replaced_when_the_database_answers").await;
    assert_eq!(get(&s.state, "/users/4").await.status, StatusCode::OK);
    backdate(&s, 4, Duration::from_secs(120)).await;
    let refreshed = get(&s.state, "/users/4").await;
    assert_eq!(
        (refreshed.status, refreshed.header("x-cache")),
        (StatusCode::OK, "MISS"),
        "user 4's copy is older than the soft TTL and the database is up: read it again and answer \
         MISS ({})",
        refreshed.body
    );
    let stored = entry(&s, 4).await;
    let age = lesson_03_stale_fallback::entry::unix_ms(std::time::SystemTime::now())
        .saturating_sub(stored.fetched_at_ms)
        / 1000;
    assert!(
        age < 60,
        "after the database answered for a stale copy, store the new entry (`set_ex` for the hard \
         TTL) in its place: Redis still holds the copy from {age} s ago, so every read of user 4 \
         goes to the database"
    );
    let hit = get(&s.state, "/users/4").await;
    assert_eq!(
        hit.header("x-cache"),
        "HIT",
        "after the refresh, the next read should be a HIT"
    );
    s.redis.assert_every_key_is_under_the_prefix().await;
}

#[tokio::test]
async fn after_postgres_restarts_the_service_serves_fresh_data_again() {
    let mut s = setup("after_postgres_restarts_the_service_serves_fresh_data_again").await;
    assert_eq!(get(&s.state, "/users/3").await.status, StatusCode::OK);
    backdate(&s, 3, Duration::from_secs(120)).await;
    s.pg.stop().await.expect("stop");
    let stale = get(&s.state, "/users/3").await;
    assert_eq!(
        stale.header("x-cache"),
        "STALE",
        "with PostgreSQL down, a 2-minute-old copy is served STALE ({} {})",
        stale.status,
        stale.body
    );
    s.pg.start().await.expect("start");
    sqlx::query("UPDATE users SET name = 'Grace Hopper' WHERE id = 3")
        .execute(&s.pool)
        .await
        .expect("update");
    // The pool reconnects on its own; give it a generous while.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = get(&s.state, "/users/3").await;
        if r.header("x-cache") == "MISS" {
            assert_eq!(
                r.json()["name"],
                "Grace Hopper",
                "once PostgreSQL is back, a stale copy is replaced by the database's row"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "30 s after PostgreSQL came back, reads of user 3's stale copy still answer {} ({}): \
             try the database for every copy older than the soft TTL",
            r.header("x-cache"),
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_missing_user_is_a_404_and_is_not_cached() {
    let s = setup("a_missing_user_is_a_404_and_is_not_cached").await;
    let r = get(&s.state, "/users/500").await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "there is no user 500: answer 404 (`respond` does it for an entry without a user), not {} ({})",
        r.status,
        r.body
    );
    lab::exercise::create_user(&s.pool, 500).await;
    let again = get(&s.state, "/users/500").await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "user 500 was created after the first GET, and the next GET still answered {} ({}): \
         a 404 must not be cached (store an entry only when it holds a user)",
        again.status,
        again.body
    );
    let bad = get(&s.state, "/users/abc").await;
    assert_eq!(
        bad.status,
        StatusCode::BAD_REQUEST,
        "GET /users/abc should answer 400 (`user_id_from_path(path)?`), not {} ({})",
        bad.status,
        bad.body
    );
    s.redis.assert_every_key_is_under_the_prefix().await;
}

#[tokio::test]
async fn with_redis_down_reads_come_from_the_database() {
    let mut s = setup("with_redis_down_reads_come_from_the_database").await;
    s.redis.stop().await;
    let r = get(&s.state, "/users/9").await;
    assert_eq!(
        (r.status, r.header("x-cache")),
        (StatusCode::OK, "MISS"),
        "with Redis stopped and PostgreSQL up, GET /users/9 should answer 200 MISS from the database: \
         a Redis error is \"no copy\", never the request's error ({})",
        r.body
    );
}

#[tokio::test]
async fn with_redis_paused_reads_come_from_the_database() {
    let s = setup("with_redis_paused_reads_come_from_the_database").await;
    assert_reads_survive_a_paused_redis(&s.redis, router(s.state.clone())).await;
}
