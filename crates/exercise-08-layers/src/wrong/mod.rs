//! Spoilers: plausible wrong answers to this exercise, each complete, each
//! caught by the tests. CI runs the tests against every one (`--features
//! wrong-<name>`) and fails if one passes. Read them after you are done.
//!
//! Each file holds its own script, the mistake in it in full; calling a
//! script is the same for all, and is shared below.

use std::time::Duration;

use anyhow::Context;
use redis::Script;
use redis::aio::MultiplexedConnection;

pub mod no_ttl;
pub mod strictly_newer;
pub mod string_compare;
pub mod unconditional;

/// Runs `script` as the reference calls its own: KEYS[1] the entry,
/// ARGV[1] the version, ARGV[2] the json, ARGV[3] the TTL in ms; 1 means
/// stored.
async fn invoke(
    script: &Script,
    redis: &mut MultiplexedConnection,
    key: &str,
    version: i64,
    json: &str,
    ttl: Duration,
) -> anyhow::Result<bool> {
    let ttl_ms = ttl.as_millis().max(1) as i64;
    let stored = script
        .key(key)
        .arg(version)
        .arg(json)
        .arg(ttl_ms)
        .invoke_async::<i64>(redis)
        .await
        .with_context(|| format!("Failed to fill {key:?} with version {version}"))?;
    Ok(stored == 1)
}
