//! Your code goes here. `just exercise-8` runs the tests against it;
//! `just hint-8 1` prints the first hint (HINTS.md has four).

// These are the imports your code will need. Until it uses them the
// compiler would warn about each; delete this line when you are done.
#![allow(unused_imports)]

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use redis::Script;
use redis::aio::MultiplexedConnection;

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

    // As shipped: lesson 2's fill. Whatever this caller read, it writes,
    // over whatever Redis holds: the late reader of the race wins.
    //
    // TODO: store only if Redis does not hold a NEWER version, and make the
    //       check and the write one atomic step: a Lua script, which Redis
    //       runs with no other command in between. A `read` (HMGET) here,
    //       then this pipeline, would leave a gap another fill can write in.
    //       - `static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(r"..."));`
    //         (built once; redis-rs sends it by its SHA, EVALSHA).
    //       - In Lua, `KEYS[1]` is the key, `ARGV[1..]` the arguments you
    //         pass, all as STRINGS: `HGET` returns a string too (or `false`
    //         when there is none). Versions must compare as numbers.
    //       - An EQUAL version is not newer: store it. A tombstone of
    //         version 3 must let version 3's body in, and nothing older.
    //       - Keep what the fill below does when it stores: `DEL` (a
    //         tombstone must not keep an older `json`), `HSET`, `PEXPIRE`.
    //       - A refused fill writes nothing, not even the TTL.
    //       - Return 1 or 0 from Lua (a Lua `false` reaches Rust as nil):
    //         `SCRIPT.key(key).arg(version).arg(json).arg(ttl_ms)`
    //         `    .invoke_async::<i64>(redis).await` then `== 1`.
    let mut pipe = redis::pipe();
    // MULTI/EXEC: nobody sees the key between the DEL and the HSET. Atomic,
    // but not conditional: that is the part to add.
    pipe.atomic().del(key);
    if json.is_empty() {
        pipe.hset(key, "v", version);
    } else {
        pipe.hset_multiple(
            key,
            &[("v", version.to_string()), ("json", json.to_string())],
        );
    }
    pipe.pexpire(key, ttl_ms);
    pipe.query_async::<()>(redis)
        .await
        .with_context(|| format!("Failed to fill {key:?}"))?;
    Ok(true)
}
