//! Wrong: the caller that started the load frees the key, after awaiting
//! it. Every test without cancellation passes. But a request is cancelled
//! at its `.await` when its client hangs up, and the code after that
//! `.await` never runs: nobody frees the key, and from then on every
//! request for it gets that load's result, a value that never expires or
//! an error that never clears. Whatever has to happen when the load ends
//! belongs with the load, in its task, not with one of its callers.

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
        let (running, started_it) = {
            let mut loads = lock(&self.loads);
            match loads.get(&key) {
                Some(running) => (running.clone(), false),
                None => {
                    let shared = joined(tokio::spawn(load)).boxed().shared();
                    loads.insert(key.clone(), shared.clone());
                    (shared, true)
                }
            }
        };
        let out = running.await;
        // The mistake: if this caller was cancelled at the await above,
        // this line never runs.
        if started_it {
            lock(&self.loads).remove(&key);
        }
        out
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
