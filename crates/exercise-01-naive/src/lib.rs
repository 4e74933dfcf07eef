//! # Exercise 1: the naive handler (about 20 minutes)
//!
//! Write `GET /users/{id}` yourself, in `src/starter.rs`: parse the id,
//! read the user from PostgreSQL, and answer with JSON, a 400 or a 404.
//!
//! ```text
//! just exercise-1          # the tests against your src/starter.rs
//! just hint-1 1            # the first hint (of HINTS.md's four), if you are stuck
//! # without just: cargo test -p exercise-01-naive --features starter
//! ```
//!
//! The tests talk to a real PostgreSQL (the harness finds or starts one) and
//! say in plain words what they expected. The book's chapter for lesson 1
//! shows the pieces you need; `lab::http` and `lab::users` have them ready.

use axum::Router;
use axum::routing::get;
pub use lesson_01_naive::AppState;

// Every implementation below is compiled in every build, so your editor
// checks starter.rs as you type. A feature only picks the one the tests
// run: `starter` (what `just exercise-1` turns on) is yours; none is the
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
    } else if #[cfg(feature = "wrong-missing-user-is-500")] {
        pub use wrong::missing_user_is_500::get_user;
    } else if #[cfg(feature = "wrong-any-integer-is-an-id")] {
        pub use wrong::any_integer_is_an_id::get_user;
    } else {
        pub use solution::get_user;
    }
}

/// The exercise's service: your handler behind the same routes as lesson 1.
pub fn router(state: AppState) -> Router {
    lab::http::finish(
        Router::new()
            .route("/users/{id}", get(get_user))
            .with_state(state),
    )
}
