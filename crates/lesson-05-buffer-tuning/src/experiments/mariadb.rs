//! Experiments 3 and 4: InnoDB's buffer pool, resized online, and
//! MariaDB's query cache.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sqlx::MySqlPool;

/// A global status counter (`SHOW GLOBAL STATUS`), as a number.
pub async fn status(pool: &MySqlPool, name: &str) -> anyhow::Result<u64> {
    // SHOW STATUS cannot take a bound parameter; information_schema can.
    let value: String = sqlx::query_scalar(
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = UPPER(?)",
    )
    .bind(name)
    .fetch_one(pool)
    .await
    .with_context(|| format!("no status {name}"))?;
    value
        .parse()
        .with_context(|| format!("{name} = {value:?} is not a number"))
}

/// `@@innodb_buffer_pool_size`, in bytes.
pub async fn pool_size(pool: &MySqlPool) -> anyhow::Result<u64> {
    let size: u64 = sqlx::query_scalar("SELECT @@innodb_buffer_pool_size")
        .fetch_one(pool)
        .await?;
    Ok(size)
}

// ANCHOR: resize
/// Resizes the buffer pool online and waits until InnoDB has done it. The
/// server keeps answering meanwhile; `Innodb_buffer_pool_resize_status`
/// narrates the steps, and the distinct messages seen are returned.
pub async fn resize(pool: &MySqlPool, bytes: u64) -> anyhow::Result<Vec<String>> {
    sqlx::query(&format!("SET GLOBAL innodb_buffer_pool_size = {bytes}"))
        .execute(pool)
        .await
        .context("SET GLOBAL innodb_buffer_pool_size")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let (_, msg): (String, String) =
            sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_resize_status'")
                .fetch_one(pool)
                .await?;
        if !msg.is_empty() && seen.last() != Some(&msg) {
            seen.push(msg.clone());
        }
        if pool_size(pool).await? == bytes && !msg.contains("Resizing") {
            return Ok(seen);
        }
        if Instant::now() > deadline {
            bail!("the buffer pool did not reach {bytes} bytes within 60 s: {msg}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
// ANCHOR_END: resize

/// Reads `ids` by primary key, one prepared query each on one connection,
/// and returns the mean time per read.
pub async fn read_ids(pool: &MySqlPool, ids: &[i64]) -> anyhow::Result<Duration> {
    let mut c = pool.acquire().await?;
    let t0 = Instant::now();
    for id in ids {
        let _: Option<(i64, String)> = sqlx::query_as("SELECT id, email FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
    }
    Ok(t0.elapsed() / ids.len().max(1) as u32)
}

/// Reads `ids` by primary key, then returns the share of page requests the
/// pool answered on a second pass over the same ids:
/// 1 − `Innodb_buffer_pool_reads` / `Innodb_buffer_pool_read_requests`.
pub async fn hit_ratio(pool: &MySqlPool, ids: &[i64]) -> anyhow::Result<f64> {
    read_ids(pool, ids).await?;
    let (r0, q0) = (
        status(pool, "Innodb_buffer_pool_reads").await?,
        status(pool, "Innodb_buffer_pool_read_requests").await?,
    );
    read_ids(pool, ids).await?;
    let (r1, q1) = (
        status(pool, "Innodb_buffer_pool_reads").await?,
        status(pool, "Innodb_buffer_pool_read_requests").await?,
    );
    let requests = (q1 - q0) as f64;
    Ok(if requests == 0.0 {
        0.0
    } else {
        1.0 - (r1 - r0) as f64 / requests
    })
}

/// InnoDB's data + index bytes for `users` (after ANALYZE, so current).
pub async fn table_bytes(pool: &MySqlPool) -> anyhow::Result<u64> {
    sqlx::raw_sql("ANALYZE TABLE users").execute(pool).await?;
    let bytes: u64 = sqlx::query_scalar(
        "SELECT CAST(data_length + index_length AS UNSIGNED) FROM information_schema.TABLES \
         WHERE table_schema = DATABASE() AND table_name = 'users'",
    )
    .fetch_one(pool)
    .await?;
    Ok(bytes)
}

/// The pool sizes the experiment compares, smallest first, because each
/// is an online resize of the one before.
pub const POOL_SIZES: [(&str, u64); 3] = [("8M", 8 << 20), ("128M", 128 << 20), ("1G", 1 << 30)];

/// A private MariaDB with `users` seeded.
#[derive(Debug)]
pub struct Server {
    pub my: lab::spawn::Instance,
    pub pool: MySqlPool,
}

impl Server {
    pub async fn start(settings: &[(&str, &str)], rows: i64) -> anyhow::Result<Server> {
        let my = lab::spawn::Instance::start_new(
            lab::Kind::MySql,
            lab::spawn::SpawnOptions::with_settings(settings.iter().copied()),
        )
        .await
        .context("the experiment starts MariaDB with its own settings, so it spawns a private one; install mariadb-server")?;
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&my.url())
            .await
            .context("connect to the private MariaDB")?;
        lab::seed::ensure_users_mysql(&pool, rows).await?;
        Ok(Server { my, pool })
    }

    // ANCHOR: pool_server
    /// For the buffer pool: the smallest size, in 2M chunks so it can be
    /// that small, and no dump/reload of the pool at restart, so every
    /// start is cold. (InnoDB reads with O_DIRECT, past the OS page cache:
    /// a page not in the pool comes from the disk, unlike PostgreSQL.)
    pub async fn for_buffer_pool(rows: i64) -> anyhow::Result<Server> {
        Server::start(
            &[
                ("innodb_buffer_pool_chunk_size", "2M"),
                ("innodb_buffer_pool_size", "8M"),
                ("innodb_buffer_pool_load_at_startup", "0"),
                ("innodb_buffer_pool_dump_at_shutdown", "0"),
            ],
            rows,
        )
        .await
    }
    // ANCHOR_END: pool_server

    // ANCHOR: qc_server
    /// For the query cache: MariaDB's default (off), or the old rule of
    /// thumb, `query_cache_type=1` with 64M.
    pub async fn for_query_cache(on: bool, rows: i64) -> anyhow::Result<Server> {
        let settings: &[(&str, &str)] = if on {
            &[("query_cache_type", "1"), ("query_cache_size", "64M")]
        } else {
            &[("query_cache_type", "0"), ("query_cache_size", "0")]
        };
        Server::start(settings, rows).await
    }
    // ANCHOR_END: qc_server
}

/// One pool size, as measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolPoint {
    pub label: String,
    /// `@@innodb_buffer_pool_size` after the resize.
    pub bytes: u64,
    /// Whether this size was reached by an online resize (else the server
    /// started with it).
    pub resized: bool,
    /// The `Innodb_buffer_pool_resize_status` messages seen while resizing.
    pub resize_status: Vec<String>,
    pub resize_ms: f64,
    pub hit_ratio: f64,
    /// Mean time per random read on the second pass (the demo's figure).
    pub read_us: f64,
}

/// Resizes to `bytes` (unless the pool is that size already) and measures.
pub async fn measure_pool(
    server: &Server,
    label: &str,
    bytes: u64,
    ids: &[i64],
) -> anyhow::Result<PoolPoint> {
    let pool = &server.pool;
    let log_from = std::fs::metadata(server.my.log_path()).map_or(0, |m| m.len());
    let t0 = Instant::now();
    let resized = pool_size(pool).await? != bytes;
    let mut resize_status = if resized {
        resize(pool, bytes).await?
    } else {
        Vec::new()
    };
    let resize_ms = t0.elapsed().as_secs_f64() * 1e3;
    if resized && resize_status.is_empty() {
        // Done before the first poll: the error log has the same story.
        resize_status = resize_log(&server.my.log_path(), log_from);
    }
    let hit_ratio = hit_ratio(pool, ids).await?;
    let read_us = read_ids(pool, ids).await?.as_secs_f64() * 1e6;
    Ok(PoolPoint {
        label: label.to_string(),
        bytes: pool_size(pool).await?,
        resized,
        resize_status,
        resize_ms,
        hit_ratio,
        read_us,
    })
}

/// InnoDB's notes about resizing, from byte `from` of the server log, with
/// the timestamp and "[Note] InnoDB: " cut off.
fn resize_log(path: &std::path::Path, from: u64) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    text.lines()
        // "innodb_buffer_pool_size=128m (8112 pages) resized from 8m (507
        // pages)" in 10.11; "Resizing buffer pool from …" in older servers.
        .filter(|l| l.contains("resized from") || l.contains("Resizing buffer pool"))
        .map(|l| {
            l.split_once("InnoDB: ")
                .map_or(l, |(_, m)| m)
                .trim_end_matches('.')
                .to_string()
        })
        .collect()
}

// ANCHOR: query_cache
/// The repeated aggregate. Sent as plain text (`raw_sql`), because the
/// query cache matches the statement's exact bytes, as the text protocol
/// sends them.
pub const AGGREGATE: &str =
    "SELECT COUNT(*), MAX(created_at) FROM users WHERE email LIKE '%@example.com'";

pub async fn run_aggregate(pool: &MySqlPool) -> anyhow::Result<()> {
    sqlx::raw_sql(AGGREGATE).execute(pool).await?;
    Ok(())
}

/// A write to `users`: any write to a table empties every cached result
/// that read it, whichever rows they were.
pub async fn touch_users(pool: &MySqlPool) -> anyhow::Result<()> {
    sqlx::query("UPDATE users SET created_at = created_at + INTERVAL 1 SECOND WHERE id = 1")
        .execute(pool)
        .await?;
    Ok(())
}
// ANCHOR_END: query_cache

/// The query cache's counters, as a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Qcache {
    pub hits: u64,
    pub inserts: u64,
    pub not_cached: u64,
    pub lowmem_prunes: u64,
}

