//! Wrong: `>=` where `>` belongs ("write only if mine is newer"). It looks
//! stricter, so safer, and the race test passes. But a writer that knows
//! only the version (lesson 8's relay) leaves a tombstone of version 3, and
//! the next reader's fill of version 3, the very row the tombstone stands
//! for, is refused: every read misses, goes to the database, and fills
//! nothing, until the tombstone's TTL. An equal version is the same row;
//! only an older one is stale.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use redis::aio::MultiplexedConnection;

use super::invoke;

static SET_IF_NEWER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local stored = tonumber(redis.call('HGET', KEYS[1], 'v'))
if stored and stored >= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] == '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[1])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'json', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1",
    )
});

pub async fn set_if_newer(
    redis: &mut MultiplexedConnection,
    key: &str,
    version: i64,
    json: &str,
    ttl: Duration,
) -> anyhow::Result<bool> {
    invoke(&SET_IF_NEWER, redis, key, version, json, ttl).await
}
