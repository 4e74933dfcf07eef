//! # Exercise 2: the cache-aside read (about 30 minutes)
//!
//! Write `GET /users/{id}` with Redis in front of PostgreSQL, in
//! `src/starter.rs`: look in Redis first; on a miss read the database and
//! store the JSON under the user's key with the TTL; and keep serving when
//! Redis is down or stuck.
//!
//! ```text
//! just exercise-2          # the tests against your src/starter.rs
//! just hint-2 1            # the first hint (of HINTS.md's four), if you are stuck
//! # without just: cargo test -p exercise-02-cache-aside --features starter
//! ```
//!
//! The tests count the database's own queries (pg_stat_statements), read
//! your keys and their TTLs straight from a private Redis, and stop and
//! pause that Redis under your handler. The book's chapter for lesson 2
//! shows every piece.

use axum::Router;
use axum::routing::get;
pub use lesson_02_cache_aside::{AppState, Settings, state};

// Every implementation below is compiled in every build, so your editor
// checks starter.rs as you type. A feature only picks the one the tests
// run: `starter` (what `just exercise-2` turns on) is yours; none is the
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
    } else if #[cfg(feature = "wrong-key-outside-prefix")] {
        pub use wrong::key_outside_prefix::get_user;
    } else {
        pub use solution::get_user;
    }
}

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
