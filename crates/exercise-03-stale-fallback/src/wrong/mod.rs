//! Spoilers: plausible wrong answers to this exercise, each complete, each
//! caught by the tests. CI runs the tests against every one (`--features
//! wrong-<name>`) and fails if one passes. Read them after you are done.
//!
//! What they all get right is shared below, so each file shows only its
//! own mistake in full.

use std::time::Duration;

use axum::response::Response;
use lab::users::User;
use lesson_03_stale_fallback::entry::Entry;
use lesson_03_stale_fallback::{ServeError, respond};
use redis::AsyncCommands;

use crate::AppState;

pub mod caches_404;
pub mod no_redis_timeout;
pub mod redis_error_is_500;
pub mod refresh_not_stored;

/// The copy under `key`, read under the Redis timeout; anything else is
/// no copy.
async fn cached(state: &AppState, key: &str) -> Option<Entry<User>> {
    let mut redis = state.redis.clone();
    let got = tokio::time::timeout(
        state.settings.redis_timeout,
        redis.get::<_, Option<String>>(key),
    )
    .await;
    match got {
        Ok(Ok(Some(json))) => serde_json::from_str(&json).ok(),
        _ => None,
    }
}

/// The database failed: the old copy if there is one, else 503.
fn stale_or_unavailable(id: i64, old: Option<Entry<User>>) -> Result<Response, ServeError> {
    match old {
        Some(e) => respond(id, e, "STALE"),
        None => Err(ServeError::Unavailable {
            message: format!("user {id} is unavailable"),
            retry_after: Duration::from_secs(1),
        }),
    }
}

/// Stores `entry` for the hard TTL, under the Redis timeout; a failure
/// only costs the next read a miss.
async fn store(state: &AppState, key: &str, entry: &Entry<User>) {
    let s = &state.settings;
    let json = serde_json::to_string(entry).unwrap_or_default();
    let mut redis = state.redis.clone();
    let set = redis.set_ex::<_, _, ()>(key, json, s.hard_ttl.as_secs());
    let _ = tokio::time::timeout(s.redis_timeout, set).await;
}
