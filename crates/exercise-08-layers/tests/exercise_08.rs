//! Exercise 8's checks. Each failure message says what to look at.
//!
//! Every test writes under a key prefix of its own on the workshop's Redis
//! (`lab::isolate::RedisPrefix`, whose keys are deleted when the test
//! ends), so tests run in parallel, beside other people's, and never
//! `FLUSHALL`. They replay the stale-set race one step at a time, read the
//! hash and its `PTTL` back with `read`, and count; no test asserts on a
//! duration.

use std::sync::Arc;
use std::time::Duration;

use exercise_08_layers::{read, set_if_newer};
use lab::Kind;
use lab::isolate::RedisPrefix;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

/// The TTL most fills are given: longer than any test, so no key expires
/// while a test looks at it.
const TTL: Duration = Duration::from_secs(60);

/// A key prefix of the test's own on the workshop's Redis.
struct Namespace {
    prefix: RedisPrefix,
    url: String,
    // Last: fields drop in order, and when the harness spawned this Redis,
    // the prefix's keys must be deleted while the server still runs.
    _redis: lab::Server,
}

async fn namespace() -> Namespace {
    let redis = lab::discover(Kind::Redis)
        .await
        .expect("the tests need a Redis server; `just doctor` shows what was found");
    Namespace {
        prefix: RedisPrefix::new(redis.url()),
        url: redis.url().to_string(),
        _redis: redis,
    }
}

impl Namespace {
    /// `user:{id}` under this test's prefix, as lesson 8 names its entries.
    fn key(&self, id: i64) -> String {
        self.prefix.key(&format!("user:{id}"))
    }

    /// A connection of the kind `set_if_newer` takes. Its response
    /// timeout is generous (redis-rs's default is 500 ms): two busy cores
    /// must not turn a slow answer into a failed test, and a Redis that
    /// does not answer at all still fails it rather than hanging.
    async fn conn(&self) -> MultiplexedConnection {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(10)))
            .set_response_timeout(Some(Duration::from_secs(30)));
        redis::Client::open(self.url.as_str())
            .expect("a valid Redis URL")
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("the tests could not connect to Redis (not your code)")
    }
}

/// User 7's JSON at `version`: each version's body differs, so the tests
/// see whose body Redis holds, not only whose number.
fn body(version: i64) -> String {
    serde_json::json!({
        "id": 7,
        "name": format!("Ada, revision {version}"),
        "email": "ada@example.org",
    })
    .to_string()
}

/// Your `set_if_newer`; an error fails the test, showing it.
async fn fill(
    c: &mut MultiplexedConnection,
    key: &str,
    version: i64,
    json: &str,
    ttl: Duration,
) -> bool {
    set_if_newer(c, key, version, json, ttl)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "set_if_newer(version {version}, json {}) returned an error: {e:#}",
                if json.is_empty() {
                    "\"\" (a tombstone)"
                } else {
                    "a body"
                }
            )
        })
}

/// What Redis holds at `key`: `(version, Some(json))`, `(version, None)`
/// for a tombstone, `None` for nothing.
async fn entry(c: &mut MultiplexedConnection, key: &str) -> Option<(i64, Option<String>)> {
    read(c, key)
        .await
        .unwrap_or_else(|e| panic!("reading {key:?} failed: {e:#}. Is it still a hash?"))
}

/// The key's TTL in ms: -2 when it does not exist, -1 when it never expires.
async fn pttl(c: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(c)
        .await
        .expect("PTTL (not your code)")
}

// ANCHOR: race
#[tokio::test]
async fn the_late_readers_old_version_does_not_overwrite_the_writers_new_one() {
    let ns = namespace().await;
    let mut c = ns.conn().await;
    let key = ns.key(7);

    // 1. A reader misses, and reads version 1 from the database. (It has
    //    not written it yet: it is slow, or was descheduled.)
    let read_by_the_reader = body(1);
    // 2. A writer updates the row to version 2, and writes it through.
    assert!(
        fill(&mut c, &key, 2, &body(2), TTL).await,
        "the writer's set_if_newer(version 2) on an empty key returned false: with nothing \
         stored, nothing is newer, so it must store and return true"
    );
    // 3. The reader wakes up and fills what it read.
    let stored = fill(&mut c, &key, 1, &read_by_the_reader, TTL).await;
    let now = entry(&mut c, &key).await;
    assert_eq!(
        now,
        Some((2, Some(body(2)))),
        "the stale-set race: after the writer stored version 2, the late reader's fill of \
         version 1 overwrote it, and every read would serve version 1 until the TTL. \
         set_if_newer must compare the stored `v` with `version` and write only if the stored \
         one is not newer, in one Lua script, so that no other command runs between the \
         check and the write"
    );
    assert!(
        !stored,
        "the late reader's set_if_newer(version 1) left version 2 in place but returned true: \
         return whether it stored (the script's 0 means refused)"
    );
}
// ANCHOR_END: race

