//! # Exercise 4: make the slow searches fast, without changing them
//!
//! The application searches users two ways, and both scan the whole table:
//!
//! ```sql
//! SELECT id, email FROM users WHERE email LIKE $1 ORDER BY id  -- $1 = '%@rare-domain.org'
//! SELECT id, email FROM users WHERE email LIKE $1 ORDER BY id  -- $1 = 'user123%'
//! ```
//!
//! `users.email` is in the `en-US` collation, as in lesson 4. Write the
//! migration, in `src/starter.rs`, that lets PostgreSQL answer both from an
//! index, **without changing the queries** and without changing what they
//! return.
//!
//! ```text
//! just exercise-4          # the tests against your src/starter.rs
//! # without just: cargo test -p exercise-04-indexing --features starter
//! ```
//!
//! The tests seed a private PostgreSQL, run your migration (twice: a
//! migration must be safe to re-run), and check the plans with `EXPLAIN
//! (FORMAT JSON)` and the results against the ones before.

#[cfg(feature = "starter")]
mod starter;
#[cfg(feature = "starter")]
pub use starter::MIGRATION;

#[cfg(not(feature = "starter"))]
mod solution;
#[cfg(not(feature = "starter"))]
pub use solution::MIGRATION;

/// Applies the migration.
pub async fn migrate(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    use anyhow::Context;
    sqlx::raw_sql(MIGRATION)
        .execute(pool)
        .await
        .context("the migration failed")?;
    sqlx::query("ANALYZE users").execute(pool).await?;
    Ok(())
}
