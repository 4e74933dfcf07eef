//! Your solution goes here. `just exercise-5` runs the tests against it;
//! `just hint-5 1` prints the first hint (HINTS.md has four).

use sqlx::PgPool;

use crate::REPORT;

/// Runs the report under `EXPLAIN (ANALYZE, FORMAT JSON)` and returns the
/// plan. Its sort must fit in memory.
pub async fn explain_report(pool: &PgPool) -> anyhow::Result<serde_json::Value> {
    // TODO: as it is, the sort spills to disk at the default work_mem (4MB):
    //       its plan says `Sort Method: external merge  Disk: 9992kB`.
    //       Give this query, and only this query, enough memory for it.
    //       How much? More than the Disk figure: in memory the same rows take
    //       about twice as much (try it: `SET work_mem` in psql, then
    //       `EXPLAIN ANALYZE` the report, until it says `quicksort  Memory`).
    //       Which form of SET lasts only until the end of a transaction
    //       (`pool.begin()`, then run both statements on `&mut *tx`)?
    let plan = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {REPORT}"))
        .fetch_one(pool)
        .await?;
    Ok(plan)
}