#[tokio::test]
async fn a_newer_version_replaces_an_older_one_and_an_equal_one_is_accepted() {
    let ns = namespace().await;
    let mut c = ns.conn().await;
    let key = ns.key(7);

    assert!(
        fill(&mut c, &key, 1, &body(1), TTL).await,
        "set_if_newer(version 1) on an empty key must store and return true"
    );
    assert_eq!(
        entry(&mut c, &key).await,
        Some((1, Some(body(1)))),
        "after set_if_newer(version 1, json), the hash should hold v = 1 and that json \
         (HSET key v <version> json <json>)"
    );
    assert!(
        fill(&mut c, &key, 2, &body(2), TTL).await,
        "set_if_newer(version 2) over version 1 returned false: 2 is newer, it must store"
    );
    assert_eq!(
        entry(&mut c, &key).await,
        Some((2, Some(body(2)))),
        "version 2 should have replaced version 1, body and all"
    );
    // A second reader read the same row, version 2, and fills it too.
    assert!(
        fill(&mut c, &key, 2, &body(2), TTL).await,
        "set_if_newer(version 2) over version 2 returned false: an equal version is the same \
         row, not an older one. Refuse only when the stored version is GREATER (`>`, not `>=`)"
    );
    assert!(
        !fill(&mut c, &key, 1, &body(1), TTL).await,
        "set_if_newer(version 1) over version 2 returned true: an older version must be \
         refused (return false)"
    );
    assert_eq!(
        entry(&mut c, &key).await,
        Some((2, Some(body(2)))),
        "a refused fill of version 1 must leave version 2 as it was"
    );
}

#[tokio::test]
async fn a_tombstone_blocks_older_fills_and_lets_its_own_version_in() {
    let ns = namespace().await;
    let mut c = ns.conn().await;
    let key = ns.key(7);

    fill(&mut c, &key, 2, &body(2), TTL).await;
    // A writer that knows only the new version (lesson 8's relay) leaves
    // a tombstone: nothing to serve, but a version to compare with.
    assert!(
        fill(&mut c, &key, 3, "", TTL).await,
        "a tombstone of version 3 (json \"\") over version 2 returned false: 3 is newer, it \
         must store"
    );
    assert_eq!(
        entry(&mut c, &key).await,
        Some((3, None)),
        "a tombstone (json \"\") should leave a hash with v = 3 and NO json: DEL the key, then \
         HSET only `v`. A json left behind (version 2's) would be served as version 3"
    );
    assert!(
        !fill(&mut c, &key, 2, &body(2), TTL).await,
        "set_if_newer(version 2) over a tombstone of version 3 returned true: the tombstone's \
         version counts like any other, and 2 is older"
    );
    assert_eq!(
        entry(&mut c, &key).await,
        Some((3, None)),
        "a refused fill of version 2 must leave the tombstone of version 3 as it was"
    );
    // The next reader misses (a tombstone serves nothing), reads version 3
    // from the database, and fills it.
    assert!(
        fill(&mut c, &key, 3, &body(3), TTL).await,
        "set_if_newer(version 3, json) over a tombstone of version 3 returned false: it is the \
         row the tombstone stands for, and refusing it makes every read miss until the TTL. \
         Refuse only a stored version GREATER than yours (`>`, not `>=`)"
    );
    assert_eq!(
        entry(&mut c, &key).await,
        Some((3, Some(body(3)))),
        "version 3's body should have replaced its tombstone"
    );
}

#[tokio::test]
async fn versions_compare_as_numbers_not_strings() {
    let ns = namespace().await;
    let mut c = ns.conn().await;
    let key = ns.key(7);

    fill(&mut c, &key, 9, &body(9), TTL).await;
    let stored = fill(&mut c, &key, 10, &body(10), TTL).await;
    assert!(
        stored && entry(&mut c, &key).await == Some((10, Some(body(10)))),
        "set_if_newer(version 10) over version 9 was refused: 10 is newer. HGET's reply and \
         every ARGV are strings in Lua, and as strings '10' < '9'. Compare \
         `tonumber(...)` of both"
    );
    assert!(
        !fill(&mut c, &key, 9, &body(9), TTL).await,
        "set_if_newer(version 9) over version 10 returned true: 9 is older. As strings \
         '9' > '10': compare `tonumber(...)` of both"
    );
    assert_eq!(
        entry(&mut c, &key).await,
        Some((10, Some(body(10)))),
        "version 9 must not replace version 10"
    );
}

