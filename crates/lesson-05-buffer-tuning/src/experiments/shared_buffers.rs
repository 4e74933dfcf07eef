//! Experiment 1: `shared_buffers`, PostgreSQL's own page cache.
//!
//! The hit ratio counts pages found in `shared_buffers` against pages
//! asked of the operating system. A "read" here is not necessarily a disk
//! read: the OS page cache may well have the page in RAM. That is why a
//! small `shared_buffers` costs less than folklore says on a machine whose
//! RAM holds the data anyway; [`cold_start`] measures the three tiers
//! (shared_buffers, OS page cache, disk) apart.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// The settings the sweep compares: the smallest PostgreSQL accepts, two
/// fixed sizes, and the rule of thumb, 25% of this machine's RAM. Labels
/// are criterion's parameters; values what the server is started with.
pub fn settings() -> anyhow::Result<Vec<(&'static str, String)>> {
    Ok(vec![
        ("128kB", "128kB".into()),
        ("16MB", "16MB".into()),
        ("128MB", "128MB".into()),
        (
            "25pct_ram",
            format!("{}MB", (crate::size::ram_bytes()? / 4) >> 20),
        ),
    ])
}

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

// ANCHOR: read_ids
/// The workload: reads `ids` by primary key, one query each, on one
/// connection, and returns the mean time per read.
pub async fn read_ids(pool: &PgPool, ids: &[i64]) -> anyhow::Result<Duration> {
    let mut c = pool.acquire().await?;
    let t0 = Instant::now();
    for id in ids {
        let _: Option<(i64, String)> = sqlx::query_as("SELECT id, email FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
    }
    let took = t0.elapsed() / ids.len().max(1) as u32;
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *c)
        .await?;
    Ok(took)
}
// ANCHOR_END: read_ids

/// The hit ratio of reading `ids` once more after a warm-up pass over the
/// same ids: how much of that working set `shared_buffers` kept.
pub async fn hit_ratio(pool: &PgPool, ids: &[i64]) -> anyhow::Result<f64> {
    read_ids(pool, ids).await?;
    let (h0, r0) = blocks(pool).await?;
    read_ids(pool, ids).await?;
    let (h1, r1) = blocks(pool).await?;
    Ok(ratio(h1 - h0, r1 - r0))
}

fn ratio(hits: i64, reads: i64) -> f64 {
    if hits + reads == 0 {
        0.0
    } else {
        hits as f64 / (hits + reads) as f64
    }
}

/// The full-scan aggregate.
pub const SCAN_SQL: &str = "SELECT count(*), max(created_at) FROM users";

/// What one scan did, from `EXPLAIN (ANALYZE, BUFFERS)`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scan {
    pub shared_hit: u64,
    pub shared_read: u64,
    pub ms: f64,
}

// ANCHOR: scan
/// Runs the aggregate under `EXPLAIN (ANALYZE, BUFFERS, TIMING OFF)`: the
/// server executes it fully and reports how many pages it found in
/// shared_buffers ("shared hit") and how many it asked the OS for ("read").
/// One process scans (no parallel workers), so the numbers are one scan's.
pub async fn scan(pool: &PgPool) -> anyhow::Result<Scan> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL max_parallel_workers_per_gather = 0")
        .execute(&mut *tx)
        .await?;
    let plan: serde_json::Value = sqlx::query_scalar(&format!(
        "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) {SCAN_SQL}"
    ))
    .fetch_one(&mut *tx)
    .await?;
    tx.rollback().await?;
    let top = &plan[0]["Plan"];
    Ok(Scan {
        shared_hit: top["Shared Hit Blocks"].as_u64().unwrap_or(0),
        shared_read: top["Shared Read Blocks"].as_u64().unwrap_or(0),
        ms: plan[0]["Execution Time"].as_f64().unwrap_or(0.0),
    })
}
// ANCHOR_END: scan

/// One setting of the sweep, as measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub label: String,
    /// `SHOW shared_buffers`: what the server really runs with.
    pub shown: String,
    /// Hit ratio of the random reads' second pass.
    pub read_hit_ratio: f64,
    /// Mean time per random read on that second pass (the bench's
    /// criterion figures are the book's timings; this is the demo's).
    pub read_us: f64,
    /// The second of two scans.
    pub scan: Scan,
}

/// Measures one setting on a freshly started server.
pub async fn measure(pool: &PgPool, label: &str, ids: &[i64]) -> anyhow::Result<Point> {
    let shown: String = sqlx::query_scalar("SHOW shared_buffers")
        .fetch_one(pool)
        .await?;
    let read_hit_ratio = hit_ratio(pool, ids).await?;
    let read_us = read_ids(pool, ids).await?.as_secs_f64() * 1e6;
    scan(pool).await?;
    let scan = scan(pool).await?;
    Ok(Point {
        label: label.to_string(),
        shown,
        read_hit_ratio,
        read_us,
        scan,
    })
}

