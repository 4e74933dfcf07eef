//! Lesson 5: each buffer setting as a criterion parameter, on private
//! servers started (or resized) with it: `shared_buffers`, `work_mem`,
//! `innodb_buffer_pool_size` and MariaDB's query cache.
//!
//! The data is seeded once per server. A `shared_buffers` value needs a
//! restart of the same data dir; the InnoDB pool grows online with
//! `SET GLOBAL`; `work_mem` is set per transaction; the query cache off and
//! on are two servers. Beside criterion's timings, the bench saves what the
//! servers reported (hit ratios, sort methods, query-cache counters, the
//! cold-start tiers) in `target/lab-experiments/buffers.json`, which
//! `just report` renders into the book. Sizes: [`Sizes::BOOK`], or
//! [`Sizes::DEMO`] with `LAB_QUICK=1`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main,
    measurement::WallTime,
};
use lab::results::Results;
use lesson_05_buffer_tuning::experiments::{
    self, BuffersResults, Sizes, mariadb, shared_buffers, work_mem,
};
use tokio::runtime::Runtime;

fn sizes() -> Sizes {
    if benches::quick() {
        Sizes::DEMO
    } else {
        Sizes::BOOK
    }
}

/// Scans and sorts take tens to hundreds of milliseconds: flat sampling,
/// so a group takes seconds, not minutes.
fn slow(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sampling_mode(SamplingMode::Flat);
    if benches::quick() {
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_secs(1));
    } else {
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
    }
}

/// The next id of `ids`, round and round: every iteration a different row.
fn next<'a>(ids: &'a [i64], at: &AtomicUsize) -> &'a i64 {
    &ids[at.fetch_add(1, Ordering::Relaxed) % ids.len()]
}

fn bench(c: &mut Criterion) {
    let rt = benches::runtime();
    let sizes = sizes();
    let t0 = Instant::now();
    let mut results = shared_buffers_sweep(c, &rt, sizes);
    results.work_mem = work_mem_sweep(c, &rt, sizes);
    (results.my_table_bytes, results.buffer_pool) = buffer_pool_sweep(c, &rt, sizes);
    results.query_cache = query_cache(c, &rt, sizes);
    let path = results.write().expect("write the results");
    eprintln!("wrote {} ({:.0?})", path.display(), t0.elapsed());
}

/// Experiment 1: one seeded data dir, restarted with each `shared_buffers`.
fn shared_buffers_sweep(c: &mut Criterion, rt: &Runtime, sizes: Sizes) -> BuffersResults {
    let ids = shared_buffers::spread_ids(sizes.pg_users, sizes.reads);
    let mut pg = rt
        .block_on(shared_buffers::Server::start(sizes.pg_users))
        .expect("a private, seeded PostgreSQL");
    let (pg_table_bytes, pg_index_bytes) =
        rt.block_on(experiments::pg_sizes(&pg.pool)).expect("sizes");
    let mut points = Vec::new();
    for (label, value) in shared_buffers::settings().expect("RAM size") {
        rt.block_on(pg.restart(&value)).expect("restart");
        points.push(
            rt.block_on(shared_buffers::measure(&pg.pool, label, &ids))
                .expect("measure"),
        );
        let pool = pg.pool.clone();
        let at = AtomicUsize::new(0);
        let mut g = c.benchmark_group("buffers_pg_read");
        g.bench_function(BenchmarkId::new("read", label), |b| {
            b.to_async(rt).iter(|| async {
                let _: Option<(i64, String)> =
                    sqlx::query_as("SELECT id, email FROM users WHERE id = $1")
                        .bind(next(&ids, &at))
                        .fetch_optional(&pool)
                        .await
                        .expect("read");
            })
        });
        g.finish();
        let mut g = c.benchmark_group("buffers_pg_scan");
        slow(&mut g);
        g.bench_function(BenchmarkId::new("scan", label), |b| {
            b.to_async(rt)
                .iter(|| async { shared_buffers::scan(&pool).await.expect("scan") })
        });
        g.finish();
    }
    // The cold start at PostgreSQL's default, where the book's table no
    // longer fits. A few thousand reads: from the disk each is slow.
    let cold_ids = &ids[..ids.len().min(5_000)];
    let cold_start = rt
        .block_on(shared_buffers::cold_start(&mut pg, "128MB", cold_ids))
        .expect("cold start");
    BuffersResults {
        sizes,
        ram_bytes: lesson_05_buffer_tuning::size::ram_bytes().expect("RAM size"),
        pg_table_bytes,
        pg_index_bytes,
        shared_buffers: points,
        cold_start,
        work_mem: Vec::new(),
        my_table_bytes: 0,
        buffer_pool: Vec::new(),
        query_cache: Vec::new(),
    }
}

