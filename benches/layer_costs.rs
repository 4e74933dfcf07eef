//! Lesson 8: what one hit costs in each layer, and what the outbox costs a
//! write. One criterion group, so every ratio comes from one run:
//!
//! - each layer alone: `l1_hit` (`L1::get` of a present entry: moka, no
//!   I/O), `l2_hit` (one Redis `HMGET key v json`, the read the service
//!   makes, on the service's own connection), `db_hit` (`db::fetch`, the
//!   service's primary-key lookup with its version, through the pool);
//! - the same through the service (its router, called in process with
//!   tower's `oneshot`, no socket, so the difference is the layer and the
//!   handler, not loopback HTTP): `get_l1` (an L1 hit), `get_l2` (L1 misses,
//!   Redis hits, the entry goes back into L1), `get_db` (both miss: the
//!   database, the versioned fill of Redis, the L1 insert);
//! - a write: `update_plain` (`db::update` on a schema with the `version`
//!   column but none of lesson 8's triggers) against `update_outbox` (the
//!   same `db::update` with the triggers, which bump the version, write the
//!   outbox row and `pg_notify`, then the `DELETE` of that row the service
//!   makes once Redis has heard, `db::outbox_done`).
//!
//! Run: `cargo bench --bench layer_costs` (or `cargo bench -- layer_costs`).

use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use benches::{criterion, runtime};
use criterion::criterion_main;
use lab::Kind;
use lab::isolate::{PgSchema, RedisPrefix};
use lesson_08_layers::hooks::Hooks;
use lesson_08_layers::{Instance, Invalidation, Settings, db, store};
use redis::AsyncCommands;
use tower::ServiceExt;

const USERS: i64 = 10_000;
/// The hits cycle over this many warm users (ids `1..=WARM`); `get_db`
/// over the rest, so it never disturbs their entries.
const WARM: i64 = 1_000;
/// Every write's limit (`db::update`'s statement timeout): far above what
/// an UPDATE takes, so it only stops a hung run.
const WRITE_LIMIT: Duration = Duration::from_secs(30);

