//! Your code goes here. `just exercise-7` runs the tests against it;
//! `just hint-7 1` prints the first hint (HINTS.md has four).

// These are the imports your code will need. Until it uses them the
// compiler would warn about each; delete this line when you are done.
#![allow(unused_imports)]

use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use crate::Failed;

/// At most one load per key at a time; concurrent callers for the key
/// await that load's result.
#[derive(Debug)]
pub struct SingleFlight<K, V> {
    // TODO (1 of 2): the loads in flight, by key, and whatever else you
    //       need. As shipped there is nothing: every caller loads.
    //       (`PhantomData` only tells the compiler that K and V are used;
    //       delete it once a real field uses them.)
    _nothing_yet: PhantomData<fn(K) -> V>,
}

// The bounds are what `tokio::spawn` and `Shared` will ask of K and V:
// everything that crosses into a task is `Send + 'static`, and a shared
// result is cloned for each caller, so `Clone` (and `Sync`: all callers
// hold it at once).
impl<K, V> SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new() -> Self {
        SingleFlight {
            _nothing_yet: PhantomData,
        }
    }

    /// `load`'s result, or, if a load for `key` is in flight, that one's
    /// (and then `load` is dropped without ever running).
    pub async fn run(
        &self,
        key: K,
        load: impl Future<Output = Result<V, Failed>> + Send + 'static,
    ) -> Result<V, Failed> {
        // As shipped: every caller runs its own load. Fifty requests for a
        // key that just expired are fifty identical queries: the herd.
        //
        // TODO (2 of 2): at most one load per key at a time.
        //       - Look the key up in a map of the loads in flight. Found:
        //         await that one (this `load` is then never run). Not
        //         found: start `load`, put it in the map, await it.
        //       - Many callers await one load and each gets the result:
        //         `load.boxed().shared()` is a future you can clone, whose
        //         every clone resolves to a clone of its output.
        //       - Lock the map (a std `Mutex`) for the lookup and the
        //         insert only, never across an `.await`.
        //       - Free the key when the load ends, whether it succeeded or
        //         failed: the map holds loads in flight, not results
        //         (Redis is the cache). Free it before anyone gets the
        //         result.
        //       - A caller can be cancelled at its `.await` (its client hung
        //         up): that must neither stop the load the others await nor
        //         leave the key held. `tokio::spawn` the load.
        let _ = key;
        load.await
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
