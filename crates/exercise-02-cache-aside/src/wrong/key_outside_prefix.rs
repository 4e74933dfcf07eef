//! Wrong: the key is built by hand, `user:{id}`, without the service's
//! prefix. On a shared Redis that key is everybody's: another attendee's
//! first read of user 42 finds this copy, and theirs overwrites it.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use lab::http::{ApiError, user_id_from_path};
use lab::users::fetch_user;
use lesson_02_cache_aside::json_response;
use redis::AsyncCommands;

use crate::AppState;

pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = user_id_from_path(path)?;
    let key = format!("user:{id}");
    let limit = state.settings.redis_timeout;
    let mut redis = state.redis.clone();
    match tokio::time::timeout(limit, redis.get::<_, Option<String>>(&key)).await {
        Ok(Ok(Some(json))) => return Ok(json_response(json, "HIT")),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::warn!("Redis GET failed: {e}"),
        Err(_) => tracing::warn!("Redis GET timed out"),
    }
    let user = fetch_user(&state.pool, id, state.settings.latency)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;
    let json = serde_json::to_string(&user).map_err(|e| ApiError::Internal(e.into()))?;
    let set = redis.set_ex::<_, _, ()>(&key, &json, state.settings.ttl.as_secs());
    if !matches!(tokio::time::timeout(limit, set).await, Ok(Ok(()))) {
        tracing::warn!("Redis SET failed or timed out");
    }
    Ok(json_response(json, "MISS"))
}
