//! # Exercise 3: stale data beats no data (about 45 minutes)
//!
//! Lesson 2's read forgets a user the moment its TTL ends, so when the
//! database goes down every expired key becomes an error. Rewrite the read,
//! in `src/starter.rs`, so that it keeps serving what it has:
//!
//! - store an [`Entry`](lesson_03_stale_fallback::entry::Entry): the user
//!   *and the time it was fetched*, kept by Redis for the **hard TTL**;
//! - younger than the **soft TTL**: answer from the cache (`X-Cache: HIT`);
//! - older: ask the database under `db_timeout`; when it fails, answer the
//!   old copy with `X-Cache: STALE` and its `Age`;
//! - no copy and no database: 503 with a JSON body and `Retry-After`.
//!
//! ```text
//! just exercise-3          # the tests against your src/starter.rs
//! just hint-3 1            # the first hint (of HINTS.md's four), if you are stuck
//! # without just: cargo test -p exercise-03-stale-fallback --features starter
//! ```
//!
//! The tests stop a private PostgreSQL under your handler: a real outage;
//! and they stop and pause a private Redis. The book's chapter for lesson 3
//! shows every piece; the circuit breaker is not required here.

use axum::Router;
use axum::routing::get;
pub use lesson_03_stale_fallback::{AppState, Mode, Settings, state};

// Every implementation below is compiled in every build, so your editor
// checks starter.rs as you type. A feature only picks the one the tests
// run: `starter` (what `just exercise-3` turns on) is yours; none is the
// reference in solution.rs; `wrong-*` are plausible mistakes that CI proves
// the tests catch. With several on (clippy's `--all-features`), the first
// in this list wins.
pub mod solution;
pub mod starter;
#[doc(hidden)]
pub mod wrong;

cfg_if::cfg_if! {
    if #[cfg(feature = "starter")] {
        pub use starter::get_user;
    } else if #[cfg(feature = "wrong-caches-404")] {
        pub use wrong::caches_404::get_user;
    } else if #[cfg(feature = "wrong-no-redis-timeout")] {
        pub use wrong::no_redis_timeout::get_user;
    } else if #[cfg(feature = "wrong-refresh-not-stored")] {
        pub use wrong::refresh_not_stored::get_user;
    } else if #[cfg(feature = "wrong-redis-error-is-500")] {
        pub use wrong::redis_error_is_500::get_user;
    } else {
        pub use solution::get_user;
    }
}
/// The exercise's service: your read.
pub fn router(state: AppState) -> Router {
    lab::http::finish(
        Router::new()
            .route("/users/{id}", get(get_user))
            .with_state(state),
    )
}
