//! Single-flight: at most one load per key in this process; every other
//! request for the key awaits that load's result.
//!
//! This is request coalescing, as Go's `singleflight` and moka's
//! `get_with` / `try_get_with` do it (moka: concurrent calls for a missing
//! key are coalesced into one evaluation; use it when the cache itself is
//! in the process). Here the cache is Redis, shared and remote, so the
//! coalescing is a small map of its own: key → the load in flight.
//!
//! What the three ways a load can end do to its waiters:
//!
//! - **it fails** (the database errs or times out): every waiter gets the
//!   same error at once, and the key is free again. Nobody retries for
//!   them: the next request that arrives starts one new load. Waiters
//!   retrying at once would be the herd again, aimed at a database that
//!   just failed.
//! - **it is slow**: the load carries the database timeout (and each Redis
//!   call its own), so no waiter waits longer than `db_timeout` plus two
//!   Redis timeouts (the re-check and the fill).
//! - **the request that started it is cancelled** (its client hung up):
//!   nothing happens to the load. It runs in a task of its own, not in
//!   that request, so it finishes, fills the cache and answers the others.
//!   Were it polled by the first request, cancelling that request would
//!   cancel everyone's load; and a load nobody polls holds its pool
//!   connection until somebody does.
//!
//! One process, one load: N instances behind a load balancer still make up
//! to N queries per expiry. Leases ([`crate::store`]) make it one overall.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

/// Why a shared load gave nothing: its error, as text every waiter can
/// hold (an `anyhow::Error` cannot be cloned), fit to send to a client.
/// [`INTERNAL`] when the cause is ours: that cause is logged, never sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed(pub Arc<str>);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What [`Failed`] says when the cause was a bug (a panic, an internal
/// error): the caller answers 500, not 503.
pub const INTERNAL: &str = "internal error";

/// Whether this request ran the load or waited for another's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Waiter,
}

type Load<V> = Shared<BoxFuture<'static, Result<V, Failed>>>;

