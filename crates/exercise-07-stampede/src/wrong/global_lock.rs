//! Wrong: "the herd is too many loads at once, so let one load run at a
//! time". The map coalesces each key's callers, as it should, and then one
//! lock around every load serialises *all* keys: user 2's request waits
//! for user 1's query to finish, and under load every request queues
//! behind the slowest query in the process. The herd was too many loads of
//! *one* key; loads of different keys are the database's ordinary work.

use std::hash::Hash;
use std::sync::Arc;

use futures_util::FutureExt;

use super::{Loads, joined, lock};
use crate::Failed;

#[derive(Debug)]
pub struct SingleFlight<K, V> {
    loads: Loads<K, V>,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

impl<K, V> SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new() -> Self {
        SingleFlight {
            loads: Arc::default(),
            one_at_a_time: Arc::default(),
        }
    }

    pub async fn run(
        &self,
        key: K,
        load: impl Future<Output = Result<V, Failed>> + Send + 'static,
    ) -> Result<V, Failed> {
        let running = {
            let mut loads = lock(&self.loads);
            match loads.get(&key) {
                Some(running) => running.clone(),
                None => {
                    let (map, gate) = (self.loads.clone(), self.one_at_a_time.clone());
                    let k = key.clone();
                    let task = tokio::spawn(async move {
                        // The mistake: every key's load queues here.
                        let _turn = gate.lock().await;
                        let out = load.await;
                        lock(&map).remove(&k);
                        out
                    });
                    let shared = joined(task).boxed().shared();
                    loads.insert(key, shared.clone());
                    shared
                }
            }
        };
        running.await
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