impl Qcache {
    pub async fn now(pool: &MySqlPool) -> anyhow::Result<Qcache> {
        Ok(Qcache {
            hits: status(pool, "Qcache_hits").await?,
            inserts: status(pool, "Qcache_inserts").await?,
            not_cached: status(pool, "Qcache_not_cached").await?,
            lowmem_prunes: status(pool, "Qcache_lowmem_prunes").await?,
        })
    }

    pub fn since(self, before: Qcache) -> Qcache {
        Qcache {
            hits: self.hits - before.hits,
            inserts: self.inserts - before.inserts,
            not_cached: self.not_cached - before.not_cached,
            lowmem_prunes: self.lowmem_prunes - before.lowmem_prunes,
        }
    }
}

/// How many of the users the read load asks for: a hot set, as a popular
/// page would have, so a cache has something to hit.
pub const HOT_USERS: u64 = 1_000;

// ANCHOR: hot_reads
/// The read load: `readers` tasks at once (the pool gives each a
/// connection), each reading `per_reader` users among ids `1..=span` by
/// primary key, as text, so the query cache may answer. With `span` =
/// [`HOT_USERS`] the same queries come back often; with all users they
/// do not, as long as each call goes on `from` where the last one stopped
/// (the sequence visits every id before it repeats). Returns the wall time
/// for all of them.
pub async fn reads(
    pool: &MySqlPool,
    readers: usize,
    per_reader: u64,
    span: u64,
    from: u64,
) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for r in 0..readers as u64 {
        let pool = pool.clone();
        tasks.spawn(async move {
            for i in 0..per_reader {
                // 7919 is prime and shares no factor with 10^k, so
                // (n × 7919) mod span walks every id of a round span.
                // Inlined, not bound: the query cache only sees text
                // queries. `id` is an integer we made, never user input.
                let id = 1 + ((from + i) * 7919 + r * 104_729) % span;
                let sql = format!("SELECT id, email FROM users WHERE id = {id}");
                sqlx::raw_sql(&sql).execute(&pool).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(t0.elapsed())
}
// ANCHOR_END: hot_reads

/// A background writer: updates one hot user every `every`, until
/// [`stop`](Writer::stop)ped or dropped.
#[derive(Debug)]
pub struct Writer {
    task: Option<tokio::task::JoinHandle<anyhow::Result<u64>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Writer {
    pub fn start(pool: &MySqlPool, every: Duration) -> Writer {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (pool, flag) = (pool.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                tick.tick().await;
                let id = 1 + (n * 7919) % HOT_USERS;
                sqlx::query(
                    "UPDATE users SET created_at = created_at + INTERVAL 1 SECOND WHERE id = ?",
                )
                .bind(id as i64)
                .execute(&pool)
                .await?;
                n += 1;
            }
            Ok(n)
        });
        Writer {
            task: Some(task),
            stop,
        }
    }

    /// Stops the writer and returns how many updates it made.
    pub async fn stop(mut self) -> anyhow::Result<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(0),
        }
    }
}

