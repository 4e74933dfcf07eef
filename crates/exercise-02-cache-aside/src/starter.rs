//! Your code goes here. `just exercise-2` runs the tests against it.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use lab::http::{ApiError, user_id_from_path};

use crate::AppState;

/// `GET /users/{id}`: Redis first; on a miss, the database, then Redis.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = user_id_from_path(path)?;
    let key = state.settings.key(id); // "user:{id}" (under the tests' prefix)

    // TODO 1: read `key` from Redis: `state.redis.clone()` is a connection,
    //         `redis::AsyncCommands::get::<_, Option<String>>` the command.
    //         Wrap it in `tokio::time::timeout(state.settings.redis_timeout, ...)`:
    //         a Redis that is down or slow must count as a miss, not an error.
    // TODO 2: a hit? Return `lesson_02_cache_aside::json_response(json, "HIT")`.
    // TODO 3: a miss: load the user with
    //         `lab::users::fetch_user(&state.pool, id, state.settings.latency)`;
    //         no such user is `ApiError::NotFound` (and is not cached).
    // TODO 4: store `serde_json::to_string(&user)` under `key` with
    //         `set_ex(key, json, state.settings.ttl.as_secs())`, also under the
    //         timeout; if that fails, log it and answer anyway.
    // TODO 5: return `json_response(json, "MISS")`.
    let _ = (state, key);
    todo!("exercise 2: implement get_user in crates/exercise-02-cache-aside/src/starter.rs")
}
