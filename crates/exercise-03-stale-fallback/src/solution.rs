//! Exercise 3's reference answer: lesson 3's `fallback` mode in one
//! function, without the circuit breaker the exercise does not require.

use std::time::{Duration, SystemTime};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use lab::http::user_id_from_path;
use lab::users::{User, fetch_user};
use lesson_03_stale_fallback::entry::{Entry, Freshness};
use lesson_03_stale_fallback::{ServeError, respond};
use redis::AsyncCommands;

use crate::AppState;

/// `GET /users/{id}`: fresh from the cache, else the database, else a stale
/// copy, else 503.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ServeError> {
    let id = user_id_from_path(path)?;
    let s = &state.settings;
    let key = s.key(id);
    let mut redis = state.redis.clone();

    // 1. The copy, if Redis answers in time. Down, paused, or a value that
    //    does not parse: no copy, and the database decides.
    let cached: Option<Entry<User>> =
        match tokio::time::timeout(s.redis_timeout, redis.get::<_, Option<String>>(&key)).await {
            Ok(Ok(json)) => json.and_then(|j| serde_json::from_str(&j).ok()),
            Ok(Err(e)) => {
                tracing::warn!("Redis GET failed, going to the database: {e}");
                None
            }
            Err(_) => {
                tracing::warn!("Redis GET timed out, going to the database");
                None
            }
        };

    // 2. Younger than the soft TTL: no need to ask the database.
    if let Some(entry) = cached.clone()
        && entry.freshness(SystemTime::now(), s.soft_ttl) == Freshness::Fresh
    {
        return respond(id, entry, "HIT");
    }

    // 3. The database, under a timeout short enough that a stale answer is
    //    still a quick one.
    let loaded =
        match tokio::time::timeout(s.db_timeout, fetch_user(&state.pool, id, s.latency)).await {
            Ok(Ok(user)) => Some(user),
            Ok(Err(e)) => {
                tracing::warn!("the database failed for user {id}: {e:#}");
                None
            }
            Err(_) => {
                tracing::warn!("the database did not answer within {:?}", s.db_timeout);
                None
            }
        };

    match (loaded, cached) {
        // 4. It answered. A user is stored with a new timestamp, for the hard
        //    TTL, also after a stale copy (else every read would come back to
        //    the database); "no such user" is not stored, and `respond` turns
        //    it into a 404.
        (Some(user), _) => {
            let entry = Entry::new(user, SystemTime::now());
            if entry.value.is_some()
                && let Ok(json) = serde_json::to_string(&entry)
            {
                let set = redis.set_ex::<_, _, ()>(&key, json, s.hard_ttl.as_secs().max(1));
                if !matches!(tokio::time::timeout(s.redis_timeout, set).await, Ok(Ok(()))) {
                    tracing::warn!("could not store user {id}; the next read will miss");
                }
            }
            respond(id, entry, "MISS")
        }
        // 5. It failed: the old copy beats an error page.
        (None, Some(stale)) => respond(id, stale, "STALE"),
        // 6. Nothing to serve. The message reaches the client, so it says
        //    what happened, not the database's error text (logged above).
        (None, None) => Err(ServeError::Unavailable {
            message: format!("user {id} is not cached and the database is unavailable"),
            retry_after: Duration::from_secs(1),
        }),
    }
}
