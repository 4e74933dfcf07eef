//! At most one background load per key, and at most `capacity` at once.
//!
//! When a popular key goes stale, hundreds of requests may see it stale in
//! the same second. Each would start its own refresh, and the database would
//! get hundreds of identical queries: the stampede lesson 7 is about. Here a
//! request only starts a refresh when it can claim the key; the claim is
//! released when the refresh ends, however it ends (the guard's `Drop`).
//!
//! One claim per key is not enough on its own. Cache-first loads every miss
//! in the background, so a client asking for *different* ids (random ones
//! that do not exist, say) starts one task per id: tens of thousands of
//! tasks, each holding memory and waiting for one of a handful of pool
//! connections until the database timeout fails it, and enough of those
//! failures open the breaker for every real user. So the set also has a
//! **capacity**: when that many loads are running, a new claim is refused
//! at once ([`Busy::Full`]) rather than queued, and the caller sheds the
//! load (a 503 with `Retry-After`, or the stale copy it already has).
//! Refusing is the point: a queue in front of a saturated pool only turns
//! an overload into timeouts, later.
//!
//! The bound is the set's own size, checked under the lock that inserts the
//! key, so it is exact: a `tokio::sync::Semaphore` beside the set would
//! count the same thing twice, under two locks. A `std::sync::Mutex` is
//! enough: it is held for one lookup and one insert or remove, never across
//! an `.await`. Within one process only; replicas each have their own bound,
//! which the database's `max_connections` must allow for.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct InFlight {
    keys: Arc<Mutex<HashSet<i64>>>,
    capacity: usize,
}

/// Why a key could not be claimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Busy {
    /// A load of this key is already running: its result will do.
    Running,
    /// `capacity` loads are running: this one is shed.
    Full,
}

/// The claim on a key; dropping it releases the key and its slot.
#[derive(Debug)]
pub struct Claim {
    keys: Arc<Mutex<HashSet<i64>>>,
    id: i64,
}

impl InFlight {
    /// At most `capacity` keys in flight (at least one).
    pub fn new(capacity: usize) -> InFlight {
        InFlight {
            keys: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// Claims `id`, or says why not. Never waits.
    pub fn try_claim(&self, id: i64) -> Result<Claim, Busy> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.contains(&id) {
            return Err(Busy::Running);
        }
        if keys.len() >= self.capacity {
            return Err(Busy::Full);
        }
        keys.insert(id);
        Ok(Claim {
            keys: self.keys.clone(),
            id,
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Loads running now.
    pub fn len(&self) -> usize {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_per_key_until_released() {
        let f = InFlight::new(10);
        let a = f.try_claim(1).expect("first claim");
        assert_eq!(f.try_claim(1).err(), Some(Busy::Running));
        let _b = f.try_claim(2).expect("another key");
        drop(a);
        assert!(f.try_claim(1).is_ok());
    }

    #[test]
    fn never_more_keys_than_the_capacity() {
        let f = InFlight::new(3);
        let claims: Vec<Claim> = (1..=3).map(|id| f.try_claim(id).expect("room")).collect();
        for id in 4..100 {
            assert_eq!(f.try_claim(id).err(), Some(Busy::Full), "id {id}");
            assert_eq!(f.len(), 3, "a refused claim takes no room");
        }
        assert_eq!(
            f.try_claim(2).err(),
            Some(Busy::Running),
            "a running key is Running, even when full"
        );
        drop(claims);
        assert!(f.is_empty());
        assert!(f.try_claim(4).is_ok(), "released slots are reusable");
    }
}
