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
/// once); else what the lease holds (a token: wait; `failed`: the last
/// load failed). One script, so that no fill lands between the `GET` and
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

/// Gives a lease back if it is still this reader's: after a load that
/// found nothing to cache, the next reader need not wait for it to expire.
static RELEASE_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0",
    )
});

/// After a load that **failed**: the lease says so, for `ARGV[2]` ms. Its
/// waiters answer with an error at once instead of each taking the lease
/// in turn and failing again (twenty waiters would be twenty queries into
/// a database that just failed, one after another).
static MARK_FAILED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], 'failed', 'PX', ARGV[2])
end
return 0",
    )
});

/// What a lease says after its load failed.
const FAILED_MARK: &str = "failed";

/// How long a failed load's mark stays: 1 s. Long enough for every waiter
/// to see it (they look every `lease_poll`), short enough that the next
/// request after it tries the database again within a second.
pub const FAILED_FOR: Duration = Duration::from_secs(1);

/// What [`read_or_lease`] found.
#[derive(Debug)]
pub enum Found {
    Entry(Entry),
    /// This reader holds the lease: it loads and fills.
    Lease,
    /// Another reader holds it: wait for its fill.
    Busy,
    /// The last load failed, less than [`FAILED_FOR`] ago.
    Failed,
}

static TOKENS: AtomicU64 = AtomicU64::new(0);

/// A lease token: unique per process and call; the pid and the clock make
/// it unique across instances. It need not be secret, only never reused.
pub fn new_token() -> String {
    format!(
        "{}-{}-{}",
        std::process::id(),
        crate::entry::now_ms(),
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
            // Unreadable: load without a lease, and overwrite it.
            None => Found::Lease,
        },
        2 => Found::Lease,
        _ if json == FAILED_MARK => Found::Failed,
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

/// [`RELEASE_LEASE`], best effort: a failure costs the next reader a wait
/// of at most the lease's TTL.
#[tracing::instrument(skip(state, token))]
pub async fn release(state: &AppState, id: i64, token: &str) {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    let mut redis = state.redis.clone();
    let mut script = RELEASE_LEASE.key(lease_key(&state.settings.key_prefix, id));
    script.arg(token);
    let call = script.invoke_async::<i64>(&mut redis);
    lab::cache::call(state.settings.redis_timeout, call, |why| {
        state.metrics.redis_error();
        FAILED.warn(format_args!("Redis lease release {why}"));
    })
    .await;
}

/// [`MARK_FAILED`], best effort: if it fails, the lease expires by itself.
#[tracing::instrument(skip(state, token))]
pub async fn mark_failed(state: &AppState, id: i64, token: &str) {
    static FAILED: Throttle = Throttle::new(WARN_EVERY);
    let mut redis = state.redis.clone();
    let mut script = MARK_FAILED.key(lease_key(&state.settings.key_prefix, id));
    script.arg(token).arg(FAILED_FOR.as_millis() as u64);
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
