//! The experiments' mechanisms, checked on private servers: settings and
//! plans, never timings.

use lab::Kind;
use lab::spawn::{Instance, SpawnOptions, can_spawn};
use lesson_05_buffer_tuning::experiments::{mariadb, shared_buffers, work_mem};

async fn pg_with(settings: &[(&str, &str)]) -> (Instance, sqlx::PgPool) {
    let pg = Instance::start_new(
        Kind::Postgres,
        SpawnOptions::with_settings(settings.iter().copied()),
    )
    .await
    .expect("a private PostgreSQL");
    let pool = sqlx::PgPool::connect(&pg.url()).await.expect("pool");
    (pg, pool)
}

#[tokio::test]
async fn the_sort_spills_at_64kb_and_fits_at_256mb() {
    if !can_spawn(Kind::Postgres, "work_mem") {
        return;
    }
    let (_pg, pool) = pg_with(&[]).await;
    work_mem::prepare(&pool, 200_000).await.expect("seed");
    let small = work_mem::sort(&pool, "64kB").await.expect("sort");
    let large = work_mem::sort(&pool, "256MB").await.expect("sort");
    assert_eq!(
        (small.method.as_str(), small.space_type.as_str()),
        ("external merge", "Disk"),
        "{small:?}"
    );
    assert_eq!(
        (large.method.as_str(), large.space_type.as_str()),
        ("quicksort", "Memory"),
        "{large:?}"
    );
    let small = work_mem::hash(&pool, "64kB").await.expect("hash");
    let large = work_mem::hash(&pool, "256MB").await.expect("hash");
    assert!(small.batches > 1 && small.disk_kb > 0, "{small:?}");
    assert_eq!((large.batches, large.disk_kb), (1, 0), "{large:?}");
}

#[tokio::test]
async fn a_larger_pool_keeps_more_of_the_working_set() {
    if !can_spawn(Kind::Postgres, "shared_buffers") {
        return;
    }
    let ids = shared_buffers::spread_ids(200_000, 3_000);
    let mut ratios = Vec::new();
    for size in ["1MB", "128MB"] {
        let (_pg, pool) = pg_with(&[("shared_buffers", size)]).await;
        let shown: String = sqlx::query_scalar("SHOW shared_buffers")
            .fetch_one(&pool)
            .await
            .expect("SHOW");
        assert_eq!(shown, size);
        lab::seed::ensure_users_pg(&pool, 200_000)
            .await
            .expect("seed");
        ratios.push(shared_buffers::hit_ratio(&pool, &ids).await.expect("ratio"));
    }
    assert!(
        ratios[1] > ratios[0] && ratios[1] > 0.99,
        "hit ratios with 1MB and 128MB: {ratios:?}"
    );
}

async fn mariadb_with(settings: &[(&str, &str)]) -> (Instance, sqlx::MySqlPool) {
    let my = Instance::start_new(
        Kind::MySql,
        SpawnOptions::with_settings(settings.iter().copied()),
    )
    .await
    .expect("a private MariaDB");
    // One connection: every statement of a test runs in the same session.
    // The query cache keys a result by the session's settings too, and
    // InnoDB decides per transaction whether a cached result may be used, so
    // a repeat on another pooled connection could miss where the test means
    // "the same query again" (it did, once, in CI).
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .connect(&my.url())
        .await
        .expect("pool");
    (my, pool)
}

/// Runs the aggregate until the query cache has stored a result since
/// `Qcache_inserts` was `before`. InnoDB lets the query cache store a result
/// only when no transaction newer than the reader's view changed the table,
/// so the first run right after the seed (or after a write) may be answered
/// and not stored; what the test checks is what happens to the *repeat*.
async fn run_until_cached(pool: &sqlx::MySqlPool, before: u64) {
    for _ in 0..20 {
        mariadb::run_aggregate(pool).await.expect("run");
        if mariadb::status(pool, "Qcache_inserts")
            .await
            .expect("status")
            > before
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the aggregate's result was never stored in the query cache");
}

#[tokio::test]
async fn the_query_cache_hits_on_a_repeat_and_a_write_empties_it() {
    if !can_spawn(Kind::MySql, "query cache") {
        return;
    }
    let (_my, pool) = mariadb_with(&[("query_cache_type", "1"), ("query_cache_size", "64M")]).await;
    lab::seed::ensure_users_mysql(&pool, 20_000)
        .await
        .expect("seed");
    let hits = || mariadb::status(&pool, "Qcache_hits");
    let inserts = || mariadb::status(&pool, "Qcache_inserts");
    run_until_cached(&pool, inserts().await.expect("status")).await;
    let before = hits().await.expect("status");
    mariadb::run_aggregate(&pool).await.expect("repeat");
    assert_eq!(
        hits().await.expect("status"),
        before + 1,
        "the repeat is a hit"
    );

    mariadb::touch_users(&pool).await.expect("update");
    let stored = inserts().await.expect("status");
    mariadb::run_aggregate(&pool)
        .await
        .expect("after the write");
    assert_eq!(
        hits().await.expect("status"),
        before + 1,
        "after a write to users the aggregate is a miss"
    );
    // And its result is stored again (once InnoDB allows it). The run just
    // above may have stored it already; that counts.
    run_until_cached(&pool, stored).await;
}

#[tokio::test]
async fn the_buffer_pool_resizes_online_and_a_larger_one_hits_more() {
    if !can_spawn(Kind::MySql, "buffer pool") {
        return;
    }
    let (_my, pool) = mariadb_with(&[
        ("innodb_buffer_pool_chunk_size", "2M"),
        ("innodb_buffer_pool_size", "8M"),
    ])
    .await;
    assert_eq!(mariadb::pool_size(&pool).await.expect("size"), 8 << 20);
    lab::seed::ensure_users_mysql(&pool, 200_000)
        .await
        .expect("seed");
    let ids = shared_buffers::spread_ids(200_000, 3_000);
    let small = mariadb::hit_ratio(&pool, &ids).await.expect("ratio");
    let msg = mariadb::resize(&pool, 256 << 20).await.expect("resize");
    assert_eq!(
        mariadb::pool_size(&pool).await.expect("size"),
        256 << 20,
        "{msg:?}"
    );
    let large = mariadb::hit_ratio(&pool, &ids).await.expect("ratio");
    assert!(
        large > small && large > 0.99,
        "hit ratios with 8M and 256M: {small} vs {large}"
    );
}
