//! Exercise 8's reference answer: lesson 8's versioned fill
//! (`lesson_08_layers::store`'s `SET_IF_NEWER`), on its own.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use redis::Script;
use redis::aio::MultiplexedConnection;

/// Writes `{v, json}` (or a tombstone when `json` is empty) only if the
/// stored version is not newer.
///
/// A Lua script runs atomically in Redis: no other command runs between
/// its `HGET` and its `HSET`, so two fills cannot both read "older" and
/// then both write, the last one winning. A `HGET` from the client, then a
/// `HSET`, could promise no such thing. `LazyLock`: the script's SHA is
/// computed once; redis-rs sends `EVALSHA`, and the text only when Redis
/// answers `NOSCRIPT` (after a restart, on a new server).
static SET_IF_NEWER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS[1] the entry; ARGV[1] version, ARGV[2] json ('' = tombstone), ARGV[3] TTL ms
-- Every ARGV, and HGET's reply, is a string: tonumber, or '9' > '10'.
-- (Lua's numbers are doubles: exact for versions up to 2^53.)
local stored = tonumber(redis.call('HGET', KEYS[1], 'v'))
-- Refuse only a NEWER stored version: an equal one is the same row, and
-- its body must be stored over its own tombstone.
if stored and stored > tonumber(ARGV[1]) then return 0 end
-- DEL first: a tombstone must not keep an older version's json.
redis.call('DEL', KEYS[1])
if ARGV[2] == '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[1])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'json', ARGV[2])
end
-- Every store sets the TTL: the DEL dropped the old one, and the TTL is
-- what bounds any mistake (a lost invalidation) the versions miss.
redis.call('PEXPIRE', KEYS[1], ARGV[3])
-- 1 or 0: a Lua false would reach the client as nil.
return 1",
    )
});

/// Stores `{v: version, json}` at `key` with a TTL of `ttl`, unless Redis
/// holds a newer version there. `json` empty means a tombstone (store `v`
/// only). Returns whether it stored.
pub async fn set_if_newer(
    redis: &mut MultiplexedConnection,
    key: &str,
    version: i64,
    json: &str,
    ttl: Duration,
) -> anyhow::Result<bool> {
    // PEXPIRE 0 would delete the key at once: at least a millisecond.
    let ttl_ms = ttl.as_millis().max(1) as i64;
    let stored = SET_IF_NEWER
        .key(key)
        .arg(version)
        .arg(json)
        .arg(ttl_ms)
        .invoke_async::<i64>(redis)
        .await
        .with_context(|| format!("Failed to fill {key:?} with version {version}"))?;
    Ok(stored == 1)
}
