//! Exercise 5's reference answer: `SET LOCAL` inside a transaction.

use sqlx::PgPool;

use crate::REPORT;

/// Runs the report under `EXPLAIN (ANALYZE, FORMAT JSON)` with enough
/// `work_mem` for its sort, for this transaction only.
pub async fn explain_report(pool: &PgPool) -> anyhow::Result<serde_json::Value> {
    let mut tx = pool.begin().await?;
    // SET LOCAL lasts until COMMIT or ROLLBACK, so the connection goes back
    // to the pool with the server's work_mem. 64MB: the spilled sort wrote
    // about 10 MB (`Disk: 9992kB`), but in memory the same rows take about
    // 22 MB (`Memory: 22454kB` on PostgreSQL 15): each row is a tuple with
    // its header and a pointer there, packed tightly on disk. A margin over
    // that, because the table may grow.
    sqlx::query("SET LOCAL work_mem = '64MB'")
        .execute(&mut *tx)
        .await?;
    let plan = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {REPORT}"))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(plan)
}
