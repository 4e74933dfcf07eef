//! Redis: entries (`user:{id}`, an [`Entry`] as JSON with a `PX` TTL) and
//! the leases on filling them (`user:{id}:lease`).
//!
//! Every call goes through `lab::cache::call`: a deadline, and a failure
//! is a miss (or a fill that did not happen), never an error page.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lab::log::Throttle;
use redis::Script;

use crate::AppState;
use crate::entry::Entry;

/// A Redis failure is logged once per this period per call site.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// `user:{id}` under the prefix.
pub fn key(prefix: &str, id: i64) -> String {
    format!("{prefix}user:{id}")
}

/// The lease on filling `user:{id}`.
pub fn lease_key(prefix: &str, id: i64) -> String {
    format!("{prefix}user:{id}:lease")
}

/// `GET user:{id}`: the entry, or `None` for a miss, an unreadable value
/// or a Redis failure (counted and logged).
#[tracing::instrument(skip(state))]
pub async fn get(state: &AppState, id: i64) -> Option<Entry> {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    let mut redis = state.redis.clone();
    let k = key(&state.settings.key_prefix, id);
    let mut cmd = redis::cmd("GET");
    cmd.arg(&k);
    let get = cmd.query_async::<Option<String>>(&mut redis);
    let json = lab::cache::call(state.settings.redis_timeout, get, |why| {
        state.metrics.redis_error();
        FAILED.warn(format_args!("Redis GET {why}, reading the database"));
    })
    .await??;
    parse(&json)
}

fn parse(json: &str) -> Option<Entry> {
    // Not ours (another lesson's value under the same key): a miss, which
    // the fill then overwrites.
    serde_json::from_str(json).ok()
}

/// `SET user:{id} entry PX ttl`: cache-aside's fill.
#[tracing::instrument(skip(state, entry))]
pub async fn put(state: &AppState, id: i64, entry: &Entry, ttl: Duration) {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    let Ok(json) = serde_json::to_string(entry) else {
        return;
    };
    let mut redis = state.redis.clone();
    let mut cmd = redis::cmd("SET");
    cmd.arg(key(&state.settings.key_prefix, id))
        .arg(json)
        .arg("PX")
        .arg(ttl.as_millis().max(1) as u64);
    let set = cmd.query_async::<()>(&mut redis);
    lab::cache::call(state.settings.redis_timeout, set, |why| {
        state.metrics.redis_error();
        FAILED.warn(format_args!("Redis SET {why}: the next read loads again"));
    })
    .await;
}

// ANCHOR: scripts
/// One round trip for a reader: the entry if there is one; else the lease
/// if nobody holds it (`SET … NX PX`: one winner however many ask at
/// once); else what the lease holds (a token: wait; a [`Mark`]: what the
/// last load found). One script, so that no fill lands between the `GET` and
/// the `SET`.
static READ_OR_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS[1] the entry, KEYS[2] its lease; ARGV[1] token, ARGV[2] lease ms
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, ''} end
return {0, redis.call('GET', KEYS[2]) or ''}",
    )
});

/// Fills the entry only while this reader still holds its lease, and
/// gives the lease back in the same step. A delete of the lease (a writer
/// invalidating, see [`invalidate`]) makes a slow reader's fill a no-op:
/// that is how leases also cure lesson 8's stale-set race.
static FILL_WITH_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS[1] the entry, KEYS[2] its lease; ARGV[1] token, ARGV[2] entry, ARGV[3] TTL ms
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
return 1",
    )
});
// ANCHOR_END: scripts

/// After a load that **failed**, or found a user that does not exist
/// when negative caching is off: the lease says so, as `ARGV[2]`, for
/// `ARGV[3]` ms. Its waiters answer at once (a 503, a 404) instead of each
/// taking the lease in turn and querying again: twenty waiters would be
/// twenty queries, one after another, into a database that just failed.
static MARK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 0",
    )
});

/// What a lease can say after its load, instead of a holder's token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// The load failed.
    Failed,
    /// The user does not exist (only when negative caching is off: else
    /// the negative entry says it).
    Absent,
}

impl Mark {
    fn word(self) -> &'static str {
        match self {
            Mark::Failed => "failed",
            Mark::Absent => "absent",
        }
    }

    /// How long the mark stays. A failure: 1 s, long enough for every
    /// waiter to see it (they look every few ms), short enough that the
    /// next request after it tries the database again within a second.
    /// An absence: 100 ms, only for this load's waiters; with negative
    /// caching off, the next request must ask the database again.
    pub fn lasts(self) -> Duration {
        match self {
            Mark::Failed => Duration::from_secs(1),
            Mark::Absent => Duration::from_millis(100),
        }
    }
}

