//! The reference solution: `SET LOCAL` inside a transaction.

use sqlx::PgPool;

use crate::REPORT;

pub async fn explain_report(pool: &PgPool) -> anyhow::Result<serde_json::Value> {
    let mut tx = pool.begin().await?;
    // SET LOCAL lasts until COMMIT or ROLLBACK, so the connection goes back
    // to the pool with the server's work_mem. 64MB: the spilled sort wrote
    // ~10MB to disk, and sorting in memory needs about twice that.
    sqlx::query("SET LOCAL work_mem = '64MB'")
        .execute(&mut *tx)
        .await?;
    let plan = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {REPORT}"))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(plan)
}
