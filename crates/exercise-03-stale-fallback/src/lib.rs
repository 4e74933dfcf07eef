//! # Exercise 3: stale data beats no data
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
//! # without just: cargo test -p exercise-03-stale-fallback --features starter
//! ```
//!
//! The tests stop a private PostgreSQL under your handler: a real outage.
//! The book's chapter for lesson 3 shows every piece; the circuit breaker
//! is not required here.

use axum::Router;
use axum::routing::get;
pub use lesson_03_stale_fallback::{AppState, Mode, Settings, state};

#[cfg(feature = "starter")]
mod starter;
#[cfg(feature = "starter")]
pub use starter::get_user;

#[cfg(not(feature = "starter"))]
mod solution;
#[cfg(not(feature = "starter"))]
pub use solution::get_user;

/// The exercise's service: your read.
pub fn router(state: AppState) -> Router {
    lab::http::finish(
        Router::new()
            .route("/users/{id}", get(get_user))
            .with_state(state),
    )
}
