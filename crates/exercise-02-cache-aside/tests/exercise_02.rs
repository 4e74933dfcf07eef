//! Exercise 2's checks. Each failure message says what was expected.

use axum::http::StatusCode;
use exercise_02_cache_aside::{AppState, Settings, router, state};
use lab::Kind;
use lab::isolate::{PgSchema, RedisPrefix};
use lab::spawn::{Instance, SpawnOptions};
use lab::testing::{CountingPostgres, Reply, call};

fn settings(prefix: &str) -> Settings {
    Settings::for_tests(prefix)
}

async fn get(state: &AppState, uri: &str) -> Reply {
    call(router(state.clone()), "GET", uri, None).await
}

#[tokio::test]
async fn a_miss_then_a_hit_reads_the_database_once() {
    if !lab::spawn::can_spawn(
        lab::Kind::Postgres,
        "a_miss_then_a_hit_reads_the_database_once",
    ) {
        return;
    }
    // A private PostgreSQL that counts its own queries.
    let pg = CountingPostgres::start(100)
        .await
        .expect("a counting PostgreSQL");
    let redis = lab::discover(Kind::Redis).await.expect("Redis");
    let prefix = RedisPrefix::new(redis.url());
    let state = state(pg.pool.clone(), redis.url(), settings(prefix.prefix())).expect("state");

    let first = get(&state, "/users/5").await;
    assert_eq!(
        first.status,
        StatusCode::OK,
        "GET /users/5 should answer 200 with user 5: {}",
        first.body
    );
    assert_eq!(
        first.header("x-cache"),
        "MISS",
        "the first read should say `X-Cache: MISS`"
    );
    let second = get(&state, "/users/5").await;
    assert_eq!(
        second.header("x-cache"),
        "HIT",
        "the second read should come from Redis: `X-Cache: HIT`"
    );
    assert_eq!(
        second.json(),
        first.json(),
        "a hit must return the same user as the miss"
    );

    let calls = pg.calls("%FROM users%").await.expect("pg_stat_statements");
    assert_eq!(
        calls, 1,
        "a miss and a hit should query the users table once in all, not {calls} times"
    );
}

#[tokio::test]
async fn the_user_is_cached_under_user_id_with_the_ttl() {
    let pg = lab::discover(Kind::Postgres).await.expect("PostgreSQL");
    let schema = PgSchema::create(pg.url()).await.expect("schema");
    lab::seed::ensure_users_pg(schema.pool(), 100)
        .await
        .expect("seed");
    let redis = lab::discover(Kind::Redis).await.expect("Redis");
    let prefix = RedisPrefix::new(redis.url());
    let state = state(
        schema.pool().clone(),
        redis.url(),
        settings(prefix.prefix()),
    )
    .expect("state");

    assert_eq!(get(&state, "/users/42").await.status, StatusCode::OK);
    let mut c = lab::testing::redis_conn(redis.url())
        .await
        .expect("connect");
    let key = prefix.key("user:42");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut c)
        .await
        .expect("TTL");
    assert!(
        ttl != -2,
        "after a miss, the user should be stored under the key `user:42`"
    );
    assert!(
        ttl > 0 && ttl <= 60,
        "the key should expire within the 60 s TTL (set it with set_ex); its TTL is {ttl}"
    );
    let json: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut c)
        .await
        .expect("GET");
    assert!(
        json.contains("\"email\""),
        "the cached value should be the user's JSON, got {json:?}"
    );
}

#[tokio::test]
async fn reads_survive_a_dead_redis() {
    if !lab::spawn::can_spawn(lab::Kind::Redis, "reads_survive_a_dead_redis") {
        return;
    }
    let pg = lab::discover(Kind::Postgres).await.expect("PostgreSQL");
    let schema = PgSchema::create(pg.url()).await.expect("schema");
    lab::seed::ensure_users_pg(schema.pool(), 100)
        .await
        .expect("seed");
    let mut redis = Instance::start_new(Kind::Redis, SpawnOptions::default())
        .await
        .expect("a private Redis");
    let state = state(schema.pool().clone(), &redis.url(), settings("")).expect("state");
    redis.stop().await.expect("stop Redis");

    let r = get(&state, "/users/9").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "with Redis down, GET /users/9 should still answer 200 from the database, not {} ({})",
        r.status,
        r.body
    );
    assert_eq!(
        get(&state, "/users/999").await.status,
        StatusCode::NOT_FOUND,
        "an unknown user is still a 404"
    );
}
