//! Wrong: a user that does not exist becomes an error, so the client gets
//! a 500 ("our fault") where 404 ("no such user") is the answer.

use anyhow::anyhow;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use lab::http::{ApiError, user_id_from_path};
use lab::users::{User, fetch_user};

use crate::AppState;

pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<User>, ApiError> {
    let id = user_id_from_path(path)?;
    let user = fetch_user(&state.pool, id, state.latency)
        .await?
        .ok_or_else(|| anyhow!("user {id} not found"))?;
    Ok(Json(user))
}
