//! Experiments 3 and 4: InnoDB's buffer pool, resized online, and
//! MariaDB's query cache.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
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
/// narrates the steps.
pub async fn resize(pool: &MySqlPool, bytes: u64) -> anyhow::Result<String> {
    sqlx::query(&format!("SET GLOBAL innodb_buffer_pool_size = {bytes}"))
        .execute(pool)
        .await
        .context("SET GLOBAL innodb_buffer_pool_size")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, msg): (String, String) =
            sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_resize_status'")
                .fetch_one(pool)
                .await?;
        if pool_size(pool).await? == bytes && !msg.contains("Resizing") {
            return Ok(msg);
        }
        if Instant::now() > deadline {
            bail!("the buffer pool did not reach {bytes} bytes within 60 s: {msg}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
// ANCHOR_END: resize

/// Reads `ids` by primary key, then returns the share of page requests the
/// pool answered on a second pass over the same ids:
/// 1 − `Innodb_buffer_pool_reads` / `Innodb_buffer_pool_read_requests`.
pub async fn hit_ratio(pool: &MySqlPool, ids: &[i64]) -> anyhow::Result<f64> {
    let pass = || async {
        for id in ids {
            let _: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE id = ?")
                .bind(id)
                .fetch_optional(pool)
                .await?;
        }
        anyhow::Ok(())
    };
    pass().await?;
    let (r0, q0) = (
        status(pool, "Innodb_buffer_pool_reads").await?,
        status(pool, "Innodb_buffer_pool_read_requests").await?,
    );
    pass().await?;
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
