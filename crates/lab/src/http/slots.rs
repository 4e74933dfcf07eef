//! The connection limit, and which connection gives way when it is reached.
//!
//! A limit alone protects the process (no EMFILE, bounded memory) but not
//! its users: a thousand clients that each send half a request line fill
//! every slot, and a real request queues behind them until their header
//! timeouts expire. So when every slot is taken and a new connection
//! arrives, the connection idle longest *without a request in flight*
//! (sending half a head, or idle between keep-alive requests) is closed to
//! make room. A connection with a request in flight is never chosen: its
//! work is real, and its own timeouts bound it. If every connection is
//! busy, the newcomer waits for one to finish, and those behind it wait in
//! the kernel's listen queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::log::Throttle;

/// The server's connection slots.
#[derive(Debug)]
pub(crate) struct Slots {
    permits: Arc<Semaphore>,
    // A std Mutex: held for a scan of the map, never across an `.await`.
    held: Mutex<HashMap<u64, Held>>,
    next_id: AtomicU64,
    /// Activity times are kept as nanoseconds since this instant, so that
    /// they fit an atomic.
    epoch: Instant,
}

#[derive(Debug)]
struct Held {
    activity: Arc<Activity>,
    evict: Arc<Notify>,
}

/// What eviction looks at: requests in flight, and when the connection last
/// started or finished one (or was accepted).
#[derive(Debug)]
struct Activity {
    busy: AtomicUsize,
    last_nanos: AtomicU64,
    epoch: Instant,
}

impl Activity {
    fn touch(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_nanos.store(nanos, Ordering::SeqCst);
    }
}

/// One connection's slot, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    id: u64,
    slots: Arc<Slots>,
    _permit: OwnedSemaphorePermit,
    activity: Arc<Activity>,
    evict: Arc<Notify>,
}

/// At most one line per 5 s while a flood forces evictions.
static EVICTING: Throttle = Throttle::new(Duration::from_secs(5));

impl Slots {
    pub(crate) fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            permits: Arc::new(Semaphore::new(max)),
            held: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// A slot for a connection just accepted; when there is none, closes the
    /// longest-idle connection (if any is idle) and waits for its slot.
    ///
    /// Called after `accept`, not before: eviction must happen only for a
    /// newcomer that really exists, or a loop waiting for its next
    /// connection would close a client that had only just connected. The
    /// descriptor the newcomer holds meanwhile is one of those kept in
    /// reserve below the file-descriptor limit.
    pub(crate) async fn acquire(self: &Arc<Self>, _newcomer: &TcpStream) -> Slot {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.evict_longest_idle();
                // Never closed, so `acquire_owned` cannot fail; the loop
                // only satisfies the type.
                loop {
                    if let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await {
                        break permit;
                    }
                }
            }
        };
        let activity = Arc::new(Activity {
            busy: AtomicUsize::new(0),
            last_nanos: AtomicU64::new(0),
            epoch: self.epoch,
        });
        activity.touch();
        let slot = Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            slots: Arc::clone(self),
            _permit: permit,
            activity: Arc::clone(&activity),
            evict: Arc::new(Notify::new()),
        };
        self.lock().insert(
            slot.id,
            Held {
                activity,
                evict: Arc::clone(&slot.evict),
            },
        );
        slot
    }

    fn evict_longest_idle(&self) {
        let mut held = self.lock();
        let idlest = held
            .iter()
            .filter(|(_, h)| h.activity.busy.load(Ordering::SeqCst) == 0)
            .min_by_key(|(_, h)| h.activity.last_nanos.load(Ordering::SeqCst))
            .map(|(id, _)| *id);
        // Removed from the map at once, so the next eviction picks another.
        if let Some(victim) = idlest.and_then(|id| held.remove(&id)) {
            // `notify_one` keeps the wake-up if the task is not waiting yet.
            victim.evict.notify_one();
            metrics::counter!("http_connections_evicted_total").increment(1);
            EVICTING.warn(format_args!(
                "connection limit reached: closing idle connections to make room"
            ));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Slot {
    /// What the connection's service uses to mark its requests in flight.
    pub(crate) fn in_flight(&self) -> InFlight {
        InFlight(Arc::clone(&self.activity))
    }

    /// Resolves when this connection was chosen to make room.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().remove(&self.id);
    }
}

/// Counts one connection's requests in flight.
#[derive(Clone, Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl InFlight {
    /// Marks a request in flight until the guard is dropped: a connection
    /// with one is never evicted.
    pub(crate) fn begin(&self) -> Busy {
        self.0.busy.fetch_add(1, Ordering::SeqCst);
        self.0.touch();
        Busy(Arc::clone(&self.0))
    }
}

/// A request in flight; see [`InFlight::begin`].
#[derive(Debug)]
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        // Idle from now: the clock of "longest idle" restarts here.
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}
