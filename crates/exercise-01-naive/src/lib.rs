//! # Exercise 1: the naive handler
//!
//! Write `GET /users/{id}` yourself, in `src/starter.rs`: parse the id,
//! read the user from PostgreSQL, and answer with JSON, a 400 or a 404.
//!
//! ```text
//! just exercise-1          # the tests against your src/starter.rs
//! # without just: cargo test -p exercise-01-naive --features starter
//! ```
//!
//! The tests talk to a real PostgreSQL (the harness finds or starts one) and
//! say in plain words what they expected. The book's chapter for lesson 1
//! shows the pieces you need; `lab::http` and `lab::users` have them ready.

use axum::Router;
use axum::routing::get;
pub use lesson_01_naive::AppState;

// `just exercise-1` builds with `--features starter`: your code in starter.rs.
// Otherwise the tests run against the reference solution in solution.rs.
#[cfg(feature = "starter")]
mod starter;
#[cfg(feature = "starter")]
pub use starter::get_user;

#[cfg(not(feature = "starter"))]
mod solution;
#[cfg(not(feature = "starter"))]
pub use solution::get_user;

/// The exercise's service: your handler behind the same routes as lesson 1.
pub fn router(state: AppState) -> Router {
    lab::http::finish(
        Router::new()
            .route("/users/{id}", get(get_user))
            .with_state(state),
    )
}
