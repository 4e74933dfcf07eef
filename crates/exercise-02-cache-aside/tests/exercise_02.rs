//! Exercise 2's checks. Each failure message says what to look at.
//!
//! Redis is a private one per test (`lab::exercise::PrivateRedis`): the
//! tests read every key your handler wrote, and stop or pause it under your
//! handler, without touching the Redis other people use.

use axum::http::StatusCode;
use exercise_02_cache_aside::{AppState, Settings, router, state};
use lab::Kind;
use lab::exercise::{PREFIX, PrivateRedis, assert_reads_survive_a_paused_redis};
use lab::isolate::PgSchema;
use lab::testing::{CountingPostgres, Reply, call};

/// The state your handler gets: lesson 2's, under [`PREFIX`], with a Redis
/// connection that has no timeout of its own (so yours is what is tested).
fn state_for(pool: sqlx::PgPool, redis: &PrivateRedis) -> AppState {
    state(pool, &redis.url(), Settings::for_tests(PREFIX))
        .expect("the tests could not build the state (not your code)")
        .with_redis(redis.manager_without_timeout())
}

/// What most tests run on: a schema of the test's own on the shared
/// PostgreSQL, seeded with users 1 to 100, and a private Redis.
struct Setup {
    schema: PgSchema,
    redis: PrivateRedis,
    state: AppState,
    // Last: fields drop in order, and when the harness spawned this
    // PostgreSQL, the schema must be dropped while the server still runs.
    _pg: lab::Server,
}

async fn setup(test: &str) -> Setup {
    let pg = lab::discover(Kind::Postgres)
        .await
        .expect("the tests need a PostgreSQL server; `just doctor` shows what was found");
    let schema = PgSchema::create(pg.url())
        .await
        .expect("the tests could not create their schema (not your code)");
    lab::seed::ensure_users_pg(schema.pool(), 100)
        .await
        .expect("the tests could not seed their users (not your code)");
    let redis = PrivateRedis::start(test).await;
    let state = state_for(schema.pool().clone(), &redis);
    Setup {
        _pg: pg,
        schema,
        redis,
        state,
    }
}

async fn get(state: &AppState, uri: &str) -> Reply {
    call(router(state.clone()), "GET", uri, None).await
}

#[tokio::test]
async fn a_miss_then_a_hit_reads_the_database_once() {
    lab::spawn::require_spawn(Kind::Postgres, "a_miss_then_a_hit_reads_the_database_once");
    // A private PostgreSQL that counts its own queries.
    let pg = CountingPostgres::start(100)
        .await
        .expect("the tests could not start a counting PostgreSQL (not your code)");
    let redis = PrivateRedis::start("a_miss_then_a_hit_reads_the_database_once").await;
    let state = state_for(pg.pool.clone(), &redis);

    let first = get(&state, "/users/5").await;
    assert_eq!(
        first.status,
        StatusCode::OK,
        "GET /users/5 should answer 200 with user 5; it answered: {}",
        first.body
    );
    assert_eq!(
        first.header("x-cache"),
        "MISS",
        "the first read of user 5 finds nothing in Redis: answer with `json_response(json, \"MISS\")`"
    );
    let second = get(&state, "/users/5").await;
    assert_eq!(
        second.header("x-cache"),
        "HIT",
        "the second read should find the JSON the first one stored, and answer `json_response(json, \"HIT\")`; \
         is the first read storing it under `key` (`set_ex`)?"
    );
    assert_eq!(
        second.json(),
        first.json(),
        "a hit must return the same user as the miss: store `serde_json::to_string(&user)` and return it as is"
    );

    let calls = pg
        .calls("%FROM users%")
        .await
        .expect("pg_stat_statements (not your code)");
    assert_eq!(
        calls, 1,
        "a miss and a hit should query the users table once in all, not {calls} times: a hit must not touch the database"
    );
    redis.assert_every_key_is_under_the_prefix().await;
}

#[tokio::test]
async fn the_user_is_cached_under_its_key_with_the_ttl() {
    let s = setup("the_user_is_cached_under_its_key_with_the_ttl").await;

    let r = get(&s.state, "/users/42").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "GET /users/42 should answer 200: {}",
        r.body
    );
    s.redis.assert_every_key_is_under_the_prefix().await;
    let key = s.state.settings.key(42);
    let ttl = s.redis.ttl(&key).await;
    assert!(
        ttl != -2,
        "after a miss, the user should be stored under `state.settings.key(42)` ({key:?}); Redis holds {:?}",
        s.redis.keys().await
    );
    assert!(
        ttl > 0 && ttl <= 60,
        "the key should expire within the 60 s TTL: store it with `set_ex(&key, &json, state.settings.ttl.as_secs())`, \
         not `set`; its TTL is {ttl} (-1: it never expires)"
    );
    let json = s.redis.get(&key).await.unwrap_or_default();
    assert!(
        json.contains("\"email\""),
        "the cached value should be the user's JSON (`serde_json::to_string(&user)`), got {json:?}"
    );
}

#[tokio::test]
async fn a_missing_user_is_a_404_and_is_not_cached() {
    let s = setup("a_missing_user_is_a_404_and_is_not_cached").await;

    let r = get(&s.state, "/users/500").await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "there is no user 500: answer `ApiError::NotFound(format!(\"user {{id}} not found\"))`, not {} ({})",
        r.status,
        r.body
    );
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or_default()
            .contains("500"),
        "the 404's error text should name the user, like \"user 500 not found\"; got {}",
        r.body
    );
    // The user is created a moment later: the next read must find it.
    lab::exercise::create_user(s.schema.pool(), 500).await;
    let again = get(&s.state, "/users/500").await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "user 500 was created after the first GET, and the next GET still answered {} ({}): \
         a 404 must not be cached (store only a user you found)",
        again.status,
        again.body
    );
    s.redis.assert_every_key_is_under_the_prefix().await;
}

#[tokio::test]
async fn reads_survive_a_dead_redis() {
    let mut s = setup("reads_survive_a_dead_redis").await;
    s.redis.stop().await;

    let r = get(&s.state, "/users/9").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "with Redis stopped, GET /users/9 should still answer 200 from the database, not {} ({}): \
         a Redis error is a miss (log it), never the request's error",
        r.status,
        r.body
    );
    let missing = get(&s.state, "/users/999").await;
    assert_eq!(
        missing.status,
        StatusCode::NOT_FOUND,
        "with Redis stopped, an unknown user is still a 404, not {} ({})",
        missing.status,
        missing.body
    );
}

#[tokio::test]
async fn reads_survive_a_paused_redis() {
    let s = setup("reads_survive_a_paused_redis").await;
    assert_reads_survive_a_paused_redis(&s.redis, router(s.state.clone())).await;
}