/// Dropping a `JoinHandle` does not stop its task: without this, a writer
/// dropped on an error path would keep writing until the runtime ends.
impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One query-cache measurement: a workload on the server with the cache
/// off or on, its mean time per query and the counters it moved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QcPoint {
    pub workload: String,
    pub cache_on: bool,
    pub queries: u64,
    /// Mean time per query: the demo's figure (the bench's are criterion's).
    pub us: f64,
    pub counters: Qcache,
    /// Writes made meanwhile by the background writer.
    pub writes: u64,
}

impl QcPoint {
    /// The share of queries the cache answered.
    pub fn hit_share(&self) -> f64 {
        if self.queries == 0 {
            0.0
        } else {
            self.counters.hits as f64 / self.queries as f64
        }
    }
}

/// What the write load is: one UPDATE of a hot user per 2 ms, 500 a second.
pub const WRITE_EVERY: Duration = Duration::from_millis(2);
/// Readers in the read load: more than the 2 cores, so they contend.
pub const READERS: usize = 4;

/// The read workloads: name, ids `1..=span`, with the writer running.
pub fn read_workloads(users: u64) -> [(&'static str, u64, bool); 4] {
    [
        ("hot_reads", HOT_USERS, false),
        ("hot_reads_with_writes", HOT_USERS, true),
        ("spread_reads", users, false),
        ("spread_reads_with_writes", users, true),
    ]
}

/// The experiment's workloads, each run once, the point reads with `n`
/// queries over `users` users.
pub async fn measure_query_cache(
    pool: &MySqlPool,
    on: bool,
    n: u64,
    users: u64,
) -> anyhow::Result<Vec<QcPoint>> {
    let mut out = Vec::new();
    let point =
        |workload: &str, queries: u64, took: Duration, counters: Qcache, writes: u64| QcPoint {
            workload: workload.to_string(),
            cache_on: on,
            queries,
            us: took.as_secs_f64() * 1e6 / queries.max(1) as f64,
            counters,
            writes,
        };
    // A repeated aggregate: a full scan, unless the cache has the answer.
    run_aggregate(pool).await?;
    let before = Qcache::now(pool).await?;
    let t0 = Instant::now();
    let reps = 5;
    for _ in 0..reps {
        run_aggregate(pool).await?;
    }
    out.push(point(
        "aggregate",
        reps,
        t0.elapsed(),
        Qcache::now(pool).await?.since(before),
        0,
    ));
    // The same after each of a few writes: every write empties the cache.
    let before = Qcache::now(pool).await?;
    let mut took = Duration::ZERO;
    for _ in 0..reps {
        touch_users(pool).await?;
        let t0 = Instant::now();
        run_aggregate(pool).await?;
        took += t0.elapsed();
    }
    out.push(point(
        "aggregate_after_write",
        reps,
        took,
        Qcache::now(pool).await?.since(before),
        reps,
    ));
    // Point reads, of a hot set and of every user, without and with a
    // concurrent writer; the same queries in the same order on both servers.
    let per_reader = n / READERS as u64;
    reads(pool, READERS, per_reader, HOT_USERS, 0).await?;
    for (n, (workload, span, writing)) in read_workloads(users).into_iter().enumerate() {
        let before = Qcache::now(pool).await?;
        let writer = writing.then(|| Writer::start(pool, WRITE_EVERY));
        let took = reads(pool, READERS, per_reader, span, n as u64 * per_reader).await?;
        let writes = match writer {
            Some(w) => w.stop().await?,
            None => 0,
        };
        let mut counters = Qcache::now(pool).await?.since(before);
        // The writer's own UPDATEs are not cacheable; count only the reads.
        counters.not_cached = counters.not_cached.saturating_sub(writes);
        out.push(point(
            workload,
            per_reader * READERS as u64,
            took,
            counters,
            writes,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_resize_notes_are_read_from_the_log_without_timestamps() {
        let path = std::env::temp_dir().join(format!("lab-resize-log-{}", std::process::id()));
        let log = "2026-11-26 14:28:26 0 [Note] InnoDB: Completed initialization of buffer pool\n\
                   2026-11-26 14:28:26 5 [Note] InnoDB: Resizing hash tables\n\
                   2026-11-26 14:28:26 5 [Note] InnoDB: innodb_buffer_pool_size=128m (8112 pages) resized from 8m (507 pages)\n\
                   2026-11-26 14:28:27 5 [Note] InnoDB: Resizing buffer pool from 128M to 1024M (unit=2M).\n";
        std::fs::write(&path, format!("earlier: resized from nothing\n{log}")).expect("write");
        let from = "earlier: resized from nothing\n".len() as u64;
        assert_eq!(
            super::resize_log(&path, from),
            [
                "innodb_buffer_pool_size=128m (8112 pages) resized from 8m (507 pages)",
                "Resizing buffer pool from 128M to 1024M (unit=2M)",
            ]
        );
        let _ = std::fs::remove_file(&path);
    }
}
