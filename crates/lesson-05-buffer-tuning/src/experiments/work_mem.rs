//! Experiment 2: `work_mem`, the memory one sort or hash node may use
//! before it spills to disk.
//!
//! `work_mem` is per *node*, per *connection*: a query with three sorts and
//! a hash join may use four times it, in each of `max_connections`
//! sessions. That is why PgTune divides RAM by connections × 3, and why
//! raising it globally is dangerous; raise it per session or per role for
//! the reports that need it (`SET work_mem = '256MB'`).

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;

/// The settings the experiment compares.
pub const SETTINGS: [&str; 4] = ["64kB", "4MB", "32MB", "256MB"];

/// `sortable`: `rows` rows with a random-looking 32-character text to sort
/// and a group key with 100,000 values to hash.
pub async fn prepare(pool: &PgPool, rows: i64) -> anyhow::Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS sortable (id bigint PRIMARY KEY, val text NOT NULL, grp int NOT NULL)",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO sortable SELECT g, md5(g::text), (g % 100000)::int \
         FROM generate_series(1, $1::bigint) AS g ON CONFLICT (id) DO NOTHING",
    )
    .bind(rows)
    .execute(pool)
    .await
    .context("Failed to seed sortable")?;
    sqlx::query("VACUUM ANALYZE sortable").execute(pool).await?;
    Ok(())
}

/// What one sort did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sort {
    pub work_mem: String,
    /// `quicksort`, `top-N heapsort` or `external merge`.
    pub method: String,
    /// `Memory` or `Disk`.
    pub space_type: String,
    pub space_kb: u64,
    pub ms: f64,
}

/// What one hash aggregate did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hash {
    pub work_mem: String,
    /// 1 when it fit; more when it spilled partitions to disk.
    pub batches: u64,
    pub disk_kb: u64,
    pub peak_kb: u64,
    pub ms: f64,
}

// ANCHOR: explain_under
/// EXPLAIN ANALYZE `sql` with `work_mem` set for this transaction only.
/// The server runs the query fully and throws the rows away, so the time
/// is the sort's, not the network's; `TIMING OFF` skips the per-row clock
/// reads that would otherwise inflate it.
/// Parallel workers are off, so the plan has one sort (or hash) node and
/// its numbers are the whole story; each worker would get its own
/// `work_mem`, another reason the setting multiplies.
async fn explain_under(
    pool: &PgPool,
    work_mem: &str,
    sql: &str,
    extra: &str,
) -> anyhow::Result<Value> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("SET LOCAL work_mem = '{work_mem}'"))
        .execute(&mut *tx)
        .await
        .with_context(|| format!("work_mem = {work_mem}"))?;
    sqlx::query("SET LOCAL max_parallel_workers_per_gather = 0")
        .execute(&mut *tx)
        .await?;
    if !extra.is_empty() {
        sqlx::query(extra).execute(&mut *tx).await?;
    }
    let plan: Value =
        sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {sql}"))
            .fetch_one(&mut *tx)
            .await?;
    tx.rollback().await?;
    Ok(plan)
}
// ANCHOR_END: explain_under

fn node<'a>(plan: &'a Value, node_type: &str) -> Option<&'a Value> {
    fn walk<'a>(n: &'a Value, t: &str) -> Option<&'a Value> {
        if n["Node Type"] == t {
            return Some(n);
        }
        n["Plans"].as_array()?.iter().find_map(|c| walk(c, t))
    }
    walk(&plan[0]["Plan"], node_type)
}

pub const SORT_SQL: &str = "SELECT id, val FROM sortable ORDER BY val";
/// Sorting is switched off for the GROUP BY, or at small `work_mem` the
/// planner sorts and groups instead, and there would be no hash to watch.
pub const HASH_SQL: &str = "SELECT grp, count(*) FROM sortable GROUP BY grp";

pub async fn sort(pool: &PgPool, work_mem: &str) -> anyhow::Result<Sort> {
    let plan = explain_under(pool, work_mem, SORT_SQL, "").await?;
    let n = node(&plan, "Sort").context("the plan has no Sort node")?;
    Ok(Sort {
        work_mem: work_mem.to_string(),
        method: n["Sort Method"].as_str().unwrap_or("?").to_string(),
        space_type: n["Sort Space Type"].as_str().unwrap_or("?").to_string(),
        space_kb: n["Sort Space Used"].as_u64().unwrap_or(0),
        ms: plan[0]["Execution Time"].as_f64().unwrap_or(0.0),
    })
}

pub async fn hash(pool: &PgPool, work_mem: &str) -> anyhow::Result<Hash> {
    let plan = explain_under(pool, work_mem, HASH_SQL, "SET LOCAL enable_sort = off").await?;
    let n = node(&plan, "Aggregate").context("the plan has no Aggregate node")?;
    Ok(Hash {
        work_mem: work_mem.to_string(),
        batches: n["HashAgg Batches"].as_u64().unwrap_or(1),
        disk_kb: n["Disk Usage"].as_u64().unwrap_or(0),
        peak_kb: n["Peak Memory Usage"].as_u64().unwrap_or(0),
        ms: plan[0]["Execution Time"].as_f64().unwrap_or(0.0),
    })
}

/// One `work_mem` setting, as measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub sort: Sort,
    pub hash: Hash,
}

pub async fn measure(pool: &PgPool, work_mem: &str) -> anyhow::Result<Point> {
    Ok(Point {
        sort: sort(pool, work_mem).await?,
        hash: hash(pool, work_mem).await?,
    })
}

/// A private PostgreSQL with `sortable` seeded. Private, because the
/// experiment spills sorts to disk and sets `work_mem` as low as 64kB.
pub async fn start_server(rows: i64) -> anyhow::Result<(lab::spawn::Instance, PgPool)> {
    let pg =
        lab::spawn::Instance::start_new(lab::Kind::Postgres, lab::spawn::SpawnOptions::plain())
            .await
            .context("the experiment spawns a private PostgreSQL; install the server package")?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(&pg.url())
        .await
        .context("connect to the private PostgreSQL")?;
    prepare(&pool, rows).await?;
    Ok((pg, pool))
}
