//! Spoilers: plausible wrong answers, each caught by the tests. CI runs the
//! tests against every one (`--features wrong-<name>`) and fails if one
//! passes. Read them after you are done.

use sqlx::PgPool;

use crate::REPORT;

async fn explain(conn: &mut sqlx::PgConnection) -> anyhow::Result<serde_json::Value> {
    Ok(
        sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {REPORT}"))
            .fetch_one(conn)
            .await?,
    )
}

/// Runs `set`, then the report, on one connection from the pool.
async fn after(pool: &PgPool, set: &str) -> anyhow::Result<serde_json::Value> {
    let mut conn = pool.acquire().await?;
    sqlx::query(set).execute(&mut *conn).await?;
    explain(&mut conn).await
}

/// Wrong: a plain `SET` lasts for the session, and the pool hands that
/// connection, with 64MB of work_mem per sort, to every later query.
pub async fn session_set(pool: &PgPool) -> anyhow::Result<serde_json::Value> {
    after(pool, "SET work_mem = '64MB'").await
}

/// Wrong: `ALTER ROLE … SET` changes every *new* session of the role (the
/// whole application), and not the connection already open: this report
/// still spills.
pub async fn alter_role(pool: &PgPool) -> anyhow::Result<serde_json::Value> {
    after(pool, "ALTER ROLE CURRENT_USER SET work_mem = '64MB'").await
}

/// Wrong: the right scope, the wrong size. The Disk figure (about 10 MB)
/// is what the spilled sort wrote; sorting in memory needs about twice
/// that, so at 12MB it still spills.
pub async fn disk_figure(pool: &PgPool) -> anyhow::Result<serde_json::Value> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL work_mem = '12MB'")
        .execute(&mut *tx)
        .await?;
    let plan = explain(&mut tx).await?;
    tx.commit().await?;
    Ok(plan)
}
