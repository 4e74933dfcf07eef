//! Your code goes here. `just exercise-3` runs the tests against it.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use lab::http::user_id_from_path;
use lesson_03_stale_fallback::ServeError;

use crate::AppState;

/// `GET /users/{id}`: fresh from the cache, else the database, else a stale
/// copy, else 503.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ServeError> {
    let id = user_id_from_path(path)?;
    let key = state.settings.key(id); // "entry:user:{id}" (under the tests' prefix)

    // TODO 1: read `key` from Redis as in exercise 2 (`state.redis.clone()`,
    //         `get::<_, Option<String>>`, under `state.settings.redis_timeout`),
    //         and parse it as `Entry<User>` (`lesson_03_stale_fallback::entry`).
    //         A Redis failure or a value that does not parse is "no copy".
    // TODO 2: a copy younger than `state.settings.soft_ttl`
    //         (`entry.freshness(SystemTime::now(), soft_ttl)`) is a hit:
    //         `lesson_03_stale_fallback::respond(id, entry, "HIT")` adds `Age`.
    // TODO 3: otherwise load the user with `lab::users::fetch_user(&state.pool,
    //         id, state.settings.latency)` under
    //         `tokio::time::timeout(state.settings.db_timeout, ...)`.
    // TODO 4: it answered: store `Entry::new(user, SystemTime::now())` as JSON
    //         with `set_ex(key, json, state.settings.hard_ttl.as_secs())`, and
    //         answer `respond(id, entry, "MISS")` (a missing user becomes 404
    //         there; don't store it).
    // TODO 5: it failed or timed out: the old copy, if any, is
    //         `respond(id, old, "STALE")`; without one, return
    //         `ServeError::Unavailable { message, retry_after: Duration::from_secs(1) }`.
    let _ = (state, key);
    todo!("exercise 3: implement get_user in crates/exercise-03-stale-fallback/src/starter.rs")
}
