//! Spoilers: plausible wrong answers to this exercise, each complete, each
//! caught by the tests. CI runs the tests against every one (`--features
//! wrong-<name>`) and fails if one passes. Read them after you are done.

pub mod caches_404;
pub mod key_outside_prefix;
pub mod no_redis_timeout;
