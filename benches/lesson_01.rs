//! Lesson 1: `GET /users/{id}` end to end over HTTP, against real PostgreSQL,
//! with no artificial latency. One group, so the ratios come from one run:
//!
//! - `http_constant`: an axum handler that returns a constant. The floor of
//!   any HTTP request on this machine.
//! - `sqlx_pk_lookup`: the lesson's query through the pool, without HTTP.
//! - `naive_get_user`: the whole lesson: HTTP, handler, pool, query, JSON.
//!
//! Run: `cargo bench --bench lesson_01` (or `just bench`).

use std::hint::black_box;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use benches::{client, criterion, get_ok, runtime};
use criterion::criterion_main;
use lab::isolate::PgSchema;
use lesson_01_naive::{AppState, router};

const USERS: i64 = 10_000;

fn lesson_01(c: &mut criterion::Criterion) {
    let rt = runtime();
    let (_server, schema, naive, floor) = rt.block_on(async {
        let server = lab::discover(lab::Kind::Postgres)
            .await
            .expect("PostgreSQL");
        let schema = PgSchema::create(server.url())
            .await
            .expect("a bench schema");
        lab::seed::ensure_users_pg(schema.pool(), USERS)
            .await
            .expect("seed");
        let state = AppState {
            pool: schema.pool().clone(),
            latency: Duration::ZERO,
            db_timeout: Duration::from_secs(10),
        };
        let naive = lab::http::spawn_server(router(state), 0)
            .await
            .expect("lesson 1 server");
        let floor = lab::http::spawn_server(
            Router::new().route("/const", get(|| async { "{\"id\":1}" })),
            0,
        )
        .await
        .expect("floor server");
        (server, schema, naive, floor)
    });
    let http = client();
    let pool = schema.pool().clone();

    let mut g = c.benchmark_group("lesson_01");
    let floor_url = format!("{}/const", floor.base_url());
    g.bench_function("http_constant", |b| {
        b.to_async(&rt).iter(|| get_ok(&http, &floor_url))
    });

    // The same ids in the same order for every bench: a cycle through the table.
    let mut id = 0_i64;
    g.bench_function("sqlx_pk_lookup", |b| {
        b.to_async(&rt).iter(|| {
            id = id % USERS + 1;
            let pool = pool.clone();
            async move {
                black_box(
                    lab::users::fetch_user(&pool, id, Duration::ZERO)
                        .await
                        .expect("a query"),
                )
            }
        })
    });

    let base = naive.base_url();
    let mut id = 0_i64;
    g.bench_function("naive_get_user", |b| {
        b.to_async(&rt).iter(|| {
            id = id % USERS + 1;
            let url = format!("{base}/users/{id}");
            let http = &http;
            async move { get_ok(http, &url).await }
        })
    });
    g.finish();
}

fn benches() {
    let mut c = criterion();
    lesson_01(&mut c);
}

criterion_main!(benches);
