//! Wrong: no task of its own for the load ("`Shared` lets every waiter poll
//! it, so whoever awaits it drives it"). True while someone awaits it. But
//! when every caller is cancelled (the clients hung up, or a timeout in
//! front gave up), nobody polls it: the query stops halfway, still holding
//! its pool connection, the cache is not filled, and the map keeps a load
//! that is not running until the next request for the key drives it on.
//! `tokio::spawn` makes the load independent of who waits for it.

use std::hash::Hash;
use std::sync::Arc;

use futures_util::FutureExt;

use super::{Loads, lock};
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
                    // The mistake: no `tokio::spawn`; the callers' awaits
                    // are all that drive this.
                    let shared = async move {
                        let out = load.await;
                        lock(&map).remove(&k);
                        out
                    }
                    .boxed()
                    .shared();
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