/// Experiment 2: the same sort and hash under each `work_mem`.
fn work_mem_sweep(c: &mut Criterion, rt: &Runtime, sizes: Sizes) -> Vec<work_mem::Point> {
    let (_pg, pool) = rt
        .block_on(work_mem::start_server(sizes.sort_rows))
        .expect("a private, seeded PostgreSQL");
    let mut points = Vec::new();
    let mut g = c.benchmark_group("work_mem");
    slow(&mut g);
    for setting in work_mem::SETTINGS {
        points.push(
            rt.block_on(work_mem::measure(&pool, setting))
                .expect("measure"),
        );
        g.bench_function(BenchmarkId::new("sort", setting), |b| {
            b.to_async(rt)
                .iter(|| async { work_mem::sort(&pool, setting).await.expect("sort") })
        });
        g.bench_function(BenchmarkId::new("hash", setting), |b| {
            b.to_async(rt)
                .iter(|| async { work_mem::hash(&pool, setting).await.expect("hash") })
        });
    }
    g.finish();
    points
}

/// Experiment 3: one MariaDB, its pool grown online from 8M to 1G.
fn buffer_pool_sweep(
    c: &mut Criterion,
    rt: &Runtime,
    sizes: Sizes,
) -> (u64, Vec<mariadb::PoolPoint>) {
    let ids = shared_buffers::spread_ids(sizes.my_users, sizes.reads);
    let my = rt
        .block_on(mariadb::Server::for_buffer_pool(sizes.my_users))
        .expect("a private, seeded MariaDB");
    let bytes = rt
        .block_on(mariadb::table_bytes(&my.pool))
        .expect("table size");
    let mut points = Vec::new();
    let mut g = c.benchmark_group("innodb_pool_read");
    for (label, size) in mariadb::POOL_SIZES {
        points.push(
            rt.block_on(mariadb::measure_pool(&my, label, size, &ids))
                .expect("resize and measure"),
        );
        let at = AtomicUsize::new(0);
        g.bench_function(BenchmarkId::new("read", label), |b| {
            b.to_async(rt).iter(|| async {
                let _: Option<(i64, String)> =
                    sqlx::query_as("SELECT id, email FROM users WHERE id = ?")
                        .bind(next(&ids, &at))
                        .fetch_optional(&my.pool)
                        .await
                        .expect("read");
            })
        });
    }
    g.finish();
    (bytes, points)
}

/// Experiment 4: the query cache off and on, one server each.
fn query_cache(c: &mut Criterion, rt: &Runtime, sizes: Sizes) -> Vec<mariadb::QcPoint> {
    let mut points = Vec::new();
    for on in [false, true] {
        let mode = if on { "on" } else { "off" };
        let my = rt
            .block_on(mariadb::Server::for_query_cache(on, sizes.my_users))
            .expect("a private, seeded MariaDB");
        let pool = &my.pool;
        points.extend(
            rt.block_on(mariadb::measure_query_cache(
                pool,
                on,
                sizes.reads as u64,
                sizes.my_users as u64,
            ))
            .expect("counters"),
        );

        let mut g = c.benchmark_group("query_cache_aggregate");
        slow(&mut g);
        g.bench_function(BenchmarkId::new("repeat", mode), |b| {
            b.to_async(rt)
                .iter(|| async { mariadb::run_aggregate(pool).await.expect("aggregate") })
        });
        // Each iteration writes, then times only the aggregate.
        g.bench_function(BenchmarkId::new("after_write", mode), |b| {
            b.to_async(rt).iter_custom(|iters| async move {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    mariadb::touch_users(pool).await.expect("write");
                    let t0 = Instant::now();
                    mariadb::run_aggregate(pool).await.expect("aggregate");
                    took += t0.elapsed();
                }
                took
            })
        });
        g.finish();

        // Time per read with READERS readers at once: wall time ÷ reads.
        let mut g = c.benchmark_group("query_cache_reads");
        for (workload, span, writing) in mariadb::read_workloads(sizes.my_users as u64) {
            let writer = writing
                .then(|| rt.block_on(async { mariadb::Writer::start(pool, mariadb::WRITE_EVERY) }));
            // Each call goes on where the last stopped, so "spread" reads
            // never repeat a query, in warm-up or measurement.
            let from = &AtomicU64::new(200_000);
            g.bench_function(BenchmarkId::new(workload, mode), |b| {
                b.to_async(rt).iter_custom(|iters| async move {
                    let per_reader = iters.div_ceil(mariadb::READERS as u64);
                    let start = from.fetch_add(per_reader, Ordering::Relaxed);
                    let took = mariadb::reads(pool, mariadb::READERS, per_reader, span, start)
                        .await
                        .expect("reads");
                    took.mul_f64(iters as f64 / (per_reader * mariadb::READERS as u64) as f64)
                })
            });
            if let Some(w) = writer {
                rt.block_on(w.stop()).expect("the writer");
            }
        }
        g.finish();
    }
    points
}

criterion_group! {
    name = buffers;
    config = benches::criterion();
    targets = bench
}
criterion_main!(buffers);
