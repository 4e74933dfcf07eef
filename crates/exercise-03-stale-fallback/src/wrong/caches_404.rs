//! Wrong: "no such user" is stored too (an `Entry` with no value), for the
//! hard TTL, so a user created a moment later stays a 404 for a day.

use std::time::SystemTime;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use lab::http::user_id_from_path;
use lab::users::fetch_user;
use lesson_03_stale_fallback::entry::{Entry, Freshness};
use lesson_03_stale_fallback::{ServeError, respond};

use super::{cached, stale_or_unavailable, store};
use crate::AppState;

pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ServeError> {
    let id = user_id_from_path(path)?;
    let s = &state.settings;
    let key = s.key(id);
    let old = cached(&state, &key).await;
    if let Some(e) = &old
        && e.freshness(SystemTime::now(), s.soft_ttl) == Freshness::Fresh
    {
        return respond(id, e.clone(), "HIT");
    }
    match tokio::time::timeout(s.db_timeout, fetch_user(&state.pool, id, s.latency)).await {
        Ok(Ok(user)) => {
            let entry = Entry::new(user, SystemTime::now());
            // Stored whether or not it holds a user.
            store(&state, &key, &entry).await;
            respond(id, entry, "MISS")
        }
        _ => stale_or_unavailable(id, old),
    }
}
