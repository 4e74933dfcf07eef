//! The deterministic `users` data set: the same rows on every machine.
//!
//! User `n` is named `User n` and has the email `user{n}@{domain}`, where the
//! domain is one of twenty common ones, except that one user in ten thousand
//! (ids ending in 0007) is on [`RARE_DOMAIN`]. Lesson 4 needs both: many
//! domains, so a suffix search is selective, and a rare one, so an index on
//! the suffix has something to find fast.
//!
//! The rows are generated inside the database (`generate_series` in
//! PostgreSQL, the `seq_1_to_N` engine in MariaDB), in batches so that a
//! progress bar can follow a large seed. Nothing crosses the network but the
//! statements, which is why a million rows take seconds.

use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::{MySqlPool, PgPool};

/// The domain of one user in ten thousand.
pub const RARE_DOMAIN: &str = "rare-domain.org";

/// The common domains. Order matters: [`email_for`] indexes into it.
pub const DOMAINS: [&str; 20] = [
    "example.com",
    "example.org",
    "example.net",
    "mail.test",
    "inbox.test",
    "post.test",
    "corp.test",
    "school.test",
    "shop.test",
    "news.test",
    "cloud.test",
    "home.test",
    "web.test",
    "team.test",
    "dev.test",
    "data.test",
    "media.test",
    "games.test",
    "travel.test",
    "health.test",
];

/// Rows per statement. Large enough that statement overhead is noise, small
/// enough that the progress bar moves every few hundred milliseconds.
const BATCH: i64 = 50_000;

/// Seeds below this size finish in well under a second: no progress bar.
const PROGRESS_FROM: i64 = 100_000;

/// The domain of user `id`; the SQL below computes the same.
pub fn domain_for(id: i64) -> &'static str {
    if id % 10_000 == 7 {
        RARE_DOMAIN
    } else {
        DOMAINS[((id * 7919) % DOMAINS.len() as i64) as usize]
    }
}

pub fn email_for(id: i64) -> String {
    format!("user{id}@{}", domain_for(id))
}

pub fn name_for(id: i64) -> String {
    format!("User {id}")
}

/// How many users have `RARE_DOMAIN` among ids `1..=rows`.
pub fn rare_count(rows: i64) -> i64 {
    if rows < 7 { 0 } else { (rows - 7) / 10_000 + 1 }
}

// ANCHOR: pg_schema
const PG_CREATE: &str = "CREATE TABLE IF NOT EXISTS users (
    id         bigint PRIMARY KEY,
    name       text NOT NULL,
    email      text NOT NULL,
    created_at timestamptz NOT NULL
)";
// ANCHOR_END: pg_schema

const PG_INSERT: &str = "INSERT INTO users (id, name, email, created_at)
SELECT g,
       'User ' || g,
       'user' || g || '@' || CASE WHEN g % 10000 = 7 THEN $3
                                  ELSE ($4::text[])[1 + ((g * 7919) % 20)::int] END,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '17 seconds'
FROM generate_series($1::bigint, $2::bigint) AS g
ON CONFLICT (id) DO NOTHING";

/// Creates `users` in the pool's schema if it is missing, and seeds ids
/// `1..=rows` that are not there yet. Safe to call on every start.
#[tracing::instrument(skip(pool))]
pub async fn ensure_users_pg(pool: &PgPool, rows: i64) -> anyhow::Result<()> {
    create_pg_table(pool, PG_CREATE)
        .await
        .context("Failed to create table users")?;
    let (have,): (Option<i64>,) = sqlx::query_as("SELECT max(id) FROM users")
        .fetch_one(pool)
        .await?;
    let from = have.unwrap_or(0) + 1;
    if from > rows {
        return Ok(());
    }
    let domains: Vec<String> = DOMAINS.iter().map(|d| d.to_string()).collect();
    in_batches("users", from, rows, |lo, hi| {
        sqlx::query(PG_INSERT)
            .bind(lo)
            .bind(hi)
            .bind(RARE_DOMAIN)
            .bind(&domains)
            .execute(pool)
    })
    .await?;
    // Fresh statistics for the planner, and a visibility map for
    // index-only scans, exactly as a long-lived table would have.
    sqlx::query("VACUUM ANALYZE users")
        .execute(pool)
        .await
        .context("Failed to VACUUM ANALYZE users")?;
    Ok(())
}

/// Runs a `CREATE TABLE IF NOT EXISTS` under a transaction-scoped advisory
/// lock on the schema. Two processes starting on a new schema at once (two
/// lessons, or a lesson and its test) would otherwise race inside
/// PostgreSQL: both see no table, both create its row type, and one fails
/// with `duplicate key value violates unique constraint
/// "pg_type_typname_nsp_index"`. `IF NOT EXISTS` is checked before the
/// insert into the catalog, not atomically with it; the lock makes the
/// second creator wait, then find the table.
async fn create_pg_table(pool: &PgPool, ddl: &str) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('lab.seed:' || current_schema()))")
        .execute(&mut *tx)
        .await?;
    sqlx::query(ddl).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

const PG_ORDERS: &str = "CREATE TABLE IF NOT EXISTS orders (
    id           bigint PRIMARY KEY,
    user_id      bigint NOT NULL,
    amount_cents integer NOT NULL,
    created_at   timestamptz NOT NULL
)";

