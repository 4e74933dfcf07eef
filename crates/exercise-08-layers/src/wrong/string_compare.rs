//! Wrong: the comparison without `tonumber`. `HGET` returns a string and
//! every `ARGV` is one, and Lua compares two strings byte by byte: `'9' >
//! '10'`. Versions 1 to 9 behave, so a quick try passes; then version 10
//! is refused over version 9, forever (until the TTL), and version 9 is
//! accepted over version 10: the stale set is back, from the tenth write of
//! a row on.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use redis::aio::MultiplexedConnection;

use super::invoke;

static SET_IF_NEWER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local stored = redis.call('HGET', KEYS[1], 'v')
if stored and stored > ARGV[1] then return 0 end
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
