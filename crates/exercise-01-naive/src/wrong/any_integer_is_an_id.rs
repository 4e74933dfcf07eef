//! Wrong: the id is parsed with `str::parse::<i64>`, which accepts `-1`
//! (and `+1`), so a malformed id gets a 404 that tells the client its
//! request made sense, where a 400 is the answer.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use lab::http::ApiError;
use lab::users::{User, fetch_user};

use crate::AppState;

pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<User>, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let id: i64 = raw
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("invalid user id {raw:?}")))?;
    match fetch_user(&state.pool, id, state.latency).await? {
        Some(user) => Ok(Json(user)),
        None => Err(ApiError::NotFound(format!("user {id} not found"))),
    }
}
