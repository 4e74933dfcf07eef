//! Your migration goes here. `just exercise-4` runs the tests against it.

/// Plain SQL, run as it is; several statements are fine.
pub const MIGRATION: &str = r#"
-- TODO: one or more statements that make both searches index-backed:
--         email LIKE '%@rare-domain.org'   (a suffix)
--         email LIKE 'user123%'            (a prefix, in the en-US collation)
--       The queries must not change. Lesson 4's chapter lists what can
--       serve each; one kind of index can serve both.
-- TODO: make it safe to run twice (IF NOT EXISTS).
"#;
