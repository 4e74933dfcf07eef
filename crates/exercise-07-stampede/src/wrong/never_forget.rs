//! Wrong: the finished load stays in the map ("it is a cache, after all").
//! Every later call for the key gets its result: a value that never
//! expires and that no write invalidates, an error served forever to every
//! request for that user, and a map that grows by every key ever read.
//! Redis is the cache, with a TTL and invalidations; this map holds loads
//! *in flight*, and must forget each one when it ends.

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
        let running = lock(&self.loads)
            .entry(key)
            // The mistake: inserted, and never removed.
            .or_insert_with(|| joined(tokio::spawn(load)).boxed().shared())
            .clone();
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
