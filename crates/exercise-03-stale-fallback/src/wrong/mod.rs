//! Spoilers: plausible wrong answers to this exercise, each complete, each
//! caught by the tests. CI runs the tests against every one (`--features
//! wrong-<name>`) and fails if one passes. Read them after you are done.

pub mod caches_404;
pub mod no_redis_timeout;
pub mod redis_error_is_500;
pub mod refresh_not_stored;
