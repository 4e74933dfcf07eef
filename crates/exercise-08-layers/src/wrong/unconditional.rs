//! Wrong: "the race is a race, so make the fill atomic". This script does
//! the `DEL`, `HSET` and `PEXPIRE` as one step, and compares nothing: the
//! late reader's version 1 still lands on the writer's version 2, only
//! atomically. Atomicity keeps two writes from interleaving; what cures the
//! stale set is the *condition*, a version that lets Redis refuse the older
//! value. (The starter's MULTI/EXEC pipeline is the same mistake.)

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use redis::aio::MultiplexedConnection;

use super::invoke;

static SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
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
    invoke(&SET, redis, key, version, json, ttl).await
}
