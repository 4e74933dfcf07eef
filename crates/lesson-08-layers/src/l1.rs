//! L1: a bounded cache inside the process, in front of Redis.
//!
//! A hit here is a hash lookup and an `Arc` clone: no system call, no
//! network, no serialisation. The price is that every instance of the
//! service has its own copy, which nobody else can delete: a write on
//! instance A leaves instance B's copy as it was until B hears of the write
//! or the copy expires. Everything else in this lesson is about that.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::policy::EvictionPolicy;
use moka::sync::Cache;

/// One cached user: the JSON the API returns, and the database version it
/// was read at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub version: i64,
    pub json: Arc<str>,
}

// ANCHOR: l1
/// The in-process layer.
///
/// `entries` is moka's cache: bounded by **entry count** (`capacity`), with
/// a time-to-live, and TinyLFU as its policy: a new key is admitted only
/// if a frequency sketch says it is asked for more often than the entry it
/// would evict, so one scan over a million cold ids cannot flush the hot
/// ones (plain LRU would let it). Moka evicts in the background and in
/// batches, so the count may pass `capacity` for a moment; it comes back
/// below it when pending work runs.
///
/// `floors` remembers, per user, the newest version an invalidation
/// announced. An entry older than its floor is never inserted, and a value
/// read from Redis that is older is treated as a miss: an invalidation can
/// arrive *before* Redis has the new value (a `NOTIFY` fires at commit,
/// before the writer has updated Redis), and a slow read can finish after
/// it; without the floor either would copy an old value back into L1.
///
/// `epoch` counts [`L1::clear`]s. A read notes it before it asks Redis or
/// the database, and its insert is undone if a clear came in between: a
/// clear means "messages may have been lost", and a read that started
/// before it may hold exactly what a lost message would have removed.
#[derive(Debug)]
pub struct L1 {
    entries: Cache<i64, Arc<Entry>>,
    floors: Cache<i64, i64>,
    epoch: AtomicU64,
    /// Off with `Invalidation::Tracking`, where redis-rs's client-side
    /// cache is the in-process layer: two L1s would need two invalidations.
    enabled: bool,
}

impl L1 {
    /// `floor_ttl` must cover the longest a read can take from start to
    /// insert (a database read under `db_timeout`), plus the time Redis
    /// may keep the old value after a write (until the relay's grace and
    /// period are past), plus `ttl`: a floor that expires first lets an
    /// old value back in.
    pub fn new(capacity: u64, ttl: Duration, floor_ttl: Duration) -> L1 {
        L1 {
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .eviction_policy(EvictionPolicy::tiny_lfu())
                .build(),
            // How many floors are needed depends on how many users change
            // within `floor_ttl`, not on L1's size, and a floor that is
            // evicted (or, under TinyLFU, never admitted) protects nothing.
            // So a bound far above L1's, and plain LRU: the floors evicted
            // first are the oldest, whose copies have most likely expired.
            floors: Cache::builder()
                .max_capacity(capacity.saturating_mul(10).max(100_000))
                .time_to_live(floor_ttl)
                .eviction_policy(EvictionPolicy::lru())
                .build(),
            epoch: AtomicU64::new(0),
            enabled: true,
        }
    }

    /// An L1 that holds nothing.
    pub fn disabled() -> L1 {
        L1 {
            enabled: false,
            ..L1::new(1, Duration::from_secs(1), Duration::from_secs(1))
        }
    }

    pub fn get(&self, id: i64) -> Option<Arc<Entry>> {
        if !self.enabled {
            return None;
        }
        self.entries.get(&id)
    }

    /// The newest version an invalidation announced for `id`, if any.
    pub fn floor(&self, id: i64) -> Option<i64> {
        self.floors.get(&id)
    }

    /// Whether `version` is at least every announced version of `id`.
    pub fn is_current(&self, id: i64, version: i64) -> bool {
        self.floor(id).is_none_or(|floor| version >= floor)
    }

