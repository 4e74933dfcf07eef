//! Wrong: the Redis calls have no timeout. A stopped Redis is handled (its
//! error is "no copy"), but a Redis that accepts and never answers (paused,
//! swapping, a network black hole) holds every request forever, stale copy
//! or not.

use std::time::SystemTime;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use lab::http::user_id_from_path;
use lab::users::{User, fetch_user};
use lesson_03_stale_fallback::entry::{Entry, Freshness};
use lesson_03_stale_fallback::{ServeError, respond};
use redis::AsyncCommands;

use super::stale_or_unavailable;
use crate::AppState;

pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ServeError> {
    let id = user_id_from_path(path)?;
    let s = &state.settings;
    let key = s.key(id);
    let mut redis = state.redis.clone();
    let json: Option<String> = redis.get(&key).await.unwrap_or(None);
    let old = json.and_then(|j| serde_json::from_str::<Entry<User>>(&j).ok());
    if let Some(e) = old.clone()
        && e.freshness(SystemTime::now(), s.soft_ttl) == Freshness::Fresh
    {
        return respond(id, e, "HIT");
    }
    let Ok(Ok(user)) =
        tokio::time::timeout(s.db_timeout, fetch_user(&state.pool, id, s.latency)).await
    else {
        return stale_or_unavailable(id, old);
    };
    let entry = Entry::new(user, SystemTime::now());
    if entry.value.is_some() {
        let json = serde_json::to_string(&entry).unwrap_or_default();
        if let Err(e) = redis
            .set_ex::<_, _, ()>(&key, json, s.hard_ttl.as_secs())
            .await
        {
            tracing::warn!("Redis SET failed: {e}");
        }
    }
    respond(id, entry, "MISS")
}
