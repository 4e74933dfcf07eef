//! At most one background refresh per key.
//!
//! When a popular key goes stale, hundreds of requests may see it stale in
//! the same second. Each would start its own refresh, and the database would
//! get hundreds of identical queries: the stampede lesson 7 is about. Here a
//! request only starts a refresh when it can claim the key; the claim is
//! released when the refresh ends, however it ends (the guard's `Drop`).
//!
//! A `std::sync::Mutex<HashSet>` is enough: it is held for one insert or
//! remove, never across an `.await`. Within one process only; replicas each
//! refresh once, which is fine for a handful of replicas.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Default)]
pub struct InFlight {
    keys: Arc<Mutex<HashSet<i64>>>,
}

/// The claim on a key; dropping it releases the key.
#[derive(Debug)]
pub struct Claim {
    keys: Arc<Mutex<HashSet<i64>>>,
    id: i64,
}

impl InFlight {
    /// Claims `id`, or `None` when a refresh for it is already running.
    pub fn try_claim(&self, id: i64) -> Option<Claim> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.insert(id).then(|| Claim {
            keys: self.keys.clone(),
            id,
        })
    }

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
        let f = InFlight::default();
        let a = f.try_claim(1).expect("first claim");
        assert!(f.try_claim(1).is_none());
        let _b = f.try_claim(2).expect("another key");
        drop(a);
        assert!(f.try_claim(1).is_some());
    }
}
