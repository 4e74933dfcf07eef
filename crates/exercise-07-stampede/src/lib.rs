//! # Exercise 7: single-flight, one load per key at a time (about 30 minutes)
//!
//! Lesson 7 shows the herd: a hot key expires in Redis, and every request
//! that arrives before someone has filled it again misses, and queries the
//! database, the same row, at the same moment. Lesson 7's first cure, for
//! one process, is **single-flight**:
//!
//! ```text
//!  without                               with single-flight
//!  request 1: miss → query ─┐            request 1: miss → query ─┐
//!  request 2: miss → query ─┤ database   request 2: miss → wait   │ database
//!  request 3: miss → query ─┘            request 3: miss → wait   │
//!                                        (all three get query 1's result)
//! ```
//!
//! Write `SingleFlight::run`, in `src/starter.rs`: `run(key, load)` returns
//! `load`'s result, but if a load for `key` is already in flight, it does
//! not start `load` at all: it awaits the one in flight and returns a clone
//! of its result. As shipped it just awaits `load`: every caller loads, the
//! herd.
//!
//! ```text
//! just exercise-7          # the tests against your src/starter.rs
//! just hint-7 1            # the first hint (of HINTS.md's four), if you are stuck
//! # without just: cargo test -p exercise-07-stampede --features starter
//! ```
//!
//! The tests need no server: their loads are futures that count themselves
//! and wait at a gate the test opens. They hold a load, send callers at it,
//! cancel one, fail one, and count loads and compare values, never timings.
//!
//! ## What is yours and what is given, and why
//!
//! Yours: [`SingleFlight`], its fields and its `run`. Three things make it
//! right, one test or two each:
//!
//! - **one load per key**: the first caller's load is the one everybody
//!   awaits, and a *different* key never waits for it;
//! - **the key is freed when the load ends, however it ends**: on success
//!   and on error, so that the next call loads again. The map holds loads
//!   *in flight*, not results: caching is Redis's job, with a TTL; a result
//!   kept here would be served forever, and so would an error;
//! - **the load outlives its callers**: a request whose client hung up is
//!   cancelled (its future is dropped at an `.await`), and that must not
//!   stop the load the others wait for, nor leave the key held forever.
//!
//! Given: [`Failed`], the error every waiter gets a clone of (a load's
//! error is shared like its value, so it must be `Clone`; an
//! `anyhow::Error` is not), and the signature of `run`. The load is a
//! future, `Send + 'static`, rather than a closure or a `Loader` trait:
//! nothing else to learn, and exactly what lesson 7's read path hands to
//! its own `SingleFlight` (a query and a Redis fill, in an `async move`
//! block).
//!
//! Why a map of your own and not [moka]'s `future::Cache::try_get_with`,
//! which also coalesces concurrent loads of a missing key into one? Because
//! moka then *keeps* the value: it is a cache, in this process. Here the
//! cache is Redis, shared by every instance, with its TTL and its
//! invalidations (lessons 2 and 8); a second copy in each process would be
//! lesson 8's L1, with all of its staleness. What we want from this
//! process is only the coalescing, which is a few dozen lines: a
//! `Mutex<HashMap<key, load in flight>>`. (Where the cache *is* in the
//! process, use moka: lesson 8's L1 is one.)
//!
//! [moka]: https://docs.rs/moka
//!
//! # Layout
//!
//! - this file: [`Failed`], and the choice of implementation the tests run;
//! - `starter.rs`: your `SingleFlight`; `solution.rs`: the reference
//!   (lesson 7's `flight.rs`, without its metrics);
//! - `wrong/`: plausible mistakes the tests catch (spoilers).

use std::sync::Arc;

// Every implementation below is compiled in every build, so your editor
// checks starter.rs as you type. A feature only picks the one the tests
// run: `starter` (what `just exercise-7` turns on) is yours; none is the
// reference in solution.rs; `wrong-*` are plausible mistakes that CI proves
// the tests catch. With several on (clippy's `--all-features`), the first
// in this list wins.
pub mod solution;
pub mod starter;
#[doc(hidden)]
pub mod wrong;

cfg_if::cfg_if! {
    if #[cfg(feature = "starter")] {
        pub use starter::SingleFlight;
    } else if #[cfg(feature = "wrong-global-lock")] {
        pub use wrong::global_lock::SingleFlight;
    } else if #[cfg(feature = "wrong-never-forget")] {
        pub use wrong::never_forget::SingleFlight;
    } else if #[cfg(feature = "wrong-error-stuck")] {
        pub use wrong::error_stuck::SingleFlight;
    } else if #[cfg(feature = "wrong-leader-polls")] {
        pub use wrong::leader_polls::SingleFlight;
    } else if #[cfg(feature = "wrong-no-cleanup-on-cancel")] {
        pub use wrong::no_cleanup_on_cancel::SingleFlight;
    } else {
        pub use solution::SingleFlight;
    }
}

/// Why a load gave nothing: its error, as text every waiter can hold a
/// clone of. (Lesson 7 turns a database error or timeout into one of these,
/// and every request that waited answers 503 with it.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed(pub Arc<str>);

impl Failed {
    pub fn new(why: &str) -> Failed {
        Failed(why.into())
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}
