//! The reference migration: one trigram index serves LIKE with the
//! wildcard anywhere, so both the suffix and the prefix search use it.
//! (A `text_pattern_ops` B-tree plus a `reverse(email)` index would also
//! work for the prefix, but the suffix query would have to change.)

pub const MIGRATION: &str = "
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS users_email_trgm ON users USING gin (email gin_trgm_ops);
";
