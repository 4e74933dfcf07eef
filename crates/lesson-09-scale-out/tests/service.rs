//! The service's API over one private Redis and a private PostgreSQL
//! primary with a streaming replica: malformed and unknown ids, MISS then
//! HIT, a PUT that the next GET shows, and a dead Redis that costs a
//! request a miss, never a hang. Counts and headers, never timings (but
//! one generous "no hang" bound).

use std::time::{Duration, Instant};

use lab::Kind;
use lab::replica::PgReplica;
use lab::spawn::{Instance, SpawnOptions, can_spawn};
use lab::testing::{Reply, call};
use lesson_09_scale_out::cache::Topology;
use lesson_09_scale_out::metrics::{FILLS_PRIMARY, FILLS_REPLICA, HITS, REDIS_ERRORS};
use lesson_09_scale_out::{AppState, Settings, router};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// Users seeded on the primary.
const USERS: i64 = 100;

/// A private Redis, a primary + replica with the users on both, and the
/// service over them (replica reads, LSN fills: the defaults).
struct Rig {
    state: AppState,
    redis: Instance,
    _pg: PgReplica,
}

async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e:#}"))
}

/// `None` (the test skips, and says so) where no private servers can be
/// spawned.
async fn rig(test: &str, with_replica: bool) -> Option<Rig> {
    if !can_spawn(Kind::Postgres, test) || !can_spawn(Kind::Redis, test) {
        return None;
    }
    let pg = PgReplica::start([("max_connections", "50")])
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let primary = pool(&pg.primary_url()).await;
    lab::seed::ensure_users_pg(&primary, USERS)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let lsn = pg.primary_lsn().await.expect("primary LSN");
    pg.wait_replayed(&lsn, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let replica = if with_replica {
        Some(pool(&pg.standby_url()).await)
    } else {
        None
    };
    let redis = Instance::start_new(Kind::Redis, SpawnOptions::plain())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let settings = Settings::for_tests("l9:test:");
    let state = AppState::connect(&Topology::Single(redis.url()), primary, replica, settings)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    Some(Rig {
        state,
        redis,
        _pg: pg,
    })
}

async fn get(state: &AppState, id: &str) -> Reply {
    call(router(state.clone()), "GET", &format!("/users/{id}"), None).await
}

async fn put(state: &AppState, id: &str, body: &str) -> Reply {
    call(
        router(state.clone()),
        "PUT",
        &format!("/users/{id}"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn the_api_answers_400_404_then_miss_then_hit() {
    let Some(rig) = rig("the_api_answers_400_404_then_miss_then_hit", true).await else {
        return;
    };
    let s = &rig.state;
    for bad in ["abc", "-1", "0", "1.5", "99999999999999999999999"] {
        let r = get(s, bad).await;
        assert_eq!(r.status, 400, "/users/{bad}: {}", r.body);
        assert!(r.json()["error"].is_string(), "a JSON error: {}", r.body);
    }
    let unknown = get(s, "5000000").await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(unknown.json()["error"].is_string(), "{}", unknown.body);

    let first = get(s, "7").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("x-cache"), "MISS");
    // No write of user 7 happened here, so the LSN policy reads the replica.
    assert_eq!(first.header("x-source"), "replica");
    assert_eq!(first.json()["id"], 7);
    let second = get(s, "7").await;
    assert_eq!(second.header("x-cache"), "HIT");
    assert_eq!(second.header("x-source"), "", "a hit names no database");
    assert_eq!(second.body, first.body);
    assert_eq!(s.metrics.value(HITS), 1);
    assert_eq!(s.metrics.value(FILLS_REPLICA), 1);
    // The 404's read went to the replica too, and nothing was cached.
    assert_eq!(get(s, "5000000").await.status, 404);
}

#[tokio::test]
async fn a_put_changes_the_name_and_the_next_get_shows_it() {
    let Some(rig) = rig("a_put_changes_the_name_and_the_next_get_shows_it", true).await else {
        return;
    };
    let s = &rig.state;
    assert_eq!(get(s, "9").await.header("x-cache"), "MISS");
    assert_eq!(get(s, "9").await.header("x-cache"), "HIT");

    for bad in [
        r#"{"nome":"Ada"}"#,
        r#"{"name":""}"#,
        r#"{"name":"   "}"#,
        r#"{"name":"a\u0000b"}"#,
        "not json",
    ] {
        let r = put(s, "9", bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.json()["error"].is_string(), "{}", r.body);
    }
    assert_eq!(put(s, "abc", r#"{"name":"Ada"}"#).await.status, 400);
    let unknown = put(s, "5000000", r#"{"name":"Ada"}"#).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    let ok = put(s, "9", r#"{"name":"Ada Lovelace"}"#).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["name"], "Ada Lovelace");
    // The PUT deleted the copy: a miss, filled from wherever has the write
    // (the LSN policy picks the replica only once it has replayed it).
    let after = get(s, "9").await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(after.header("x-cache"), "MISS");
    assert_eq!(after.json()["name"], "Ada Lovelace", "{}", after.body);
    let again = get(s, "9").await;
    assert_eq!(again.header("x-cache"), "HIT");
    assert_eq!(again.json()["name"], "Ada Lovelace");
}

#[tokio::test]
async fn a_dead_redis_costs_a_miss_never_a_hang() {
    let Some(mut rig) = rig("a_dead_redis_costs_a_miss_never_a_hang", false).await else {
        return;
    };
    let s = rig.state.clone();
    assert_eq!(get(&s, "3").await.header("x-cache"), "MISS");
    assert_eq!(get(&s, "3").await.header("x-cache"), "HIT");

    rig.redis.kill();
    // The bound: one Redis deadline, the database's time, and slack for a
    // loaded machine. An untuned client would take seconds per request.
    let bound = s.settings.redis_timeout + Duration::from_secs(2);
    for id in ["3", "4", "3"] {
        let t0 = Instant::now();
        let r = get(&s, id).await;
        let took = t0.elapsed();
        assert_eq!(r.status, 200, "user {id} with Redis dead: {}", r.body);
        assert_eq!(r.header("x-cache"), "MISS");
        // No replica in this rig: every fill is the primary's.
        assert_eq!(r.header("x-source"), "primary");
        assert!(
            took < bound,
            "GET /users/{id} took {took:?} with Redis dead"
        );
    }
    let t0 = Instant::now();
    let w = put(&s, "3", r#"{"name":"Written while Redis was down"}"#).await;
    assert_eq!(w.status, 200, "the write reaches the database: {}", w.body);
    assert!(t0.elapsed() < bound, "PUT took {:?}", t0.elapsed());
    let r = get(&s, "3").await;
    assert_eq!(r.json()["name"], "Written while Redis was down");
    assert!(
        s.metrics.value(REDIS_ERRORS) >= 4,
        "every failed call is counted"
    );
    assert!(s.metrics.value(FILLS_PRIMARY) >= 4);
}
