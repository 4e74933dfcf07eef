//! Wrong: the versions are right and the `PEXPIRE` is gone ("versions make
//! the entry correct, so it may live forever"). The `DEL` drops any TTL the
//! key had, so every entry now outlives everything: a user deleted from the
//! database, an invalidation that never arrived (a relay down, a message
//! lost) is served until someone deletes the key by hand, and Redis fills
//! up with users nobody reads. The TTL is the bound on every mistake the
//! versions do not catch.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use redis::aio::MultiplexedConnection;

use super::invoke;

static SET_IF_NEWER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local stored = tonumber(redis.call('HGET', KEYS[1], 'v'))
if stored and stored > tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] == '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[1])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'json', ARGV[2])
end
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
