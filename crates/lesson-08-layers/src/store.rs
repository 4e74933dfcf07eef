//! L2: Redis, and the three ways this lesson fills it and invalidates it.
//!
//! A user's entry is a hash, `user:{id}` → `{v: version, json: body}`; a
//! hash with a `v` and no `json` is a *tombstone*: nothing to serve, but a
//! version that older values may not overwrite.
//!
//! The three [`Fill`] strategies differ in what a reader may write after a
//! miss, and that decides whether the **stale-set race** can happen:
//!
//! ```text
//!  reader (GET, a miss)            writer (PUT)
//!  reads v1 from the database
//!                                  UPDATE → v2, then invalidates Redis
//!  writes v1 into Redis  ← stale until the TTL, unless the fill is refused
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use lab::log::Throttle;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use crate::l1::Entry;
use crate::{AppState, Fill};

/// A Redis failure is logged once per this period per call site.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// `user:{id}` under the prefix.
pub fn key(prefix: &str, id: i64) -> String {
    format!("{prefix}user:{id}")
}

/// The lease on filling `user:{id}` after a miss.
pub fn lease_key(prefix: &str, id: i64) -> String {
    format!("{prefix}user:{id}:lease")
}

/// The pub/sub channel of user changes, per prefix.
pub fn channel(prefix: &str) -> String {
    format!("{prefix}users:changed")
}

// ANCHOR: scripts
/// Writes `{v, json}` (or a tombstone when `json` is empty) **only if the
/// stored version is not newer**. A Lua script runs atomically in Redis:
/// no other command runs between the `HGET` and the `HSET`, which a
/// `GET`-then-`SET` from the client could not promise.
static SET_IF_NEWER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS[1] the entry; ARGV[1] version, ARGV[2] json ('' = tombstone), ARGV[3] TTL ms
local stored = tonumber(redis.call('HGET', KEYS[1], 'v'))
if stored and stored > tonumber(ARGV[1]) then return 0 end
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

/// Fills the entry **only if this reader still holds the lease** it took
/// on the miss. A writer deletes the lease with the entry, so a reader
/// that loaded before the write finds its lease gone and writes nothing:
/// Facebook's memcache leases (Nishtala et al., NSDI 2013, §3.2.1).
static FILL_WITH_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS[1] the entry, KEYS[2] its lease; ARGV[1] token, ARGV[2] version, ARGV[3] json, ARGV[4] TTL ms
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'json', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1",
    )
});
// ANCHOR_END: scripts

/// Gives a lease back, if it is still this reader's: after a load that
/// found nothing or failed, so that the next miss need not wait for it to
/// expire.
static RELEASE_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0",
    )
});

/// What a reader may fill after a miss, and how a writer invalidates.
#[derive(Debug)]
pub enum Lease {
    /// Not a lease fill.
    None,
    /// This reader holds the lease, with this token.
    Held(String),
    /// Another reader holds it: serve from the database, fill nothing.
    Denied,
}

/// Reads an entry: `Some` for a value, `None` for a miss, a tombstone, or
/// a Redis failure (a failure is counted and logged; the caller goes on to
/// the database).
#[tracing::instrument(skip(state, redis))]
pub async fn read(state: &AppState, redis: &ConnectionManager, id: i64) -> Option<Entry> {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    let mut redis = redis.clone();
    let k = key(&state.settings.key_prefix, id);
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(&k).arg("v").arg("json");
    let hmget = cmd.query_async::<(Option<i64>, Option<String>)>(&mut redis);
    let (version, json) = lab::cache::call(state.settings.redis_timeout, hmget, |why| {
        state.metrics.redis_error();
        FAILED.warn(format_args!("Redis HMGET {why}, reading the database"));
    })
    .await?;
    Some(Entry {
        version: version?,
        json: json?.into(),
    })
}

static TOKENS: AtomicU64 = AtomicU64::new(0);

/// Asks for the lease on filling `id` (`SET … NX PX`): only one reader at
/// a time gets it. It expires after `db_timeout`, so a reader that dies
/// holding it blocks fills for no longer than a load could take.
#[tracing::instrument(skip(state))]
pub async fn take_lease(state: &AppState, id: i64) -> Lease {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    // Unique per process and call; the pid and the clock make it unique
    // across instances. It need not be secret, only never reused.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let token = format!(
        "{}-{nanos}-{}",
        std::process::id(),
        TOKENS.fetch_add(1, Ordering::Relaxed)
    );
    let mut redis = state.redis.clone();
    let ms = state.settings.db_timeout.as_millis().max(1) as u64;
    let mut cmd = redis::cmd("SET");
    cmd.arg(lease_key(&state.settings.key_prefix, id))
        .arg(&token)
        .arg("NX")
        .arg("PX")
        .arg(ms);
    let set = cmd.query_async::<Option<String>>(&mut redis);
    match lab::cache::call(state.settings.redis_timeout, set, |why| {
        state.metrics.redis_error();
        FAILED.warn(format_args!("Redis SET NX (lease) {why}"));
    })
    .await
    {
        Some(Some(_)) => Lease::Held(token),
        Some(None) => Lease::Denied,
        // Redis is failing: nobody can fill anyway.
        None => Lease::Denied,
    }
}

/// What became of a fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filled {
    Stored,
    /// Redis refused it: the fix at work (the value was older than what
    /// Redis has, or a write took the lease). The value is known to be old.
    Refused,
    /// Redis did not answer: nothing is known.
    Failed,
}

