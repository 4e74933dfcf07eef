//! Experiment 1: `shared_buffers`, PostgreSQL's own page cache.
//!
//! The hit ratio counts pages found in `shared_buffers` against pages
//! asked of the operating system. A "read" here is not necessarily a disk
//! read: the OS page cache may well have the page in RAM. That is why a
//! small `shared_buffers` costs less than folklore says on a machine whose
//! RAM holds the data anyway.

use anyhow::Context;
use sqlx::PgPool;

/// The settings the sweep compares (the last is 25% of this machine's RAM).
pub const FIXED: [&str; 3] = ["128kB", "16MB", "128MB"];

/// Blocks found in shared_buffers and blocks read from the OS, for this
/// database, so far.
pub async fn blocks(pool: &PgPool) -> anyhow::Result<(i64, i64)> {
    // Statistics are flushed by each backend at intervals; ask for it now,
    // so the counters include the reads this connection just did.
    let mut c = pool.acquire().await?;
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *c)
        .await?;
    let (hit, read): (i64, i64) = sqlx::query_as(
        "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut *c)
    .await
    .context("pg_stat_database")?;
    Ok((hit, read))
}

/// Reads `ids` by primary key, one query each, on one connection.
pub async fn read_ids(pool: &PgPool, ids: &[i64]) -> anyhow::Result<()> {
    let mut c = pool.acquire().await?;
    for id in ids {
        let _: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
    }
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// The hit ratio of reading `ids` once more after a warm-up pass over the
/// same ids: how much of that working set `shared_buffers` kept.
pub async fn hit_ratio(pool: &PgPool, ids: &[i64]) -> anyhow::Result<f64> {
    read_ids(pool, ids).await?;
    let (h0, r0) = blocks(pool).await?;
    read_ids(pool, ids).await?;
    let (h1, r1) = blocks(pool).await?;
    let (hits, reads) = ((h1 - h0) as f64, (r1 - r0) as f64);
    Ok(if hits + reads == 0.0 {
        0.0
    } else {
        hits / (hits + reads)
    })
}

/// `count` ids spread over `1..=rows`, the same on every run.
pub fn spread_ids(rows: i64, count: usize) -> Vec<i64> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            1 + (x % rows as u64) as i64
        })
        .collect()
}
