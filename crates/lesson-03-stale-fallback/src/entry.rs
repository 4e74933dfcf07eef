//! What lesson 3 stores in Redis: the value *and the time it was fetched*.
//!
//! Lesson 2 let Redis expire a key after its TTL, so once the TTL passed the
//! copy was gone, exactly when an outage would have made it valuable. Here
//! Redis keeps the copy for the long **hard TTL**, and the service decides
//! from the timestamp whether the copy is still fresh (**soft TTL**):
//!
//! ```text
//! fetched        soft TTL (60 s)                        hard TTL (24 h)
//!   │──── HIT ─────│──── try the database; if it fails: STALE ────│ gone
//! ```
//!
//! The timestamp is wall-clock milliseconds since the Unix epoch, not an
//! `Instant`: the entry outlives this process and is shared by every replica
//! of the service, and an `Instant` means nothing outside the process that
//! took it. Replicas' clocks must roughly agree (NTP does that); a skew of a
//! second shifts the soft TTL by a second, which nothing here cares about.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

// ANCHOR: entry
/// A cached value with the time it was read from the database. `value` is
/// `None` for "no such user", which only the cache-first mode stores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<T> {
    pub fetched_at_ms: u64,
    pub value: Option<T>,
}

/// How old an entry is, against the soft TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Younger than the soft TTL: serve it, no database.
    Fresh,
    /// Older: try the database first, and serve this copy if that fails.
    Stale,
}

impl<T> Entry<T> {
    pub fn new(value: Option<T>, fetched_at: SystemTime) -> Entry<T> {
        Entry {
            fetched_at_ms: unix_ms(fetched_at),
            value,
        }
    }

    /// Its age now. A timestamp in the future (another replica's clock is
    /// ahead) counts as age zero rather than an error.
    pub fn age(&self, now: SystemTime) -> Duration {
        Duration::from_millis(unix_ms(now).saturating_sub(self.fetched_at_ms))
    }

    pub fn freshness(&self, now: SystemTime, soft_ttl: Duration) -> Freshness {
        if self.age(now) < soft_ttl {
            Freshness::Fresh
        } else {
            Freshness::Stale
        }
    }
}
// ANCHOR_END: entry

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_follows_the_soft_ttl() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let e = Entry::new(Some(1), t0);
        let soft = Duration::from_secs(60);
        assert_eq!(e.freshness(t0, soft), Freshness::Fresh);
        assert_eq!(
            e.freshness(t0 + Duration::from_secs(59), soft),
            Freshness::Fresh
        );
        assert_eq!(
            e.freshness(t0 + Duration::from_secs(60), soft),
            Freshness::Stale
        );
        assert_eq!(e.age(t0 + Duration::from_millis(90_500)).as_secs(), 90);
        assert_eq!(
            e.age(t0 - Duration::from_secs(5)),
            Duration::ZERO,
            "a clock behind the writer's"
        );
    }

    #[test]
    fn round_trips_through_json() {
        let e = Entry::new(Some("x".to_string()), SystemTime::now());
        let json = serde_json::to_string(&e).expect("json");
        assert_eq!(serde_json::from_str::<Entry<String>>(&json).ok(), Some(e));
        let none: Entry<String> = Entry::new(None, SystemTime::now());
        assert!(serde_json::to_string(&none).expect("json").contains("null"));
    }
}