fn layer_costs(c: &mut criterion::Criterion) {
    let rt = runtime();
    let (_pg, _redis, schema, plain, prefix, hot, cold) = rt.block_on(async {
        let pg = lab::discover(Kind::Postgres).await.expect("PostgreSQL");
        let redis = lab::discover(Kind::Redis).await.expect("Redis");
        let schema = PgSchema::create(pg.url()).await.expect("a bench schema");
        lab::seed::ensure_users_pg(schema.pool(), USERS)
            .await
            .expect("users");
        db::prepare(schema.pool()).await.expect("lesson 8's schema");
        // The write's baseline: the same table and `version` column, so
        // `db::update` runs the same statements, but no trigger.
        let plain = PgSchema::create(pg.url()).await.expect("a bench schema");
        lab::seed::ensure_users_pg(plain.pool(), USERS)
            .await
            .expect("users");
        sqlx::query("ALTER TABLE users ADD COLUMN version bigint NOT NULL DEFAULT 1")
            .execute(plain.pool())
            .await
            .expect("the version column");
        let prefix = RedisPrefix::new(redis.url());

        let settings = |l1_ttl: Duration| Settings {
            // No subscription and no relay: nothing runs in the background
            // of a read bench (the relay polls the outbox every 100 ms).
            invalidation: Invalidation::Ttl,
            relay: false,
            // Longer than the whole bench: a warm entry never expires
            // from Redis while it runs.
            ttl: Duration::from_secs(3600),
            l1_ttl,
            // Generous, so a scheduling hiccup on 2 cores is not a Redis
            // failure (which would send a read to the database); a
            // timeout costs the same timer whatever its length.
            redis_timeout: Duration::from_secs(1),
            ..Settings::for_tests(prefix.prefix(), schema.name())
        };
        let start =
            |s: Settings| Instance::start(schema.pool().clone(), redis.url(), s, Hooks::default());
        // `hot` keeps its L1 entries for the whole run: every read of a warm
        // user is an L1 hit.
        let hot = start(settings(Duration::from_secs(3600)))
            .await
            .expect("an instance");
        // `cold`'s L1 entries live 1 ms. An L2 hit puts the entry into L1
        // (as in production), so reading the same user twice in a row would
        // hit L1; but the benches cycle over 1,000 users, each read takes
        // tens of µs, so a user comes back tens of ms later, long after its
        // L1 copy expired: every read misses L1. (Clearing L1 before each
        // read would time moka's `invalidate_all` instead; an L1 of
        // capacity 1 would time moka's evictions.) Each read checks
        // `X-Cache`, so a stray L1 hit stops the bench rather than
        // flattering it.
        let cold = start(settings(Duration::from_millis(1)))
            .await
            .expect("an instance");
        (pg, redis, schema, plain, prefix, hot, cold)
    });
    let (hot_router, cold_router) = (hot.router(), cold.router());

    // Warm: `hot`'s first read of each user misses and fills Redis and its
    // L1; its second hits L1; `cold`'s read then finds the entry in Redis.
    rt.block_on(async {
        for id in 1..=WARM {
            get(&hot_router, id, "MISS").await;
            get(&hot_router, id, "L1").await;
            get(&cold_router, id, "L2").await;
        }
    });

    let mut g = c.benchmark_group("layer_costs");

    // Each layer alone.
    let l1 = hot.state.l1.clone();
    let mut id = 0_i64;
    g.bench_function("l1_hit", |b| {
        b.iter(|| {
            id = id % WARM + 1;
            let entry = l1.get(black_box(id));
            assert!(entry.is_some(), "user {id} is in L1");
            entry
        })
    });
    let keys: Vec<String> = (1..=WARM)
        .map(|id| store::key(prefix.prefix(), id))
        .collect();
    let reads = cold.state.reads.clone();
    let mut i = 0_usize;
    g.bench_function("l2_hit", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % keys.len();
            let mut redis = reads.clone();
            let key = &keys[i];
            async move {
                let (v, json): (Option<i64>, Option<String>) = redis::cmd("HMGET")
                    .arg(key)
                    .arg("v")
                    .arg("json")
                    .query_async(&mut redis)
                    .await
                    .expect("HMGET");
                assert!(v.is_some() && json.is_some(), "{key} is in Redis");
                black_box(json)
            }
        })
    });
    let pool = schema.pool();
    let mut id = 0_i64;
    g.bench_function("db_hit", |b| {
        b.to_async(&rt).iter(|| {
            id = id % WARM + 1;
            async move {
                let found = db::fetch(pool, id, Duration::ZERO).await.expect("SELECT");
                assert!(found.is_some(), "user {id} exists");
                black_box(found)
            }
        })
    });

    // The same through the service.
    for (name, router, layer) in [
        ("get_l1", &hot_router, "L1"),
        ("get_l2", &cold_router, "L2"),
    ] {
        let mut id = 0_i64;
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                id = id % WARM + 1;
                get(router, id, layer)
            })
        });
    }
    // A miss in both caches every time: before each request, untimed,
    // delete the user's Redis entry (`cold`'s L1 copy, 1 ms old at most
    // when it was made, is long gone by the time the cycle comes back).
    let next = AtomicI64::new(0);
    let redis = cold.state.redis.clone();
    g.bench_function("get_db", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (next, router, prefix, mut redis) = (&next, &cold_router, &prefix, redis.clone());
            async move {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let id = WARM + 1 + next.fetch_add(1, Ordering::Relaxed) % (USERS - WARM);
                    let _: () = redis
                        .del(store::key(prefix.prefix(), id))
                        .await
                        .expect("DEL");
                    let t = Instant::now();
                    get(router, id, "MISS").await;
                    timed += t.elapsed();
                }
                timed
            }
        })
    });

    // A write, without and with lesson 8's triggers and outbox.
    for (name, pool, outbox) in [
        ("update_plain", plain.pool(), false),
        ("update_outbox", schema.pool(), true),
    ] {
        let mut n = 0_i64;
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                n += 1;
                let id = n % USERS + 1;
                let name = format!("Bench {n}");
                async move {
                    let email = format!("user{id}@example.com");
                    let saved = db::update(pool, id, &name, &email, WRITE_LIMIT)
                        .await
                        .expect("UPDATE")
                        .expect("the user exists");
                    if outbox {
                        db::outbox_done(pool, id, saved.version)
                            .await
                            .expect("the outbox DELETE");
                    }
                    black_box(saved)
                }
            })
        });
    }
    g.finish();
    drop((hot, cold));
    drop((schema, plain));
}

/// `GET /users/{id}` through the router, checking the answer and which
/// layer gave it, so a broken path cannot bench fast.
async fn get(router: &Router, id: i64, layer: &str) {
    let req = Request::get(format!("/users/{id}"))
        .body(Body::empty())
        .expect("a valid request");
    let resp = match router.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    assert!(
        resp.status().is_success(),
        "GET /users/{id}: {}",
        resp.status()
    );
    let got = resp
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(got, layer, "GET /users/{id}: X-Cache");
    let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .expect("a body");
    black_box(body);
}

fn benches() {
    let mut c = criterion();
    layer_costs(&mut c);
}

criterion_main!(benches);
