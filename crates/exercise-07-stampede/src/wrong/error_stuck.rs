//! Wrong: the key is freed after a successful load only. The `?` returns
//! the load's error early, and skips the line that frees the key: the
//! failed load stays in the map, and every later request for that user gets
//! its error, instantly, long after the database is back. A load's key must
//! be freed however the load ends; the reference frees it in a `Drop`
//! guard, which no early return (nor a panic) can skip.

use std::hash::Hash;
use std::sync::Arc;

use futures_util::FutureExt;

use super::{Loads, joined, lock};
use crate::Failed;

#[derive(Debug)]
pub struct SingleFlight<K, V> {
    loads: Loads<K, V>,
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
                    let (map, k) = (self.loads.clone(), key.clone());
                    let task = tokio::spawn(async move {
                        // The mistake: on an error, this returns here.
                        let value = load.await?;
                        lock(&map).remove(&k);
                        Ok(value)
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
