//! Exercise 7's checks. Each failure message says what to look at.
//!
//! No server: a load is a future that counts itself (started, finished)
//! and waits at a gate the test opens, so a test can hold a load for as
//! long as it needs, send callers at it, cancel them, and then count. No
//! test asserts on a duration; `tokio::time::timeout` only turns a hang
//! into a failure that says what hung (the reference never comes near it).
//!
//! Every test runs on Tokio's one-thread runtime (`#[tokio::test]`'s
//! default), which is what makes its counts facts rather than guesses: on
//! one thread a task runs, once polled, until it awaits something not
//! ready, and nothing else runs meanwhile. So once every caller has
//! counted itself `entered` (just before its `run`), and the test has let
//! every ready task run ([`settle`]), each caller has gone as far into
//! `run` as it can: it is awaiting a load. Only then does a test open the
//! gate. And after a [`settle`], what has not happened cannot happen
//! without something new (a gate opened, a value sent): the test can say
//! "key 2's call is still waiting" or "nobody ran the load" at once, with
//! no timeout. (Real threads would leave a caller between its count and
//! its lookup now and then, and the tests would flake.) Your `run` is
//! still spawned as a task, so it must be `Send`, as a server needs it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use exercise_07_stampede::{Failed, SingleFlight};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the tests cache: a user's JSON, say. A `String`, so nothing in
/// `run` can rely on `Copy`.
type Flight = SingleFlight<u32, String>;

/// How long a test waits for something before it calls it a hang. Not a
/// timing: the reference does each step in microseconds.
const HANG: Duration = Duration::from_secs(10);

/// The loads of one test: counted, and held at a gate until [`open`].
///
/// [`open`]: Loads::open
struct Loads {
    started: AtomicUsize,
    finished: AtomicUsize,
    gate: watch::Sender<bool>,
}

impl Loads {
    fn new() -> Arc<Loads> {
        Arc::new(Loads {
            started: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            gate: watch::Sender::new(false),
        })
    }

    /// A load that counts itself, waits for the gate, and returns `out`.
    fn held(
        self: &Arc<Self>,
        out: Result<&str, &str>,
    ) -> impl Future<Output = Result<String, Failed>> + Send + 'static {
        let loads = self.clone();
        let out = out.map(String::from).map_err(Failed::new);
        async move {
            loads.started.fetch_add(1, Ordering::SeqCst);
            let mut open = loads.gate.subscribe();
            // The sender lives in `loads`, which this future holds: the
            // wait ends only when the gate opens.
            let _ = open.wait_for(|open| *open).await;
            loads.finished.fetch_add(1, Ordering::SeqCst);
            out
        }
    }

    /// A load that counts itself and returns `out` at once.
    fn quick(
        self: &Arc<Self>,
        out: Result<&str, &str>,
    ) -> impl Future<Output = Result<String, Failed>> + Send + 'static {
        let loads = self.clone();
        let out = out.map(String::from).map_err(Failed::new);
        async move {
            loads.started.fetch_add(1, Ordering::SeqCst);
            loads.finished.fetch_add(1, Ordering::SeqCst);
            out
        }
    }

    /// Lets every held load, and every one started later, finish.
    fn open(&self) {
        self.gate.send_replace(true);
    }

    fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

/// `flight.run(key, load)` in a task of its own, as a request would call
/// it, counting itself in `entered` just before.
fn call(
    flight: &Arc<Flight>,
    entered: &Arc<AtomicUsize>,
    key: u32,
    load: impl Future<Output = Result<String, Failed>> + Send + 'static,
) -> JoinHandle<Result<String, Failed>> {
    let (flight, entered) = (flight.clone(), entered.clone());
    tokio::spawn(async move {
        entered.fetch_add(1, Ordering::SeqCst);
        flight.run(key, load).await
    })
}

/// Lets every task that can run, run, until none can. Each `yield_now`
/// puts the test behind every task that is ready (up to 61 of them, Tokio's
/// `event_interval`, per turn); 32 turns are far more than any step here
/// takes (the reference needs two or three). Scheduler turns, not time.
async fn settle() {
    for _ in 0..32 {
        tokio::task::yield_now().await;
    }
}

