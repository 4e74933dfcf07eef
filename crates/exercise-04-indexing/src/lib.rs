//! # Exercise 4: make the slow searches fast, without changing them (about 20 minutes)
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
//! just hint-4 1            # the first hint (of HINTS.md's four), if you are stuck
//! # without just: cargo test -p exercise-04-indexing --features starter
//! ```
//!
//! The tests seed a private PostgreSQL, run your migration (twice: a
//! migration must be safe to re-run), and check the plans with `EXPLAIN
//! (FORMAT JSON)` and the results against the ones before.

// Every migration below is compiled in every build. A feature only picks
// the one the tests apply: `starter` (what `just exercise-4` turns on) is
// yours; none is the reference in solution.rs; `wrong-*` are plausible
// mistakes that CI proves the tests catch. With several on (clippy's
// `--all-features`), the first in this list wins.
pub mod solution;
pub mod starter;
#[doc(hidden)]
pub mod wrong;

cfg_if::cfg_if! {
    if #[cfg(feature = "starter")] {
        pub use starter::MIGRATION;
    } else if #[cfg(feature = "wrong-plain-btree")] {
        pub use wrong::PLAIN_BTREE as MIGRATION;
    } else if #[cfg(feature = "wrong-pattern-ops-only")] {
        pub use wrong::PATTERN_OPS_ONLY as MIGRATION;
    } else if #[cfg(feature = "wrong-not-rerunnable")] {
        pub use wrong::NOT_RERUNNABLE as MIGRATION;
    } else {
        pub use solution::MIGRATION;
    }
}

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
