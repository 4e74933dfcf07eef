//! Wrong: the Redis calls have no timeout. A Redis that refuses connections
//! is handled (its error is a miss), but one that accepts and never answers
//! (paused, swapping, a network black hole) holds every request forever.

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
    let key = state.settings.key(id);
    let mut redis = state.redis.clone();
    if let Ok(Some(json)) = redis.get::<_, Option<String>>(&key).await {
        return Ok(json_response(json, "HIT"));
    }
    let Some(user) = fetch_user(&state.pool, id, state.settings.latency).await? else {
        return Err(ApiError::NotFound(format!("user {id} not found")));
    };
    let json = serde_json::to_string(&user).map_err(|e| ApiError::Internal(e.into()))?;
    if let Err(e) = redis
        .set_ex::<_, _, ()>(&key, &json, state.settings.ttl.as_secs())
        .await
    {
        tracing::warn!("Redis SET failed: {e}");
    }
    Ok(json_response(json, "MISS"))
}
