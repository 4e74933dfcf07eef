//! Wrong: a Redis error is passed up with `?`, so when Redis is down every
//! request is a 500, although the database could have answered it.

use std::time::{Duration, SystemTime};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use lab::http::{ApiError, user_id_from_path};
use lab::users::{User, fetch_user};
use lesson_03_stale_fallback::entry::{Entry, Freshness};
use lesson_03_stale_fallback::{ServeError, respond};
use redis::AsyncCommands;

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
    if let Some(e) = &old
        && e.freshness(SystemTime::now(), s.soft_ttl) == Freshness::Fresh
    {
        return respond(id, e.clone(), "HIT");
    }
    match tokio::time::timeout(s.db_timeout, fetch_user(&state.pool, id, s.latency)).await {
        Ok(Ok(user)) => {
            let entry = Entry::new(user, SystemTime::now());
            if entry.value.is_some() {
                let json = serde_json::to_string(&entry).unwrap_or_default();
                let set = redis.set_ex::<_, _, ()>(&key, json, s.hard_ttl.as_secs());
                let _ = tokio::time::timeout(s.redis_timeout, set).await;
            }
            respond(id, entry, "MISS")
        }
        _ => match old {
            Some(e) => respond(id, e, "STALE"),
            None => Err(ServeError::Unavailable {
                message: format!("user {id} is unavailable"),
                retry_after: Duration::from_secs(1),
            }),
        },
    }
}
