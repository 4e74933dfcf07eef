//! Spoilers: plausible wrong migrations, each caught by the tests. CI runs
//! the tests against every one (`--features wrong-<name>`) and fails if one
//! passes. Read them after you are done.

/// Wrong: a plain B-tree on `email`. In a non-C collation (`en-US`) it
/// cannot serve `LIKE 'user123%'`, and no B-tree serves `LIKE '%@…'`.
pub const PLAIN_BTREE: &str = "
CREATE INDEX IF NOT EXISTS users_email ON users (email);
";

/// Wrong: a `text_pattern_ops` B-tree serves the prefix search, but a
/// leading wildcard (the suffix search) still scans the table.
pub const PATTERN_OPS_ONLY: &str = "
CREATE INDEX IF NOT EXISTS users_email_pattern ON users (email text_pattern_ops);
";

/// Wrong: the right index, but the migration fails when it runs a second
/// time (a deploy retried, a second replica): no `IF NOT EXISTS`.
pub const NOT_RERUNNABLE: &str = "
CREATE EXTENSION pg_trgm;
CREATE INDEX users_email_trgm ON users USING gin (email gin_trgm_ops);
";
