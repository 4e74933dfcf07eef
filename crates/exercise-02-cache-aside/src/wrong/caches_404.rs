//! Wrong: "no such user" is cached too (as `null`), so a user created a
//! moment after someone asked for it stays a 404 for the whole TTL.

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
    let limit = state.settings.redis_timeout;
    let mut redis = state.redis.clone();
    let not_found = || ApiError::NotFound(format!("user {id} not found"));
    if let Ok(Ok(Some(json))) =
        tokio::time::timeout(limit, redis.get::<_, Option<String>>(&key)).await
    {
        return if json == "null" {
            Err(not_found())
        } else {
            Ok(json_response(json, "HIT"))
        };
    }
    let user = fetch_user(&state.pool, id, state.settings.latency).await?;
    // Caches the Option: `null` for a missing user.
    let json = serde_json::to_string(&user).map_err(|e| ApiError::Internal(e.into()))?;
    let ttl = state.settings.ttl.as_secs();
    let _ = tokio::time::timeout(limit, redis.set_ex::<_, _, ()>(&key, &json, ttl)).await;
    match user {
        Some(_) => Ok(json_response(json, "MISS")),
        None => Err(not_found()),
    }
}
