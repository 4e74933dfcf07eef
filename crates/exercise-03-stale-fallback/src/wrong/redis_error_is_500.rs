//! Wrong: a Redis error is passed up with `?`, so when Redis is down every
//! request is a 500, although the database could have answered it.

use std::time::SystemTime;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use lab::http::{ApiError, user_id_from_path};
use lab::users::{User, fetch_user};
use lesson_03_stale_fallback::entry::{Entry, Freshness};
use lesson_03_stale_fallback::{ServeError, respond};
use redis::AsyncCommands;

use super::{stale_or_unavailable, store};
use crate::AppState;

pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ServeError> {
    let id = user_id_from_path(path)?;
    let s = &state.settings;
    let key = s.key(id);
    let mut redis = state.redis.clone();
    // A timeout is a miss, but a Redis error fails the request.
    let json =
        match tokio::time::timeout(s.redis_timeout, redis.get::<_, Option<String>>(&key)).await {
            Ok(reply) => reply.map_err(|e| ApiError::Internal(e.into()))?,
            Err(_) => None,
        };
    let old = json.and_then(|j| serde_json::from_str::<Entry<User>>(&j).ok());
    if let Some(e) = old.clone()
        && e.freshness(SystemTime::now(), s.soft_ttl) == Freshness::Fresh
    {
        return respond(id, e, "HIT");
    }
    match tokio::time::timeout(s.db_timeout, fetch_user(&state.pool, id, s.latency)).await {
        Ok(Ok(Some(user))) => {
            let entry = Entry::new(Some(user), SystemTime::now());
            store(&state, &key, &entry).await;
            respond(id, entry, "MISS")
        }
        Ok(Ok(None)) => respond(id, Entry::new(None, SystemTime::now()), "MISS"),
        _ => stale_or_unavailable(id, old),
    }
}