/// Waits until `done()`, letting the other tasks run; `what` says what
/// hung if it never comes.
async fn until(what: &str, done: impl Fn() -> bool) {
    let waited = tokio::time::timeout(HANG, async {
        while !done() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(waited.is_ok(), "{what}");
    settle().await;
}

/// A call's result; `what` says what hung if it never comes.
async fn answer(what: &str, call: JoinHandle<Result<String, Failed>>) -> Result<String, Failed> {
    tokio::time::timeout(HANG, call)
        .await
        .unwrap_or_else(|_| panic!("{what}"))
        .expect("a call panicked (see its message above)")
}

// ANCHOR: herd
#[tokio::test]
async fn fifty_concurrent_calls_for_one_key_make_one_load() {
    const N: usize = 50;
    let flight = Arc::new(Flight::new());
    let (loads, entered) = (Loads::new(), Arc::new(AtomicUsize::new(0)));

    // Fifty requests miss the same hot key at once; each brings a load.
    let calls: Vec<_> = (0..N)
        .map(|_| call(&flight, &entered, 1, loads.held(Ok("user 1"))))
        .collect();
    until("the 50 calls never all started (not your code)", || {
        entered.load(Ordering::SeqCst) == N
    })
    .await;
    // Every call is in `run` now, and the load they wait for is held.
    let started = loads.started();
    loads.open();
    let mut answers = Vec::new();
    for c in calls {
        answers.push(
            answer(
                "a call never returned after its load ended: is a caller waiting for something \
                 no one sends?",
                c,
            )
            .await,
        );
    }

    assert_eq!(
        started,
        1,
        "{N} concurrent calls for key 1 started {started} loads, while every one of them was \
         still running: {}",
        if started == N {
            "each caller ran its own, the herd. The first caller's load must be the one the \
             others await: keep the loads in flight in a map by key, and have a caller that \
             finds its key there await that load (a `Shared` future) instead of its own"
        } else {
            "some callers did not find the load in flight. Is the lookup and the insert done \
             under one lock, and the load inserted before anyone awaits it?"
        }
    );
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(
            a.as_deref(),
            Ok("user 1"),
            "call {i} of {N} did not get the one load's value"
        );
    }
    assert_eq!(loads.finished(), 1, "the one load should have finished");
}
// ANCHOR_END: herd

#[tokio::test]
async fn a_load_of_another_key_does_not_wait_for_it() {
    let flight = Arc::new(Flight::new());
    let (loads, entered) = (Loads::new(), Arc::new(AtomicUsize::new(0)));

    // Key 1's load is slow (held at the gate)...
    let slow = call(&flight, &entered, 1, loads.held(Ok("user 1")));
    until("key 1's load never started", || loads.started() == 1).await;
    // ...and key 2's request must not wait for it: once every task that
    // can run has run, it has its answer.
    let other = Loads::new();
    let two = call(&flight, &entered, 2, other.quick(Ok("user 2")));
    settle().await;
    assert!(
        two.is_finished(),
        "a call for key 2 did not return while key 1's load was in flight (its own load {}): \
         key 2 waits for key 1. Single-flight is one load *per key*; is one lock held across \
         a load, or across an `.await`? Hold the map's lock only for the lookup and the \
         insert, and let each key's load run on its own",
        if other.started() == 0 {
            "never started"
        } else {
            "started"
        }
    );
    let two = answer("key 2's call is finished (not your code)", two).await;
    assert_eq!(
        two.as_deref(),
        Ok("user 2"),
        "a call for key 2, while key 1's load was in flight, got the wrong answer: the map must \
         be by key, and key 2 has its own load"
    );
    assert_eq!(
        other.started(),
        1,
        "key 2's call should have run its own load"
    );

    loads.open();
    let one = answer("key 1's call never returned after its load ended", slow).await;
    assert_eq!(
        one.as_deref(),
        Ok("user 1"),
        "key 1's call got the wrong answer"
    );
}

#[tokio::test]
async fn a_failed_load_fails_every_waiter_and_the_next_call_loads_again() {
    const N: usize = 20;
    let flight = Arc::new(Flight::new());
    let (loads, entered) = (Loads::new(), Arc::new(AtomicUsize::new(0)));

    let calls: Vec<_> = (0..N)
        .map(|_| {
            call(
                &flight,
                &entered,
                1,
                loads.held(Err("the database is down")),
            )
        })
        .collect();
    until("the 20 calls never all started (not your code)", || {
        entered.load(Ordering::SeqCst) == N
    })
    .await;
    let started = loads.started();
    loads.open();
    for (i, c) in calls.into_iter().enumerate() {
        let a = answer(
            "a call never returned after its load failed: a failed load must answer its \
             waiters too, with its error",
            c,
        )
        .await;
        assert_eq!(
            a,
            Err(Failed::new("the database is down")),
            "call {i} of {N} should get the one load's error: every waiter shares its result, \
             error or value"
        );
    }
    assert_eq!(
        started, 1,
        "{N} concurrent calls for key 1 started {started} loads: the waiters of a load must \
         not run their own, even when it fails"
    );

    // The database is back: the next request must try again, not get the
    // old error.
    let later = Loads::new();
    let next = tokio::time::timeout(HANG, flight.run(1, later.quick(Ok("user 1"))))
        .await
        .expect("a call after the failed load never returned");
    assert_eq!(
        next.as_deref(),
        Ok("user 1"),
        "the call after a failed load got {next:?}: the failure was kept, and every request for \
         this key would get it forever. Free the key when its load ends, however it ends: on \
         an error too (a `?` or an early return can skip the line that frees it; a `Drop` \
         guard cannot be skipped)"
    );
    assert_eq!(later.started(), 1, "the call after the failure should load");
}

#[tokio::test]
async fn a_cancelled_first_caller_does_not_wedge_the_key() {
    let flight = Arc::new(Flight::new());
    let (loads, entered) = (Loads::new(), Arc::new(AtomicUsize::new(0)));

    cancel_first_caller(&flight, &entered, &loads).await;

    // Another request for the key arrives while that load is still held.
    let second = call(&flight, &entered, 1, loads.quick(Ok("load 2")));
    until("the second call never started", || {
        entered.load(Ordering::SeqCst) == 2
    })
    .await;
    loads.open();
    let got = answer(
        "a call for a key whose first caller was cancelled never returned, even after the \
         load ended: the key is wedged. Cancelling a caller drops its future at its `.await`; \
         nothing after that line runs",
        second,
    )
    .await;
    assert!(
        matches!(got.as_deref(), Ok("load 1" | "load 2")),
        "a call after the first caller was cancelled got {got:?}, neither the first load's \
         value (it joined it) nor its own"
    );

    // Both loads are over: the next call must load anew.
    let next = tokio::time::timeout(HANG, flight.run(1, loads.quick(Ok("load 3"))))
        .await
        .expect("a call after every load ended never returned");
    assert_eq!(
        next.as_deref(),
        Ok("load 3"),
        "after the loads of a key whose first caller was cancelled had ended, the next call \
         got {next:?} back instead of loading: the key was never freed. Who frees it, if the \
         caller that started the load is cancelled? Free it where the load runs (its own \
         task), when it ends"
    );
}

#[tokio::test]
async fn a_load_runs_to_its_end_when_its_caller_is_cancelled() {
    let flight = Arc::new(Flight::new());
    let (loads, entered) = (Loads::new(), Arc::new(AtomicUsize::new(0)));

    cancel_first_caller(&flight, &entered, &loads).await;

    // Nobody waits for the load now. It must finish anyway: in lesson 7 it
    // fills Redis for the next requests, and a query stopped halfway holds
    // its database connection until something drives it on.
    loads.open();
    settle().await;
    assert_eq!(
        loads.finished(),
        1,
        "the load stopped when the only caller awaiting it was cancelled: it ran inside the \
         callers' futures, and nobody polls it now. Run the load in a task of its own \
         (`tokio::spawn`), which runs whoever awaits it"
    );

    let next = tokio::time::timeout(HANG, flight.run(1, loads.quick(Ok("load 2"))))
        .await
        .expect("a call after the load ended never returned");
    assert_eq!(
        next.as_deref(),
        Ok("load 2"),
        "the load of a cancelled caller ended, and the next call got {next:?} back instead of \
         loading: the key was never freed. Free it in the load's own task, when the load \
         ends, not in a caller's code after its `.await` (a cancelled caller never gets there)"
    );
}

#[tokio::test]
async fn after_a_load_ends_the_next_call_loads_again() {
    let flight = Flight::new();
    let loads = Loads::new();

    let one = flight.run(1, loads.quick(Ok("version 1"))).await;
    assert_eq!(
        one.as_deref(),
        Ok("version 1"),
        "a lone call must return its load's value"
    );
    // The row changed meanwhile; Redis's entry expired (or was deleted).
    let two = flight.run(1, loads.quick(Ok("version 2"))).await;
    assert_eq!(
        two.as_deref(),
        Ok("version 2"),
        "a call after the key's load had ended got {two:?}, the old load's value: the map kept \
         it. It holds loads in flight, not results (caching is Redis's job, with its TTL); \
         free the key when its load ends"
    );
    assert_eq!(
        loads.started(),
        2,
        "two calls one after the other: two loads"
    );
}

/// Starts a call for key 1 whose load is held, waits until that load has
/// started, then cancels the call, as a client that hangs up does: the
/// request's future is dropped where it awaits.
async fn cancel_first_caller(flight: &Arc<Flight>, entered: &Arc<AtomicUsize>, loads: &Arc<Loads>) {
    let first = call(flight, entered, 1, loads.held(Ok("load 1")));
    until("the first call's load never started", || {
        loads.started() == 1
    })
    .await;
    first.abort();
    assert!(
        first.await.is_err_and(|e| e.is_cancelled()),
        "the first call finished before its load did"
    );
}
