//! Exercise 7's reference answer: lesson 7's single-flight
//! (`lesson_07_stampede::flight`), without its leader/waiter role.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use crate::Failed;

/// A load in flight: a future any number of callers can await, each
/// getting a clone of its one result. Boxed, so that the map can name its
/// type whatever future the first caller passed.
type Load<V> = Shared<BoxFuture<'static, Result<V, Failed>>>;

/// At most one load per key at a time; concurrent callers for the key
/// await that load's result.
#[derive(Debug)]
pub struct SingleFlight<K, V> {
    // A std Mutex, not tokio's: it is held for one lookup and one insert,
    // never across an `.await` (the await is on the cloned `Load`, after
    // unlocking), so nobody ever waits for it long. One lock for every key
    // is fine for the same reason: what takes long, the loads, runs
    // outside it, each key's on its own. `Arc`: the load's task frees its
    // key, so it needs the map too.
    loads: Arc<Mutex<HashMap<K, Load<V>>>>,
}

impl<K, V> SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new() -> Self {
        SingleFlight {
            loads: Arc::default(),
        }
    }

    /// `load`'s result, or, if a load for `key` is in flight, that one's
    /// (and then `load` is dropped without ever running).
    pub async fn run(
        &self,
        key: K,
        load: impl Future<Output = Result<V, Failed>> + Send + 'static,
    ) -> Result<V, Failed> {
        let running = {
            // A poisoned lock means a panic elsewhere while it was held;
            // the map is still consistent (every change is one call).
            let mut loads = self.loads.lock().unwrap_or_else(PoisonError::into_inner);
            match loads.get(&key) {
                Some(running) => running.clone(),
                None => {
                    let done = Done {
                        loads: self.loads.clone(),
                        key: key.clone(),
                    };
                    // Its own task, not this caller's future: a caller that
                    // is cancelled (its client hung up) drops only its own
                    // clone of the `Shared`; the load goes on, for the
                    // others and for the cache fill it does. Polled by the
                    // callers instead, it would stop when they all left,
                    // holding its database connection.
                    let task = tokio::spawn(async move {
                        let out = load.await;
                        // The key is freed *before* the result reaches
                        // anyone, so no later call joins a load that is over.
                        drop(done);
                        out
                    });
                    let shared = async move {
                        task.await.unwrap_or_else(|e| {
                            // A load that panicked still answers its waiters
                            // (`Done` freed the key while unwinding).
                            Err(Failed(format!("the load failed: {e}").into()))
                        })
                    }
                    .boxed()
                    .shared();
                    loads.insert(key, shared.clone());
                    shared
                }
            }
        }; // unlocked here, before the await
        running.await
    }
}

/// Frees a key when its load ends, however it ends: a value, an error, a
/// panic (dropped while unwinding). It cannot free the key before it is in
/// the map: dropping it takes the lock that `run` holds until its insert is
/// done. And what it removes is always its own load: a key holds one load
/// at a time, and the next can only be inserted after this removal.
struct Done<K: Eq + Hash, V> {
    loads: Arc<Mutex<HashMap<K, Load<V>>>>,
    key: K,
}

impl<K: Eq + Hash, V> Drop for Done<K, V> {
    fn drop(&mut self) {
        self.loads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl<K, V> Default for SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}
