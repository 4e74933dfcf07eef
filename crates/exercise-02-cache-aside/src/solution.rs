//! Exercise 2's reference answer: cache-aside in one function. Lesson 2's
//! own handler is the same idea, factored for a second route.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use lab::http::{ApiError, db_call, user_id_from_path};
use lab::users::fetch_user;
use lesson_02_cache_aside::json_response;
use redis::AsyncCommands;

use crate::AppState;

/// `GET /users/{id}`: Redis first; on a miss, the database, then Redis.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = user_id_from_path(path)?;
    // The prefixed key: on a shared Redis, `user:42` would be everybody's.
    let key = state.settings.key(id);
    let limit = state.settings.redis_timeout;
    let mut redis = state.redis.clone();

    // 1. Redis first, under a timeout: a Redis that is down, slow or paused
    //    is a miss, never an error and never a wait longer than `limit`.
    let cached = tokio::time::timeout(limit, redis.get::<_, Option<String>>(&key)).await;
    match cached {
        Ok(Ok(Some(json))) => return Ok(json_response(json, "HIT")),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::warn!("Redis GET failed, reading the database: {e}"),
        Err(_) => tracing::warn!("Redis GET took over {limit:?}, reading the database"),
    }

    // 2. The database. No such user is a 404, and is not cached: caching it
    //    would hide a user created a moment later for a whole TTL.
    let found = db_call(
        state.settings.db_timeout,
        fetch_user(&state.pool, id, state.settings.latency),
    )
    .await?;
    let user = found.ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;
    let json = serde_json::to_string(&user).map_err(|e| ApiError::Internal(e.into()))?;

    // 3. Store it for the TTL, under the same timeout. A failure costs the
    //    next request a miss, so it is logged, and the user still answered.
    let ttl = state.settings.ttl.as_secs().max(1);
    match tokio::time::timeout(limit, redis.set_ex::<_, _, ()>(&key, &json, ttl)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("Redis SET failed; the next read will miss: {e}"),
        Err(_) => tracing::warn!("Redis SET took over {limit:?}; the next read will miss"),
    }
    Ok(json_response(json, "MISS"))
}