#[tokio::test]
async fn every_store_sets_the_ttl_and_a_refused_fill_changes_nothing() {
    let ns = namespace().await;
    let mut c = ns.conn().await;
    let key = ns.key(7);
    let short = Duration::from_secs(30);
    let long = Duration::from_secs(90);

    fill(&mut c, &key, 1, &body(1), short).await;
    let ms = pttl(&mut c, &key).await;
    assert!(
        ms > 0 && ms <= 30_000,
        "after set_if_newer(version 1, ttl 30 s) the key's PTTL should be in (0, 30000] ms, \
         got {ms} (-1: it never expires; -2: it does not exist). PEXPIRE the key with the \
         `ttl` you are given, after the HSET, on every store"
    );
    fill(&mut c, &key, 2, &body(2), long).await;
    let ms = pttl(&mut c, &key).await;
    assert!(
        ms > 30_000 && ms <= 90_000,
        "after set_if_newer(version 2, ttl 90 s) over version 1 the PTTL should be in \
         (30000, 90000] ms, got {ms} (-1: it never expires): each store sets the TTL it is \
         given (the DEL drops the old one)"
    );
    fill(&mut c, &key, 3, "", short).await;
    let ms = pttl(&mut c, &key).await;
    assert!(
        ms > 0 && ms <= 30_000,
        "after a tombstone of version 3 (ttl 30 s) the PTTL should be in (0, 30000] ms, got \
         {ms} (-1: it never expires): a tombstone expires too"
    );

    // A refused fill, with a much longer TTL: it must not touch the key.
    let refused = !fill(&mut c, &key, 2, &body(2), Duration::from_secs(600)).await;
    let ms = pttl(&mut c, &key).await;
    assert!(
        refused && entry(&mut c, &key).await == Some((3, None)),
        "set_if_newer(version 2) over a tombstone of version 3 must be refused (return false) \
         and leave the tombstone as it was"
    );
    assert!(
        ms > 0 && ms <= 30_000,
        "a refused fill (ttl 600 s) must not touch the key, its TTL included: the PTTL should \
         still be the tombstone's, in (0, 30000] ms, got {ms}. Return before the PEXPIRE"
    );
}

/// Versions 1 to N, in an order scrambled with a fixed seed (so a failure
/// can be replayed), with N moved into the first quarter: a fill where the
/// last writer wins then leaves an older version behind, whichever way the
/// tasks happen to be scheduled.
fn scrambled(n: i64) -> Vec<i64> {
    let mut order: Vec<i64> = (1..=n).collect();
    // xorshift64: a fixed, dependency-free shuffle; nothing here needs to
    // be unpredictable, only out of order.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let quarter = order.len() / 4;
    if let Some(at) = order.iter().position(|&v| v == n) {
        order.swap(at, quarter);
    }
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_fills_leave_the_newest_version() {
    const N: i64 = 200;
    const CONNECTIONS: usize = 4;
    let ns = namespace().await;
    let key = ns.key(7);
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        conns.push(ns.conn().await);
    }

    // Every task waits at the barrier, then fills at once: readers of
    // different versions of one row, all finishing their miss together,
    // over several connections, so their commands interleave in Redis.
    let start = Arc::new(tokio::sync::Barrier::new(N as usize));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, version) in scrambled(N).into_iter().enumerate() {
        let mut c = conns[i % CONNECTIONS].clone();
        let key = key.clone();
        let start = start.clone();
        tasks.spawn(async move {
            start.wait().await;
            let stored = set_if_newer(&mut c, &key, version, &body(version), TTL).await;
            (version, stored.map_err(|e| format!("{e:#}")))
        });
    }
    let mut stored_count = 0;
    let mut newest_stored = false;
    while let Some(joined) = tasks.join_next().await {
        let (version, stored) = joined.expect("a fill task panicked");
        let stored = stored
            .unwrap_or_else(|e| panic!("set_if_newer(version {version}) returned an error: {e}"));
        stored_count += i64::from(stored);
        if version == N {
            newest_stored = stored;
        }
    }

    let mut c = ns.conn().await;
    let now = entry(&mut c, &key).await;
    let held = now.as_ref().map(|(v, _)| *v);
    // What to look at depends on how many fills were let in: all of them
    // means nothing was compared; fewer, that the comparison is wrong or
    // not atomic.
    let look_at = if stored_count == N {
        "every fill stored: nothing compared the versions. Write only if the stored `v` is \
         not greater, inside the Lua script"
    } else {
        "some were refused, so something compares, but an older fill still won. Does it \
         compare numbers (`tonumber`: as strings '99' > '200')? Are the check and the write \
         one Lua script? (A read from the client, then a write, leaves a gap another fill \
         can write into)"
    };
    assert_eq!(
        held,
        Some(N),
        "{N} fills of versions 1..={N} raced on one key, and Redis holds version {}, not \
         {N}; {stored_count} of the {N} fills stored: {look_at}",
        held.map_or("none".to_string(), |v| v.to_string())
    );
    assert_eq!(
        now,
        Some((N, Some(body(N)))),
        "Redis holds version {N}'s number but not its body"
    );
    assert!(
        newest_stored,
        "the fill of version {N} returned false, yet nothing newer than {N} was ever written: \
         return whether the script stored"
    );
    let ms = pttl(&mut c, &key).await;
    assert!(
        ms > 0 && ms <= 60_000,
        "after the race the key's PTTL should be in (0, 60000] ms, got {ms} (-1: it never \
         expires)"
    );
}
