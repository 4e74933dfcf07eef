//! The connection limit, and which connection gives way when it is reached.
//!
//! A limit alone protects the process (no EMFILE, bounded memory) but not
//! its users: a thousand clients that each send half a request line fill
//! every slot, and a real request queues behind them until their header
//! timeouts expire. So when every slot is taken and a new connection
//! arrives, the connection idle longest *without a request in flight*
//! (sending half a head, or idle between keep-alive requests) is closed to
//! make room. A connection with a request in flight is not chosen: its
//! work is real, and its own timeouts bound it. If every connection is
//! busy, the newcomer waits for one to finish (or to go idle, which is what
//! a finished keep-alive request leaves behind), and those behind it wait in
//! the kernel's listen queue.
//!
//! One exception: a request whose body has not fully arrived counts as
//! idle. Its handler cannot do any work until the body is in, and a client
//! that sends a head and then trickles its body is the slow-loris attack
//! one step further on; if it counted as busy, twenty such clients would
//! hold twenty slots for the whole body timeout. An honest upload loses
//! little: its client sees the connection close and may retry, which is
//! what it sees from any server under overload. Idle connections are closed
//! before ones in the middle of a body. ("Waiting for its body" means hyper
//! has not yet handed the handler the body's end; the lessons' handlers
//! read the body first, through `Json`, so they do no work meanwhile.)
//!
//! A connection is chosen while idle, but closed by its own task a moment
//! later; if a request started in between, the connection finishes it
//! (hyper's graceful shutdown) instead of cutting it off.

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
    /// Signalled whenever a connection goes idle or starts waiting for a
    /// body, so that a newcomer waiting for a slot tries eviction again.
    evictable: Arc<Notify>,
    /// Activity times are kept as nanoseconds since this instant, so that
    /// they fit an atomic.
    epoch: Instant,
}

#[derive(Debug)]
struct Held {
    activity: Arc<Activity>,
    evict: Arc<Notify>,
}

/// What eviction looks at: requests in flight, how many of them still wait
/// for their body, and when the connection last started or finished one (or
/// was accepted).
#[derive(Debug)]
struct Activity {
    busy: AtomicUsize,
    reading: AtomicUsize,
    last_nanos: AtomicU64,
    epoch: Instant,
    /// The server's [`Slots::evictable`], signalled when this connection
    /// becomes one eviction may pick.
    evictable: Arc<Notify>,
}

impl Activity {
    fn touch(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_nanos.store(nanos, Ordering::SeqCst);
    }

    /// No request in flight, or only ones still waiting for their body.
    fn evictable(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == self.reading.load(Ordering::SeqCst)
    }

    /// No request in flight at all.
    fn idle(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == 0
    }

    /// Wakes a newcomer waiting in [`Slots::acquire`], if any: a slot may be
    /// had by eviction now.
    fn became_evictable(&self) {
        self.evictable.notify_waiters();
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
            evictable: Arc::new(Notify::new()),
            epoch: Instant::now(),
        })
    }

    /// A slot for a connection just accepted; when there is none, closes the
    /// longest-idle connection (if any is idle) and waits for its slot. When
    /// none is idle, waits until a slot frees or a connection goes idle,
    /// and tries again.
    ///
    /// Called after `accept`, not before: eviction must happen only for a
    /// newcomer that really exists, or a loop waiting for its next
    /// connection would close a client that had only just connected. The
    /// descriptor the newcomer holds meanwhile is one of those kept in
    /// reserve below the file-descriptor limit.
    pub(crate) async fn acquire(self: &Arc<Self>, _newcomer: &TcpStream) -> Slot {
        let permit = loop {
            if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
                break permit;
            }
            // Registered before looking for a victim, so that a connection
            // going idle between the look and the wait still wakes us.
            let went_idle = self.evictable.notified();
            let mut went_idle = std::pin::pin!(went_idle);
            went_idle.as_mut().enable();
            let evicted = self.evict_longest_idle();
            tokio::select! {
                // The semaphore is never closed, so this is always `Ok`.
                permit = Arc::clone(&self.permits).acquire_owned() => {
                    if let Ok(permit) = permit {
                        break permit;
                    }
                }
                // Nobody to evict yet: look again when someone goes idle.
                // (With a victim chosen, its slot is on its way.)
                () = went_idle, if !evicted => {}
            }
        };
        let activity = Arc::new(Activity {
            busy: AtomicUsize::new(0),
            reading: AtomicUsize::new(0),
            last_nanos: AtomicU64::new(0),
            epoch: self.epoch,
            evictable: Arc::clone(&self.evictable),
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

    /// Tells the connection idle longest to close; idle ones go before ones
    /// waiting for a body. `false` when every connection is busy.
    fn evict_longest_idle(&self) -> bool {
        let mut held = self.lock();
        let idlest = held
            .iter()
            .filter(|(_, h)| h.activity.evictable())
            .min_by_key(|(_, h)| {
                let a = &h.activity;
                (!a.idle(), a.last_nanos.load(Ordering::SeqCst))
            })
            .map(|(id, _)| *id);
        // Removed from the map at once, so the next eviction picks another.
        if let Some(victim) = idlest.and_then(|id| held.remove(&id)) {
            // `notify_one` keeps the wake-up if the task is not waiting yet.
            victim.evict.notify_one();
            metrics::counter!("http_connections_evicted_total").increment(1);
            EVICTING.warn(format_args!(
                "connection limit reached: closing idle connections to make room"
            ));
            return true;
        }
        false
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

    /// Whether the connection may be closed at once: nothing in flight but
    /// requests still waiting for their body. The victim was chosen for
    /// this, but a request may have started since; the connection's own
    /// task asks again, when its connection is not being polled and so no
    /// request can start.
    pub(crate) fn may_drop(&self) -> bool {
        self.activity.evictable()
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
    /// with one is not evicted, unless the request is still waiting for its
    /// body (see [`Busy::reading`]).
    pub(crate) fn begin(&self) -> Busy {
        self.0.busy.fetch_add(1, Ordering::SeqCst);
        self.0.touch();
        Busy(Arc::clone(&self.0))
    }
}

/// A request in flight; see [`InFlight::begin`].
#[derive(Debug)]
pub(crate) struct Busy(Arc<Activity>);

impl Busy {
    /// Marks the request as waiting for its body until the guard is dropped
    /// (when the body has all arrived, failed, or been dropped unread).
    pub(crate) fn reading(&self) -> Reading {
        self.0.reading.fetch_add(1, Ordering::SeqCst);
        self.0.became_evictable();
        Reading(Arc::clone(&self.0))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // Idle from now: the clock of "longest idle" restarts here.
        self.0.touch();
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.became_evictable();
        }
    }
}

/// A request still waiting for its body; see [`Busy::reading`].
#[derive(Debug)]
pub(crate) struct Reading(Arc<Activity>);

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.reading.fetch_sub(1, Ordering::SeqCst);
    }
}