/// What [`read_or_lease`] found.
#[derive(Debug)]
pub enum Found {
    Entry(Entry),
    /// This reader holds the lease: it loads and fills.
    Lease,
    /// Another reader holds it: wait for its fill.
    Busy,
    /// What the last load found instead of a value, a moment ago.
    Marked(Mark),
    /// A value that is not an entry (another version's, another lesson's):
    /// load without a lease, and overwrite it with a plain `SET`.
    Unreadable,
}

static TOKENS: AtomicU64 = AtomicU64::new(0);

/// A lease token: 64 random bits and a counter. Random, not the pid and
/// the clock: in containers every instance is pid 1, and two of them can
/// take a lease in the same millisecond. It need not be secret, only never
/// shared with another holder.
pub fn new_token() -> String {
    format!(
        "{:016x}-{}",
        fastrand::u64(..),
        TOKENS.fetch_add(1, Ordering::Relaxed)
    )
}

/// [`READ_OR_LEASE`]; `None` when Redis failed.
#[tracing::instrument(skip(state, token))]
pub async fn read_or_lease(state: &AppState, id: i64, token: &str) -> Option<Found> {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    let s = &state.settings;
    let mut redis = state.redis.clone();
    let mut script = READ_OR_LEASE.key(key(&s.key_prefix, id));
    script
        .key(lease_key(&s.key_prefix, id))
        .arg(token)
        .arg(s.lease_ttl.as_millis().max(1) as u64);
    let call = script.invoke_async::<(i64, String)>(&mut redis);
    let (what, json) = lab::cache::call(s.redis_timeout, call, |why| {
        state.metrics.redis_error();
        FAILED.warn(format_args!(
            "Redis read-or-lease {why}, reading the database"
        ));
    })
    .await?;
    Some(match what {
        1 => match parse(&json) {
            Some(entry) => Found::Entry(entry),
            None => Found::Unreadable,
        },
        2 => Found::Lease,
        _ if json == Mark::Failed.word() => Found::Marked(Mark::Failed),
        _ if json == Mark::Absent.word() => Found::Marked(Mark::Absent),
        _ => Found::Busy,
    })
}

/// [`FILL_WITH_LEASE`]: whether the entry was stored.
#[tracing::instrument(skip(state, entry, token))]
pub async fn fill_with_lease(
    state: &AppState,
    id: i64,
    entry: &Entry,
    ttl: Duration,
    token: &str,
) -> bool {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    let Ok(json) = serde_json::to_string(entry) else {
        return false;
    };
    let s = &state.settings;
    let mut redis = state.redis.clone();
    let mut script = FILL_WITH_LEASE.key(key(&s.key_prefix, id));
    script
        .key(lease_key(&s.key_prefix, id))
        .arg(token)
        .arg(json)
        .arg(ttl.as_millis().max(1) as u64);
    let call = script.invoke_async::<i64>(&mut redis);
    let stored = lab::cache::call(s.redis_timeout, call, |why| {
        state.metrics.redis_error();
        FAILED.warn(format_args!("Redis lease fill {why}"));
    })
    .await;
    if stored == Some(0) {
        state.metrics.fill_refused();
    }
    stored == Some(1)
}

/// [`MARK`], best effort: if it fails, the lease expires by itself.
#[tracing::instrument(skip(state, token))]
pub async fn mark(state: &AppState, id: i64, token: &str, mark: Mark) {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    let mut redis = state.redis.clone();
    let mut script = MARK.key(lease_key(&state.settings.key_prefix, id));
    script
        .arg(token)
        .arg(mark.word())
        .arg(mark.lasts().as_millis() as u64);
    let call = script.invoke_async::<redis::Value>(&mut redis);
    lab::cache::call(state.settings.redis_timeout, call, |why| {
        state.metrics.redis_error();
        FAILED.warn(format_args!("Redis lease mark {why}"));
    })
    .await;
}

/// A writer's invalidation: deletes the entry **and its lease**, so that a
/// reader who loaded before the write cannot fill its old value after it.
/// Whether Redis answered.
#[tracing::instrument(skip(state))]
pub async fn invalidate(state: &AppState, id: i64) -> bool {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    let s = &state.settings;
    let mut redis = state.redis.clone();
    let mut cmd = redis::cmd("DEL");
    cmd.arg(key(&s.key_prefix, id))
        .arg(lease_key(&s.key_prefix, id));
    let del = cmd.query_async::<i64>(&mut redis);
    lab::cache::call(s.redis_timeout, del, |why| {
        state.metrics.redis_error();
        FAILED.warn(format_args!("Redis DEL {why}"));
    })
    .await
    .is_some()
}