// ANCHOR: fill
/// Releases `lease` if this reader holds it (see [`RELEASE_LEASE`]).
#[tracing::instrument(skip(state, lease))]
pub async fn release(state: &AppState, id: i64, lease: &Lease) {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    let Lease::Held(token) = lease else {
        return;
    };
    let mut redis = state.redis.clone();
    let mut script = RELEASE_LEASE.key(lease_key(&state.settings.key_prefix, id));
    script.arg(token);
    let call = script.invoke_async::<i64>(&mut redis);
    // A failure costs the next miss a wait of at most the lease's expiry.
    lab::cache::call(state.settings.redis_timeout, call, |why| {
        failed(state, &FAILED, why)
    })
    .await;
}

/// After a miss: puts what the database said into Redis, as `fill` allows.
#[tracing::instrument(skip(state, entry, lease), fields(version = entry.version))]
pub async fn fill(state: &AppState, id: i64, entry: &Entry, lease: &Lease) -> Filled {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    let s = &state.settings;
    let k = key(&s.key_prefix, id);
    let ttl_ms = s.ttl.as_millis().max(1) as u64;
    let mut redis = state.redis.clone();
    let stored = match (s.fill, lease) {
        // Lesson 2's fill: whatever this reader read, it writes.
        (Fill::Naive, _) => {
            let mut p = redis::pipe();
            p.atomic()
                .del(&k)
                .hset_multiple(
                    &k,
                    &[
                        ("v", entry.version.to_string()),
                        ("json", entry.json.to_string()),
                    ],
                )
                .pexpire(&k, ttl_ms as i64);
            let call = p.query_async::<()>(&mut redis);
            lab::cache::call(s.redis_timeout, call, |why| failed(state, &FAILED, why))
                .await
                .map(|()| true)
        }
        (Fill::Versioned, _) => {
            let mut script = SET_IF_NEWER.key(&k);
            script.arg(entry.version).arg(&*entry.json).arg(ttl_ms);
            let call = script.invoke_async::<i64>(&mut redis);
            lab::cache::call(s.redis_timeout, call, |why| failed(state, &FAILED, why))
                .await
                .map(|n| n == 1)
        }
        (Fill::Lease, Lease::Held(token)) => {
            let mut script = FILL_WITH_LEASE.key(&k);
            script
                .key(lease_key(&s.key_prefix, id))
                .arg(token)
                .arg(entry.version)
                .arg(&*entry.json)
                .arg(ttl_ms);
            let call = script.invoke_async::<i64>(&mut redis);
            lab::cache::call(s.redis_timeout, call, |why| failed(state, &FAILED, why))
                .await
                .map(|n| n == 1)
        }
        // No lease, no fill.
        (Fill::Lease, _) => Some(false),
    };
    match stored {
        Some(true) => Filled::Stored,
        Some(false) => {
            state.metrics.fill_refused();
            Filled::Refused
        }
        None => Filled::Failed,
    }
}
// ANCHOR_END: fill

// ANCHOR: invalidate
/// After a committed write of `entry` (or, with `entry.json` empty, a
/// change the relay only knows the version of): makes Redis forget the old
/// value, as `fill` requires, and tells the other instances when they
/// listen on Redis. Returns whether Redis heard; `false` leaves the
/// outbox row for the relay.
#[tracing::instrument(skip(state, entry), fields(version = entry.version))]
pub async fn invalidate(state: &AppState, id: i64, entry: &Entry) -> bool {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    let s = &state.settings;
    let k = key(&s.key_prefix, id);
    let mut redis = state.redis.clone();
    let done = match s.fill {
        // A DEL cannot leave an old value behind, but a reader that loaded
        // before the write can put one back (the race).
        Fill::Naive => {
            let call = redis.del::<_, ()>(&k);
            lab::cache::call(s.redis_timeout, call, |why| failed(state, &FAILED, why)).await
        }
        // Write the new version through: no miss after a write, and every
        // older fill is refused from now on.
        Fill::Versioned => {
            let mut script = SET_IF_NEWER.key(&k);
            script
                .arg(entry.version)
                .arg(&*entry.json)
                .arg(s.ttl.as_millis().max(1) as u64);
            let call = script.invoke_async::<i64>(&mut redis);
            lab::cache::call(s.redis_timeout, call, |why| failed(state, &FAILED, why))
                .await
                .map(|_| ())
        }
        // Delete the lease with the entry: a reader holding it can no
        // longer fill.
        Fill::Lease => {
            let keys = [k, lease_key(&s.key_prefix, id)];
            let call = redis.del::<_, ()>(&keys);
            lab::cache::call(s.redis_timeout, call, |why| failed(state, &FAILED, why)).await
        }
    };
    if done.is_none() {
        return false;
    }
    if s.invalidation == crate::Invalidation::PubSub {
        let message = format!("{id}:{}", entry.version);
        let call = redis.publish::<_, _, ()>(channel(&s.key_prefix), message);
        if lab::cache::call(s.redis_timeout, call, |why| failed(state, &FAILED, why))
            .await
            .is_none()
        {
            return false;
        }
    }
    true
}
// ANCHOR_END: invalidate

fn failed(state: &AppState, throttle: &Throttle, why: lab::cache::Failure) {
    state.metrics.redis_error();
    throttle.warn(format_args!("Redis {why}"));
}

/// A tombstone entry: the version only (the relay's invalidation).
pub fn tombstone(version: i64) -> Entry {
    Entry {
        version,
        json: Arc::from(""),
    }
}