/// Creates `orders` if missing and seeds orders `1..=rows`, spread over users
/// `1..=users` (order `n` belongs to user `(n * 7919) % users + 1`). There is
/// deliberately no index on `user_id`: the summary query scans the table.
#[tracing::instrument(skip(pool))]
pub async fn ensure_orders_pg(pool: &PgPool, rows: i64, users: i64) -> anyhow::Result<()> {
    create_pg_table(pool, PG_ORDERS)
        .await
        .context("Failed to create table orders")?;
    let (have,): (Option<i64>,) = sqlx::query_as("SELECT max(id) FROM orders")
        .fetch_one(pool)
        .await?;
    let from = have.unwrap_or(0) + 1;
    if from > rows {
        return Ok(());
    }
    in_batches("orders", from, rows, |lo, hi| {
        sqlx::query(
            "INSERT INTO orders (id, user_id, amount_cents, created_at)
             SELECT g, (g * 7919) % $3 + 1, 100 + (g * 31) % 9900,
                    timestamptz '2024-01-01 00:00:00+00' + g * interval '3 seconds'
             FROM generate_series($1::bigint, $2::bigint) AS g
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(lo)
        .bind(hi)
        .bind(users)
        .execute(pool)
    })
    .await?;
    sqlx::query("VACUUM ANALYZE orders")
        .execute(pool)
        .await
        .context("Failed to VACUUM ANALYZE orders")?;
    Ok(())
}

const MY_CREATE: &str = "CREATE TABLE IF NOT EXISTS users (
    id         BIGINT PRIMARY KEY,
    name       VARCHAR(100) NOT NULL,
    email      VARCHAR(255) NOT NULL,
    created_at TIMESTAMP NOT NULL
) ENGINE=InnoDB";

/// The MariaDB twin of [`ensure_users_pg`]. It uses MariaDB's sequence
/// engine (`seq_1_to_N`), which MySQL does not have.
#[tracing::instrument(skip(pool))]
pub async fn ensure_users_mysql(pool: &MySqlPool, rows: i64) -> anyhow::Result<()> {
    sqlx::query(MY_CREATE)
        .execute(pool)
        .await
        .context("Failed to create table users")?;
    let (have,): (Option<i64>,) = sqlx::query_as("SELECT CAST(MAX(id) AS SIGNED) FROM users")
        .fetch_one(pool)
        .await?;
    let from = have.unwrap_or(0) + 1;
    if from > rows {
        return Ok(());
    }
    // The domains are our own constants, so inlining them is safe.
    let elt = DOMAINS
        .iter()
        .map(|d| format!("'{d}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let insert = |lo: i64, hi: i64| {
        let sql = format!(
            "INSERT IGNORE INTO users (id, name, email, created_at)
             SELECT seq, CONCAT('User ', seq),
                    CONCAT('user', seq, '@', IF(seq % 10000 = 7, '{RARE_DOMAIN}', ELT(1 + (seq * 7919) % 20, {elt}))),
                    TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (seq * 17) SECOND
             FROM seq_{lo}_to_{hi}"
        );
        async move { sqlx::query(&sql).execute(pool).await }
    };
    in_batches("users", from, rows, insert).await?;
    sqlx::query("ANALYZE TABLE users")
        .execute(pool)
        .await
        .context("Failed to ANALYZE users")?;
    Ok(())
}

/// Runs `insert(lo, hi)` over `from..=rows` in batches of [`BATCH`], with a
/// progress bar for large seeds and one log line at the end.
async fn in_batches<F, Fut, T>(
    what: &str,
    from: i64,
    rows: i64,
    mut insert: F,
) -> anyhow::Result<()>
where
    F: FnMut(i64, i64) -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let t0 = Instant::now();
    let bar = progress(what, rows - from + 1);
    let mut lo = from;
    while lo <= rows {
        let hi = (lo + BATCH - 1).min(rows);
        insert(lo, hi)
            .await
            .with_context(|| format!("Failed to seed {what} {lo}..={hi}"))?;
        bar.inc((hi - lo + 1) as u64);
        lo = hi + 1;
    }
    bar.finish_and_clear();
    tracing::info!("seeded {what} {from}..={rows} in {:.1?}", t0.elapsed());
    Ok(())
}

fn progress(what: &str, rows: i64) -> ProgressBar {
    if rows < PROGRESS_FROM {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(rows as u64);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "seeding {what} {{bar:30}} {{human_pos}}/{{human_len}} ({{eta}} left)"
    )) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_deterministic_and_varied() {
        assert_eq!(email_for(7), "user7@rare-domain.org");
        assert_eq!(email_for(10_007), "user10007@rare-domain.org");
        assert_eq!(email_for(1), format!("user1@{}", DOMAINS[7919 % 20]));
        let used: std::collections::HashSet<_> = (1..=1000).map(domain_for).collect();
        assert_eq!(
            used.len(),
            DOMAINS.len() + 1,
            "every domain appears in the first 1000 users"
        );
        assert_eq!(rare_count(6), 0);
        assert_eq!(rare_count(7), 1);
        assert_eq!(rare_count(1_000_000), 100);
    }
}
