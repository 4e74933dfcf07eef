//! Where the processes run: one connection's round trip, with the database
//! server on the client's own core and on the other core.
//!
//! The bench process pins itself to CPU 0 and spawns private servers pinned
//! to CPU 0 (same core) and CPU 1 (cross core), so both placements are
//! measured in one run. A current-thread runtime keeps the client on one
//! thread: this is the latency of one connection, not of a pool.
//!
//! Run: `cargo bench --bench placement`. Needs 2 cores and private
//! instances (the local server binaries, or Docker containers pinned by
//! `--cpuset-cpus`).

use std::hint::black_box;

use benches::criterion;
use criterion::criterion_main;
use lab::Kind;
use lab::spawn::{Instance, SpawnOptions};
use sqlx::Connection;

const USERS: i64 = 10_000;

fn spawn(rt: &tokio::runtime::Runtime, kind: Kind, cpu: usize) -> Instance {
    let opts = SpawnOptions {
        cpus: Some(vec![cpu]),
        ..SpawnOptions::default()
    };
    rt.block_on(Instance::start_new(kind, opts))
        .unwrap_or_else(|e| {
            panic!("the placement bench needs a private {kind} (local server binaries or Docker): {e:#}")
        })
}

fn placement(c: &mut criterion::Criterion) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if cores < 2 {
        eprintln!("placement: skipped, this machine has one core");
        return;
    }
    lab::pin::pin_current_thread(&[0]).expect("pin the bench to CPU 0");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let mut g = c.benchmark_group("placement");
    for (label, cpu) in [("same_core", 0), ("cross_core", 1)] {
        let pg = spawn(&rt, Kind::Postgres, cpu);
        let mut conn = rt.block_on(async {
            let pool = sqlx::PgPool::connect(&pg.url()).await.expect("connect");
            lab::seed::ensure_users_pg(&pool, USERS)
                .await
                .expect("seed");
            pool.close().await;
            sqlx::PgConnection::connect(&pg.url())
                .await
                .expect("connect")
        });
        let mut id = 0_i64;
        // block_on per iteration (not `to_async`): the one connection is
        // borrowed mutably, and the runtime's cost is the same in both placements.
        g.bench_function(format!("pg_pk_lookup_{label}"), |b| {
            b.iter(|| {
                id = id % USERS + 1;
                rt.block_on(async {
                    // sqlx prepares the statement once per connection and
                    // reuses it: this is a prepared primary-key lookup.
                    let row: (i64, String, String) =
                        sqlx::query_as("SELECT id, name, email FROM users WHERE id = $1")
                            .bind(id)
                            .fetch_one(&mut conn)
                            .await
                            .expect("a row");
                    black_box(row)
                })
            })
        });
        drop(conn);
        drop(pg);

        let redis = spawn(&rt, Kind::Redis, cpu);
        let mut rc = rt.block_on(async {
            let client = redis::Client::open(redis.url()).expect("url");
            let mut c = client
                .get_multiplexed_async_connection()
                .await
                .expect("connect");
            let _: () = redis::cmd("SET")
                .arg("user:1")
                .arg("{\"id\":1}")
                .query_async(&mut c)
                .await
                .expect("set");
            c
        });
        g.bench_function(format!("redis_get_{label}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let v: Option<String> = redis::cmd("GET")
                        .arg("user:1")
                        .query_async(&mut rc)
                        .await
                        .expect("get");
                    black_box(v)
                })
            })
        });
        drop(redis);
    }
    g.finish();
}

fn benches() {
    let mut c = criterion();
    placement(&mut c);
}

criterion_main!(benches);