    /// The current epoch: note it before reading what you will insert.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Caches `entry`, read since `epoch`, unless an invalidation announced
    /// a newer version, L1 already has a newer one, or L1 was cleared since.
    ///
    /// The floor and the epoch are checked again *after* the insert: an
    /// invalidation or a clear that lands between the first check and the
    /// insert has already removed what it could see (not this entry), so
    /// the insert itself must look back. Insert-then-check here, and
    /// raise-then-remove in [`L1::invalidate`] and [`L1::clear`], mean that
    /// whichever runs second sees the other's write.
    pub fn insert(&self, id: i64, entry: Arc<Entry>, epoch: u64) -> bool {
        if !self.enabled || !self.is_current(id, entry.version) || self.epoch() != epoch {
            return false;
        }
        if self
            .entries
            .get(&id)
            .is_some_and(|e| e.version > entry.version)
        {
            return false;
        }
        let version = entry.version;
        self.entries.insert(id, entry);
        if !self.is_current(id, version) || self.epoch() != epoch {
            self.entries.invalidate(&id);
            return false;
        }
        true
    }

    /// `id` changed to `version`: raise its floor, drop its entry.
    pub fn invalidate(&self, id: i64, version: i64) {
        self.floors
            .entry(id)
            .and_upsert_with(|old| old.map_or(version, |e| (*e.value()).max(version)));
        self.entries.invalidate(&id);
    }

    /// Drops every entry: what an instance must do when it may have missed
    /// invalidations (its subscription was down).
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
    }

    /// Entries held now, after moka's pending evictions have run.
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
// ANCHOR_END: l1

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: i64) -> Arc<Entry> {
        Arc::new(Entry {
            version,
            json: format!("{{\"v\":{version}}}").into(),
        })
    }

    #[test]
    fn an_invalidation_keeps_older_versions_out() {
        let l1 = L1::new(100, Duration::from_secs(60), Duration::from_secs(60));
        let e = l1.epoch();
        assert!(l1.insert(1, entry(1), e));
        l1.invalidate(1, 2);
        assert_eq!(l1.get(1), None);
        assert!(!l1.insert(1, entry(1), e), "an older version came back");
        assert!(l1.insert(1, entry(2), e));
        assert_eq!(l1.get(1).map(|e| e.version), Some(2));
        // A late, older announcement does not lower the floor.
        l1.invalidate(1, 1);
        assert!(!l1.insert(1, entry(1), e));
        // Nor does an older value replace a newer one with no floor at all.
        assert!(l1.insert(2, entry(5), e));
        assert!(!l1.insert(2, entry(4), e));
    }

    #[test]
    fn a_read_that_started_before_a_clear_is_not_kept() {
        let l1 = L1::new(100, Duration::from_secs(60), Duration::from_secs(60));
        let before = l1.epoch();
        l1.clear();
        assert!(
            !l1.insert(1, entry(1), before),
            "a read from before the clear was cached"
        );
        assert!(l1.insert(1, entry(1), l1.epoch()));
    }

    #[test]
    fn floors_outlast_l1s_capacity() {
        // More users change than L1 holds: every one keeps its floor.
        let l1 = L1::new(10, Duration::from_secs(60), Duration::from_secs(60));
        for id in 0..1_000 {
            l1.invalidate(id, 2);
        }
        let e = l1.epoch();
        for id in 0..1_000 {
            assert!(!l1.insert(id, entry(1), e), "user {id} lost its floor");
        }
    }

    #[test]
    fn the_entry_count_stays_within_capacity() {
        let l1 = L1::new(100, Duration::from_secs(60), Duration::from_secs(60));
        for id in 0..10_000 {
            l1.insert(id, entry(1), l1.epoch());
        }
        assert!(
            l1.len() <= 100,
            "{} entries for a capacity of 100",
            l1.len()
        );
        assert!(!l1.is_empty());
    }
}
