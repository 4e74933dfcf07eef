//! Lesson 2: when does cache-aside pay? One group, so the ratios come from
//! one run, all over HTTP unless the name says otherwise:
//!
//! - floors: `floor_http_constant` (an axum handler returning a constant) and
//!   `floor_redis_get` (one Redis GET through redis-rs, no HTTP). A cache hit
//!   cannot beat their sum;
//! - the cheap query, a primary-key lookup: `naive_get_user` (lesson 1),
//!   `miss_get_user` and `hit_get_user` (lesson 2);
//! - the expensive query, an aggregate over 1M orders:
//!   `naive_summary`, `miss_summary`, `hit_summary`.
//!
//! Run: `cargo bench --bench cache_aside` (or `cargo bench -- cache_aside`).

use std::hint::black_box;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use benches::{client, criterion, get_ok, quick, runtime};
use criterion::{BatchSize, SamplingMode, criterion_main};
use lab::Kind;
use lab::isolate::{PgSchema, RedisPrefix};
use redis::AsyncCommands;

const USERS: i64 = 10_000;
/// Enough orders that the summary really costs the database: with no index
/// on `orders.user_id` every summary scans them all.
const ORDERS: i64 = 1_000_000;
/// Hits cycle over this many warm keys.
const WARM: i64 = 1_000;
/// Summary hits over fewer: warming each costs a full aggregate.
const WARM_SUMMARY: i64 = 50;

fn cache_aside(c: &mut criterion::Criterion) {
    let rt = runtime();
    let orders = if quick() { ORDERS / 10 } else { ORDERS };
    let (_pg, _redis, schema, prefix, naive, cached, floor, redis_url) = rt.block_on(async {
        let pg = lab::discover(Kind::Postgres).await.expect("PostgreSQL");
        let redis = lab::discover(Kind::Redis).await.expect("Redis");
        let schema = PgSchema::create(pg.url()).await.expect("a bench schema");
        lab::seed::ensure_users_pg(schema.pool(), USERS)
            .await
            .expect("users");
        lab::seed::ensure_orders_pg(schema.pool(), orders, USERS)
            .await
            .expect("orders");
        let prefix = RedisPrefix::new(redis.url());

        let l1 = lesson_01_naive::AppState {
            pool: schema.pool().clone(),
            latency: Duration::ZERO,
            db_timeout: Duration::from_secs(30),
        };
        let settings = lesson_02_cache_aside::Settings {
            ttl: Duration::from_secs(3600),
            redis_timeout: Duration::from_millis(100),
            key_prefix: prefix.prefix().to_string(),
            latency: Duration::ZERO,
            db_timeout: Duration::from_secs(30),
        };
        let l2 = lesson_02_cache_aside::state(schema.pool().clone(), redis.url(), settings)
            .expect("state");
        let naive = lab::http::spawn_server(lesson_01_naive::router(l1), 0)
            .await
            .expect("lesson 1");
        let cached = lab::http::spawn_server(lesson_02_cache_aside::router(l2), 0)
            .await
            .expect("lesson 2");
        let floor = lab::http::spawn_server(
            Router::new().route("/const", get(|| async { "{\"id\":1}" })),
            0,
        )
        .await
        .expect("floor");
        let url = redis.url().to_string();
        (pg, redis, schema, prefix, naive, cached, floor, url)
    });
    let http = client();
    let (naive, cached) = (naive.base_url(), cached.base_url());

    // Warm the keys the hit benches read.
    rt.block_on(async {
        for id in 1..=WARM {
            get_ok(&http, &format!("{cached}/users/{id}")).await;
        }
        for id in 1..=WARM_SUMMARY {
            get_ok(&http, &format!("{cached}/users/{id}/summary")).await;
        }
    });
    // A blocking connection for the miss benches' untimed setup.
    let mut sync_redis = redis::Client::open(redis_url.as_str())
        .expect("url")
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("Redis");
    let manager = rt
        .block_on(redis::aio::ConnectionManager::new(
            redis::Client::open(redis_url.as_str()).expect("url"),
        ))
        .expect("Redis");

    let mut g = c.benchmark_group("cache_aside");

    let floor_url = format!("{}/const", floor.base_url());
    g.bench_function("floor_http_constant", |b| {
        b.to_async(&rt).iter(|| get_ok(&http, &floor_url))
    });
    let warm_key = prefix.key("user:1");
    g.bench_function("floor_redis_get", |b| {
        b.to_async(&rt).iter(|| {
            let mut m = manager.clone();
            let key = warm_key.clone();
            async move { black_box(m.get::<_, Option<String>>(key).await.expect("GET")) }
        })
    });

    // No cache and a miss are timed alike, so that their ratio is like for
    // like: the same ids (from WARM on, never warmed), the same untimed setup
    // (the key deleted from Redis, so that lesson 2 misses; lesson 1 has no
    // cache, so the DEL changes nothing for it) and the same batched loop. A
    // miss does strictly more work (a Redis GET, the query, a Redis SET).
    // Hits cycle over the warm ids with the plain loop: a hit needs a warm key.
    let mut batched = |g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
                       name: &str,
                       base: &str,
                       path: &str| {
        let mut id = WARM;
        g.bench_function(name, |b| {
            b.to_async(&rt).iter_batched(
                || {
                    id = id % USERS + 1;
                    let _: redis::RedisResult<()> = redis::cmd("DEL")
                        .arg(prefix.key(&format!("user:{id}{}", path.replace('/', ":"))))
                        .query(&mut sync_redis);
                    format!("{base}/users/{id}{path}")
                },
                |url| {
                    let http = &http;
                    async move { get_ok(http, &url).await }
                },
                BatchSize::SmallInput,
            )
        });
    };
    let hits = |g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
                name: &str,
                path: &str,
                warm: i64| {
        let mut id = 0_i64;
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                id = id % warm + 1;
                let url = format!("{cached}/users/{id}{path}");
                let http = &http;
                async move { get_ok(http, &url).await }
            })
        });
    };
    batched(&mut g, "naive_get_user", &naive, "");
    hits(&mut g, "hit_get_user", "", WARM);
    batched(&mut g, "miss_get_user", &cached, "");

    // The expensive query takes milliseconds per call: fewer, flat samples
    // keep the run short without losing the median.
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(if quick() { 10 } else { 20 });
    batched(&mut g, "naive_summary", &naive, "/summary");
    hits(&mut g, "hit_summary", "/summary", WARM_SUMMARY);
    batched(&mut g, "miss_summary", &cached, "/summary");
    g.finish();
    drop(schema);
}

fn benches() {
    let mut c = criterion();
    cache_aside(&mut c);
}

criterion_main!(benches);
