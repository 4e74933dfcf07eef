//! # Exercise 6: make the origin's answers cacheable and revalidatable (about 30–45 minutes)
//!
//! The router below already reads a user from PostgreSQL and turns it into
//! the JSON body. Then it hands the body to `cacheable`, in `src/starter.rs`,
//! which as shipped sends it with no caching headers at all, so nothing
//! between the user and the origin may keep it. Make it say how to cache it:
//!
//! - `Cache-Control` for a **shared** cache, from the [`Lifetimes`] it is
//!   given: `public`, `max-age` (browsers), `s-maxage` (the edge),
//!   `stale-while-revalidate` and `stale-if-error`;
//! - a **strong `ETag`** computed from the body;
//! - `304 Not Modified`, **no body**, the same `ETag` and `Cache-Control`,
//!   when the request's `If-None-Match` names the body's tag; otherwise the
//!   full `200`.
//!
//! ```text
//! just exercise-6          # the tests against your src/starter.rs
//! just hint-6 1            # the first hint (of HINTS.md's four), if you are stuck
//! # without just: cargo test -p exercise-06-http-edge --features starter
//! ```
//!
//! The tests read your headers through the router, then put a real nginx
//! (the lesson's edge, spawned privately) in front of your origin: the
//! second request must be the edge's `HIT` with the origin asked once; an
//! expired copy must be `REVALIDATED` by your 304; and with your origin
//! stopped and the copy expired the edge must answer `STALE` because *your
//! header* allowed it (the edge's own `proxy_cache_use_stale` is off in
//! those tests). It needs nginx:
//! `.ci/install-nginx` as root on Debian, `brew install nginx` on macOS.
//!
//! ## What is yours and what is given, and why
//!
//! The lesson has the whole answer in `lesson_06_http_edge::policy`:
//! `Lifetimes::cache_control` writes the header, `etag_of` hashes the body.
//! The exercise gives you `etag_of`, because a hash function is not what
//! this lesson teaches: that the tag is computed from the exact bytes sent,
//! so it changes when and only when they do, is; and that is yours to get
//! right (which bytes, and when). The `Cache-Control` value you write from
//! the `Lifetimes`' fields, not with `Lifetimes::cache_control`: each
//! directive is one of the chapter's ideas (`public` vs `private`, `max-age`
//! vs `s-maxage`, the two stale windows), and the tests name the one you
//! missed. The `If-None-Match` comparison is the typed header's
//! (`precondition_passes`), as in the lesson: which way round it answers is
//! the part to think about.
//!
//! # Layout
//!
//! - this file: the state, the router and the handler that calls yours;
//! - `starter.rs`: your `cacheable`; `solution.rs`: the reference;
//! - `wrong/`: plausible mistakes the tests catch (spoilers).

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_extra::headers::{HeaderMapExt, IfNoneMatch};
use lab::http::{ApiError, db_call, user_id_from_path};
use lab::users::fetch_user;
pub use lesson_06_http_edge::policy::Lifetimes;
use lesson_06_http_edge::policy::{NO_STORE, NOT_FOUND};
use sqlx::PgPool;

// Every implementation below is compiled in every build, so your editor
// checks starter.rs as you type. A feature only picks the one the tests
// run: `starter` (what `just exercise-6` turns on) is yours; none is the
// reference in solution.rs; `wrong-*` are plausible mistakes that CI proves
// the tests catch. With several on (clippy's `--all-features`), the first
// in this list wins.
pub mod solution;
pub mod starter;
#[doc(hidden)]
pub mod wrong;

cfg_if::cfg_if! {
    if #[cfg(feature = "starter")] {
        pub use starter::cacheable;
    } else if #[cfg(feature = "wrong-private")] {
        pub use wrong::private::cacheable;
    } else if #[cfg(feature = "wrong-version-etag")] {
        pub use wrong::version_etag::cacheable;
    } else if #[cfg(feature = "wrong-inverted-if-none-match")] {
        pub use wrong::inverted_if_none_match::cacheable;
    } else if #[cfg(feature = "wrong-no-stale-if-error")] {
        pub use wrong::no_stale_if_error::cacheable;
    } else {
        pub use solution::cacheable;
    }
}

/// What the handler needs.
#[derive(Clone, Debug)]
pub struct AppState {
    pub pool: PgPool,
    /// What `cacheable` puts in `Cache-Control`. The default is the
    /// chapter's; the edge tests shorten it so a copy expires in a second.
    pub lifetimes: Lifetimes,
    /// The longest a query may take before the answer is a 503.
    pub db_timeout: Duration,
}

impl AppState {
    /// The chapter's lifetimes and a 5 s database timeout.
    pub fn new(pool: PgPool) -> AppState {
        AppState {
            pool,
            lifetimes: Lifetimes::default(),
            db_timeout: Duration::from_secs(5),
        }
    }
}

/// The exercise's origin: `GET /users/{id}`, answered by your `cacheable`.
pub fn router(state: AppState) -> Router {
    lab::http::finish(
        Router::new()
            .route("/users/{id}", get(get_user))
            .with_state(state),
    )
}

// ANCHOR: get_user
/// `GET /users/{id}`: the user as JSON, with the caching headers your
/// `cacheable` writes. Errors are never cached.
#[tracing::instrument(skip_all)]
async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    match user_body(&state, path, &headers).await {
        Ok(resp) => resp,
        Err(e) => {
            let mut resp = e.into_response();
            // A 400 is the client's own mistake, and a 503 must not outlive
            // the outage: no cache may keep either.
            resp.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
            resp
        }
    }
}

async fn user_body(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let id = user_id_from_path(path)?;
    // `None` when the request has no If-None-Match. (axum-extra's
    // `Option<TypedHeader<IfNoneMatch>>` is `Some` of an empty list then,
    // which would make "no header" and "a header" look alike.) A value that
    // names no valid tag is ignored, as the lesson's origin does: it matches
    // nothing, so the answer is the full 200 (RFC 9110 lets a server ignore
    // a conditional header it cannot use). The `headers` crate never fails
    // to decode one, so `.ok().flatten()` is only the honest type.
    let if_none_match = headers.typed_try_get::<IfNoneMatch>().ok().flatten();
    let user = db_call(
        state.db_timeout,
        fetch_user(&state.pool, id, Duration::ZERO),
    )
    .await?;
    let Some(user) = user else {
        // As the lesson's origin: an unknown id is cached briefly, so a
        // scraper walking ids cannot make every miss an origin request.
        let mut resp = ApiError::NotFound(format!("user {id} not found")).into_response();
        resp.headers_mut().insert(header::CACHE_CONTROL, NOT_FOUND);
        return Ok(resp);
    };
    // The exact bytes that will be sent: the ETag must name these.
    let body = serde_json::to_vec(&user).context("Failed to serialise a user")?;
    Ok(cacheable(body, &state.lifetimes, if_none_match.as_ref()))
}
// ANCHOR_END: get_user
