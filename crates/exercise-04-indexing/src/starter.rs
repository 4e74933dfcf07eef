//! Your migration goes here. `just exercise-4` runs the tests against it;
//! `just hint-4 1` prints the first hint (HINTS.md has four).

/// Plain SQL, run as it is by `sqlx::raw_sql`; several statements, each
/// ending with `;`, are fine.
pub const MIGRATION: &str = r#"
-- TODO: one or more statements that make both searches index-backed:
--         email LIKE '%@rare-domain.org'   (a suffix: the wildcard comes first)
--         email LIKE 'user123%'            (a prefix, in the en-US collation)
--       The queries must not change. Lesson 4's chapter lists what can
--       serve each; one kind of index can serve both.
-- TODO: make it safe to run twice: `CREATE ... IF NOT EXISTS`.
"#;