// ANCHOR: flight
/// The loads in flight, by key.
#[derive(Debug)]
pub struct SingleFlight<K, V>
where
    V: Clone,
{
    // A std Mutex: held for one lookup and one insert, never across an
    // `.await` (the await is on the cloned `Shared`, after unlocking).
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

    /// `load`'s result for `key`: this call's own load if none is in
    /// flight (it is then the [`Role::Leader`]), else the one in flight.
    pub async fn run<F>(&self, key: K, load: F) -> (Result<V, Failed>, Role)
    where
        F: Future<Output = Result<V, Failed>> + Send + 'static,
    {
        let (shared, role) = {
            let mut loads = self.loads.lock().unwrap_or_else(|e| e.into_inner());
            match loads.get(&key) {
                Some(running) => (running.clone(), Role::Waiter),
                None => {
                    let done = Done {
                        loads: self.loads.clone(),
                        key: key.clone(),
                    };
                    let task = tokio::spawn(async move {
                        let out = load.await;
                        // The key is freed *before* the result reaches
                        // anyone, so no request joins a load that is over.
                        drop(done);
                        out
                    });
                    let shared = async move {
                        match task.await {
                            Ok(out) => out,
                            // A load that panicked still wakes its waiters,
                            // with an error (`Done` freed the key unwinding).
                            // The panic's text is for the log, not the client.
                            Err(e) => {
                                tracing::error!("a shared load failed: {e}");
                                Err(Failed(INTERNAL.into()))
                            }
                        }
                    }
                    .boxed()
                    .shared();
                    loads.insert(key, shared.clone());
                    (shared, Role::Leader)
                }
            }
        };
        (shared.await, role)
    }
    // ANCHOR_END: flight

    /// How many calls are awaiting `key`'s load now (0 when none runs).
    pub fn callers(&self, key: &K) -> usize {
        let loads = self.loads.lock().unwrap_or_else(|e| e.into_inner());
        // Every caller holds a clone; the map holds one more.
        loads
            .get(key)
            .and_then(Shared::strong_count)
            .map_or(0, |n| n.saturating_sub(1))
    }

    /// Loads in flight now.
    pub fn len(&self) -> usize {
        self.loads.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Frees a key when its load ends, however it ends (a panic too). It
/// cannot free it before the key is in the map: dropping it takes the
/// lock that `run` holds until the insert is done. And what it removes is
/// always its own load: a key holds one load at a time, and a newer one
/// can only be inserted after this removal.
struct Done<K: Eq + Hash, V: Clone> {
    loads: Arc<Mutex<HashMap<K, Load<V>>>>,
    key: K,
}

impl<K: Eq + Hash, V: Clone> Drop for Done<K, V> {
    fn drop(&mut self) {
        self.loads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::sync::Notify;

    /// Starts `n` concurrent `run`s of key 1 whose loads each count
    /// themselves and then wait for `go`; returns once the first load
    /// started and every run is waiting.
    async fn herd(
        flight: &Arc<SingleFlight<i64, u32>>,
        n: usize,
        loads: &Arc<AtomicUsize>,
        go: &Arc<Notify>,
        fail: bool,
    ) -> Vec<tokio::task::JoinHandle<(Result<u32, Failed>, Role)>> {
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (flight, loads, go) = (flight.clone(), loads.clone(), go.clone());
            tasks.push(tokio::spawn(async move {
                let load = async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    go.notified().await;
                    if fail {
                        Err(Failed("the database is down".into()))
                    } else {
                        Ok(7)
                    }
                };
                flight.run(1, load).await
            }));
        }
        // Released only once all `n` await the one load (a count, not a sleep).
        while flight.callers(&1) < n {
            tokio::task::yield_now().await;
        }
        tasks
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_concurrent_misses_make_one_load() {
        let flight = Arc::new(SingleFlight::new());
        let (loads, go) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let tasks = herd(&flight, 50, &loads, &go, false).await;
        go.notify_one();
        let mut leaders = 0;
        for t in tasks {
            let (out, role) = t.await.expect("no panic");
            assert_eq!(out, Ok(7));
            leaders += usize::from(role == Role::Leader);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "one load for fifty calls");
        assert_eq!(leaders, 1);
        assert!(flight.is_empty(), "the key is free once the load is over");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_load_wakes_every_waiter_and_the_next_call_retries() {
        let flight = Arc::new(SingleFlight::new());
        let (loads, go) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let tasks = herd(&flight, 20, &loads, &go, true).await;
        go.notify_one();
        for t in tasks {
            let (out, _) = t.await.expect("no panic");
            assert_eq!(out, Err(Failed("the database is down".into())));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "the waiters did not retry");
        let (out, role) = flight.run(1, async { Ok(8) }).await;
        assert_eq!(
            (out, role),
            (Ok(8), Role::Leader),
            "the next call loads anew"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_leader_does_not_wedge_the_key() {
        let flight = Arc::new(SingleFlight::<i64, u32>::new());
        let go = Arc::new(Notify::new());
        let loads = Arc::new(AtomicUsize::new(0));
        let leader = {
            let (flight, go, loads) = (flight.clone(), go.clone(), loads.clone());
            tokio::spawn(async move {
                flight
                    .run(1, async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        go.notified().await;
                        Ok(9)
                    })
                    .await
            })
        };
        while loads.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        leader.abort(); // the client hung up
        assert!(leader.await.is_err_and(|e| e.is_cancelled()));
        // The load goes on without the request that started it: a new
        // request joins it and gets its value.
        let waiter = {
            let flight = flight.clone();
            tokio::spawn(async move { flight.run(1, async { Ok(0) }).await })
        };
        while flight.callers(&1) < 1 {
            tokio::task::yield_now().await;
        }
        go.notify_one();
        let (out, role) = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the waiter is answered")
            .expect("no panic");
        assert_eq!((out, role), (Ok(9), Role::Waiter));
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert!(flight.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_load_is_an_error_and_frees_the_key() {
        let flight = SingleFlight::<i64, u32>::new();
        let (out, _) = flight
            .run(1, async {
                if true {
                    panic!("a bug in the loader")
                }
                Ok(1)
            })
            .await;
        assert_eq!(
            out,
            Err(Failed(INTERNAL.into())),
            "no panic text for the client"
        );
        assert!(flight.is_empty());
        assert_eq!(flight.run(1, async { Ok(2) }).await.0, Ok(2));
    }
}
