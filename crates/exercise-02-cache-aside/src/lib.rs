//! # Exercise 2: the cache-aside read
//!
//! Write `GET /users/{id}` with Redis in front of PostgreSQL, in
//! `src/starter.rs`: look in Redis first; on a miss read the database and
//! store the JSON under `user:{id}` with the TTL; and keep serving when Redis
//! is down.
//!
//! ```text
//! just exercise-2          # the tests against your src/starter.rs
//! # without just: cargo test -p exercise-02-cache-aside --features starter
//! ```
//!
//! The tests count the database's own queries (pg_stat_statements), read
//! the key and its TTL straight from Redis, and stop a private Redis under
//! your handler. The book's chapter for lesson 2 shows every piece.

use axum::Router;
use axum::routing::get;
pub use lesson_02_cache_aside::{AppState, Settings, state};

#[cfg(feature = "starter")]
mod starter;
#[cfg(feature = "starter")]
pub use starter::get_user;

#[cfg(not(feature = "starter"))]
mod solution;
#[cfg(not(feature = "starter"))]
pub use solution::get_user;

/// The exercise's service: your read, lesson 2's write.
pub fn router(state: AppState) -> Router {
    lab::http::finish(
        Router::new()
            .route(
                "/users/{id}",
                get(get_user).put(lesson_02_cache_aside::put_user),
            )
            .with_state(state),
    )
}
