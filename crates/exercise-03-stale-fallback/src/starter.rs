//! Your code goes here. `just exercise-3` runs the tests against it;
//! `just hint-3 1` prints the first hint (HINTS.md has four).

// These are the imports your code will need. Until it uses them the
// compiler would warn about each; delete this line when you are done.
#![allow(unused_imports)]

use std::time::{Duration, SystemTime};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use lab::http::user_id_from_path;
// The row type, `User { id, name, email }`, and its query.
use lab::users::{User, fetch_user};
// `Entry<User>`: the user and when it was fetched; `Freshness::{Fresh, Stale}`.
use lesson_03_stale_fallback::entry::{Entry, Freshness};
use lesson_03_stale_fallback::{ServeError, respond};
// The trait that gives a Redis connection its `.get(..)` and `.set_ex(..)`.
use redis::AsyncCommands;

use crate::AppState;

/// `GET /users/{id}`: fresh from the cache, else the database, else a stale
/// copy, else 503.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ServeError> {
    let id = user_id_from_path(path)?;
    // "entry:user:{id}" under this service's key prefix. Use this key, and
    // only this one: on a shared Redis, a bare key is everybody's.
    let key = state.settings.key(id);

    // TODO 1: read `key` from Redis as in exercise 2: `let mut redis = state.redis.clone();`,
    //         `redis.get::<_, Option<String>>(&key)` under
    //         `tokio::time::timeout(state.settings.redis_timeout, ...)`, and parse the
    //         JSON with `serde_json::from_str::<Entry<User>>(&json)`. A Redis error, a
    //         timeout or a value that does not parse is "no copy" (an
    //         `Option<Entry<User>>` that is `None`), never an error of the request.
    // TODO 2: a copy whose `entry.freshness(SystemTime::now(), state.settings.soft_ttl)`
    //         is `Freshness::Fresh` is a hit: `return respond(id, entry, "HIT");`
    //         (`respond` already returns `Result<Response, ServeError>`, and adds `Age`).
    // TODO 3: otherwise load the user: `fetch_user(&state.pool, id, state.settings.latency)`
    //         under `tokio::time::timeout(state.settings.db_timeout, ...)`. It gives
    //         `Result<anyhow::Result<Option<User>>, Elapsed>`.
    // TODO 4: it answered (`Ok(Ok(user))`): `let entry = Entry::new(user, SystemTime::now());`.
    //         If it holds a user (`entry.value.is_some()`), store it as JSON, under
    //         the Redis timeout, with
    //         `redis.set_ex::<_, _, ()>(&key, json, state.settings.hard_ttl.as_secs())`,
    //         also when it replaces a stale copy. Then `respond(id, entry, "MISS")`
    //         (a missing user becomes a 404 there; don't store it).
    // TODO 5: it failed or timed out: the old copy, if any, is `respond(id, old, "STALE")`.
    //         Without one: `Err(ServeError::Unavailable { message, retry_after: Duration::from_secs(1) })`.
    //         `message` is sent to the client: say the user is unavailable, not
    //         the database's error text (log that with `tracing::warn!`).
    let _ = (state, key);
    todo!("exercise 3: implement get_user in crates/exercise-03-stale-fallback/src/starter.rs")
}
