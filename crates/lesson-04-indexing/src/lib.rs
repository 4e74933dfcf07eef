//! # Lesson 4: indexes, before and after
//!
//! Each case runs a query on a `users` table twice or more: without the
//! right index and with it, and prints the plan PostgreSQL (or MariaDB)
//! chose, the time, and the buffers it read. The cases:
//!
//! 1. `WHERE email = $1`: a sequential scan, then a B-tree lookup.
//! 2. `WHERE email LIKE 'user12345%'`: in a language collation a plain
//!    B-tree is *not* used for LIKE; a `text_pattern_ops` B-tree is.
//! 3. `WHERE email LIKE '%@rare-domain.org'`: no B-tree on `email` helps a
//!    leading wildcard. Three fixes: a `pg_trgm` GIN index, an index on
//!    `reverse(email)`, and a generated `email_domain` column.
//! 4. `LIKE '%@example.com'` when 99% of rows match: no index can help.
//! 5. A covering index: an index-only scan, and `Heap Fetches` before and
//!    after VACUUM.
//! 6. Cases 1–3 on MariaDB.
//!
//! ```text
//! just lesson-4                    # or: cargo run -p lesson-04-indexing
//! LAB_INDEX_ROWS=1000000 just lesson-4
//! ```
//!
//! It runs on a private PostgreSQL it spawns (the lesson creates and drops
//! indexes and an extension), and on MariaDB as the harness finds it, in a
//! database of its own.

use std::time::Duration;

pub mod cases;
pub mod dataset;
pub mod demo;
pub mod indexes;
pub mod mariadb;
pub mod plan;
pub mod search;

/// The demo's settings.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "lesson-04-indexing",
    about = "Lesson 4: each query before and after the right index, with its plan, on PostgreSQL and MariaDB."
)]
pub struct Args {
    /// Users to seed. 200,000 by default: a scan then takes milliseconds and
    /// an index lookup tens of microseconds, so the gap is two orders of
    /// magnitude, and seeding takes about a second. The bench uses 1,000,000.
    #[arg(long, env = "LAB_INDEX_ROWS", default_value_t = 200_000, value_parser = clap::value_parser!(i64).range(1_000..=100_000_000))]
    pub rows: i64,
    /// Skip case 6 (MariaDB).
    #[arg(long)]
    pub no_mariadb: bool,
}

/// How long a statement in the lesson may take: building a GIN index on
/// 10M rows is minutes, and nothing here should wait forever.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

/// Connects to a private PostgreSQL for the lesson, with a statement timeout.
pub async fn pg_pool(url: &str) -> anyhow::Result<sqlx::PgPool> {
    use std::str::FromStr;
    let opts = sqlx::postgres::PgConnectOptions::from_str(url)?.options([(
        "statement_timeout",
        format!("{}", STATEMENT_TIMEOUT.as_millis()),
    )]);
    Ok(sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(opts)
        .await?)
}

/// A private PostgreSQL with the lesson's `users` seeded (`rows` of them):
/// what the demo, the bench and the tests all start from.
pub async fn private_postgres(rows: i64) -> anyhow::Result<(lab::spawn::Instance, sqlx::PgPool)> {
    use anyhow::Context;
    let pg = lab::spawn::Instance::start_new(lab::Kind::Postgres, lab::spawn::SpawnOptions::plain())
        .await
        .context("the lesson spawns a private PostgreSQL (it creates and drops indexes and an extension); install the server package")?;
    let pool = pg_pool(&pg.url()).await?;
    dataset::prepare_pg(&pool, rows).await?;
    Ok((pg, pool))
}
