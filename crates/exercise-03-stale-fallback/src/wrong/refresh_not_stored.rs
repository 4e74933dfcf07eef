//! Wrong: the entry is stored only on a cold miss. Once a copy is older
//! than the soft TTL it is never replaced, so every later read goes to the
//! database (and, in an outage, serves a copy older than it needs to be).

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
    let stale = match old {
        Some(e) if e.freshness(SystemTime::now(), s.soft_ttl) == Freshness::Fresh => {
            return respond(id, e, "HIT");
        }
        other => other,
    };
    let Ok(Ok(user)) =
        tokio::time::timeout(s.db_timeout, fetch_user(&state.pool, id, s.latency)).await
    else {
        return stale_or_unavailable(id, stale);
    };
    let entry = Entry::new(user, SystemTime::now());
    // Only a cold miss stores: "the copy is already in Redis".
    if stale.is_none() && entry.value.is_some() {
        store(&state, &key, &entry).await;
    }
    respond(id, entry, "MISS")
}