/// The three tiers a page can come from, as the time per random read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColdStart {
    pub setting: String,
    /// Every page in shared_buffers (a second pass).
    pub shared_buffers_us: f64,
    /// Just restarted, so shared_buffers is empty, but the OS page cache
    /// still has the files: every miss is a copy from RAM.
    pub os_cache_us: f64,
    /// Restarted with the table's files evicted from the OS page cache:
    /// every miss is a read from the disk.
    pub disk_us: f64,
    /// Hit ratio of the first pass after the restarts (the same for both).
    pub first_pass_hit_ratio: f64,
    pub reads: usize,
}

// ANCHOR: evict
/// Drops `users` and its primary key from the OS page cache, so the next
/// read of them goes to the disk. (`/proc/sys/vm/drop_caches` would do it
/// for the whole machine, but needs privileges a sandbox rarely has;
/// `posix_fadvise(DONTNEED)` works on the files we own.) Returns the bytes.
pub async fn evict_from_os_cache(pool: &PgPool) -> anyhow::Result<u64> {
    let data_dir: String = sqlx::query_scalar("SHOW data_directory")
        .fetch_one(pool)
        .await?;
    let mut bytes = 0;
    for rel in ["users", "users_pkey"] {
        let file: String = sqlx::query_scalar("SELECT pg_relation_filepath($1::regclass)")
            .bind(rel)
            .fetch_one(pool)
            .await?;
        // A relation is a series of 1GB segments: base/1/16384, .1, .2, ...
        for seg in 0.. {
            let path = match seg {
                0 => format!("{data_dir}/{file}"),
                n => format!("{data_dir}/{file}.{n}"),
            };
            let Ok(f) = std::fs::File::open(&path) else {
                break;
            };
            bytes += f.metadata()?.len();
            let rc = fadvise_dontneed(&f);
            anyhow::ensure!(rc == 0, "posix_fadvise({path}) failed: error {rc}");
        }
    }
    Ok(bytes)
}
// ANCHOR_END: evict

#[allow(unsafe_code)]
fn fadvise_dontneed(f: &std::fs::File) -> i32 {
    use std::os::fd::AsRawFd;
    // SAFETY: `f` is an open descriptor for the whole call, and the call
    // only advises the kernel; it touches no memory of ours.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) }
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

#[cfg(test)]
mod tests {
    #[test]
    fn ratio_of_nothing_is_zero_not_nan() {
        assert_eq!(super::ratio(0, 0), 0.0);
        assert_eq!(super::ratio(3, 1), 0.75);
    }
}

/// A private PostgreSQL with `users` seeded once; each setting is a restart
/// of the same data dir, because `shared_buffers` only changes at a start.
#[derive(Debug)]
pub struct Server {
    pub pg: lab::spawn::Instance,
    pub pool: PgPool,
}

impl Server {
    pub async fn start(rows: i64) -> anyhow::Result<Server> {
        let pg = lab::spawn::Instance::start_new(lab::Kind::Postgres, lab::spawn::SpawnOptions::plain())
            .await
            .context("the experiment restarts PostgreSQL with other settings, so it spawns a private one; install the server package")?;
        let pool = pool(&pg.url()).await?;
        lab::seed::ensure_users_pg(&pool, rows).await?;
        sqlx::query("VACUUM ANALYZE users").execute(&pool).await?;
        Ok(Server { pg, pool })
    }

    /// Restarts with `shared_buffers = value`: empty buffers, the OS page
    /// cache as it was.
    pub async fn restart(&mut self, value: &str) -> anyhow::Result<()> {
        self.pool.close().await;
        self.pg.stop().await?;
        self.pg.set_setting("shared_buffers", value);
        self.pg.start().await?;
        self.pool = pool(&self.pg.url()).await?;
        Ok(())
    }
}

async fn pool(url: &str) -> anyhow::Result<PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .context("connect to the private PostgreSQL")
}

// ANCHOR: cold_start
/// The same random reads from each tier: restart (shared_buffers empty, OS
/// cache warm) and read once; restart again with the files evicted from
/// the OS cache and read once; then read again (all in shared_buffers).
pub async fn cold_start(
    server: &mut Server,
    value: &str,
    ids: &[i64],
) -> anyhow::Result<ColdStart> {
    server.restart(value).await?;
    read_ids(&server.pool, ids).await?; // the OS cache now holds these pages
    server.restart(value).await?;
    let (h0, r0) = blocks(&server.pool).await?;
    let os_cache = read_ids(&server.pool, ids).await?;
    let (h1, r1) = blocks(&server.pool).await?;
    server.restart(value).await?;
    evict_from_os_cache(&server.pool).await?;
    let disk = read_ids(&server.pool, ids).await?;
    let in_buffers = read_ids(&server.pool, ids).await?;
    Ok(ColdStart {
        setting: value.to_string(),
        shared_buffers_us: in_buffers.as_secs_f64() * 1e6,
        os_cache_us: os_cache.as_secs_f64() * 1e6,
        disk_us: disk.as_secs_f64() * 1e6,
        first_pass_hit_ratio: ratio(h1 - h0, r1 - r0),
        reads: ids.len(),
    })
}
// ANCHOR_END: cold_start
