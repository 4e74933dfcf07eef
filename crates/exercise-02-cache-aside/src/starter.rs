//! Your code goes here. `just exercise-2` runs the tests against it;
//! `just hint-2 1` prints the first hint (HINTS.md has four).

// These are the imports your code will need. Until it uses them the
// compiler would warn about each; delete this line when you are done.
#![allow(unused_imports)]

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use lab::http::{ApiError, user_id_from_path};
use lab::users::fetch_user;
use lesson_02_cache_aside::json_response;
// The trait that gives a Redis connection its `.get(..)` and `.set_ex(..)`.
use redis::AsyncCommands;

use crate::AppState;

/// `GET /users/{id}`: Redis first; on a miss, the database, then Redis.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = user_id_from_path(path)?;
    // "user:{id}" under this service's key prefix. Use this key, and only
    // this one: on a shared Redis, a bare `user:42` is everybody's user 42.
    let key = state.settings.key(id);

    // TODO 1: read `key` from Redis: `let mut redis = state.redis.clone();`
    //         (a cheap handle), then `redis.get::<_, Option<String>>(&key)`.
    //         Wrap it in `tokio::time::timeout(state.settings.redis_timeout, ...)`:
    //         a Redis that is down, slow or paused must count as a miss, not
    //         an error, and must not hold the request longer than the timeout.
    //         That gives `Result<Result<Option<String>, RedisError>, Elapsed>`.
    // TODO 2: a hit (`Ok(Ok(Some(json)))`)? Return `Ok(json_response(json, "HIT"))`.
    // TODO 3: a miss: `fetch_user(&state.pool, id, state.settings.latency).await?`
    //         gives `Option<User>` (`?` turns a database error into a 500).
    //         `None` is `Err(ApiError::NotFound(format!("user {id} not found")))`,
    //         and is not cached: a user created a second later must be found.
    // TODO 4: `serde_json::to_string(&user)` and store it under `key`, also under
    //         the timeout: `redis.set_ex::<_, _, ()>(&key, &json, state.settings.ttl.as_secs())`
    //         (`()`: SET's reply is just "OK"). If that fails, log it with
    //         `tracing::warn!` and answer anyway.
    // TODO 5: return `Ok(json_response(json, "MISS"))`.
    let _ = (state, key);
    todo!("exercise 2: implement get_user in crates/exercise-02-cache-aside/src/starter.rs")
}
