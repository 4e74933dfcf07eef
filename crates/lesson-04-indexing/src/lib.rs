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
//!
//! # Layout
//!
//! - this file: connecting to a private PostgreSQL with a statement timeout,
//!   seeded ([`private_postgres`]): where the demo, the bench and the tests
//!   all start.
//! - [`dataset`]: the `users` table with its edge rows, and `newsletter`.
//! - [`indexes`]: every index the cases use, and setting exactly a list of them.
//! - [`search`]: the queries, `LIKE` escaping, and `EXPLAIN` as JSON or text.
//! - [`cases`]: cases 1–5, each a query before and after its index.
//! - [`plan`]: reading a plan (the access node, buffers, heap fetches).
//! - [`mariadb`]: case 6's steps on MariaDB.
//! - [`experiment`]: what the `indexing` bench leaves for `just report`
//!   (index sizes, plans), one `…Results` type per file.
//! - [`cli`]: the command line (`Args`).
//! - [`demo`]: `just lesson-4`, [`demo::run`]: every case with its plan.

use std::time::Duration;

pub mod cases;
pub mod cli;
pub mod dataset;
pub mod demo;
pub mod experiment;
pub mod indexes;
pub mod mariadb;
pub mod plan;
pub mod search;

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
