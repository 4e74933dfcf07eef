//! Exercise 1's reference answer. Diff it against your starter.rs once your
//! tests pass (or when you give up: `just hint-1 4` is nearly this).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use lab::http::{ApiError, db_call, user_id_from_path};
use lab::users::{User, fetch_user};

use crate::AppState;

/// `GET /users/{id}`: the user as JSON, straight from the database.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<User>, ApiError> {
    // A malformed id is the client's mistake (400), found before it costs a
    // database round trip.
    let id = user_id_from_path(path)?;
    // `db_call` bounds the query with the timeout (503 when it runs out) and
    // turns a database error into a 500 whose cause is logged, not sent.
    let found = db_call(state.db_timeout, fetch_user(&state.pool, id, state.latency)).await?;
    match found {
        Some(user) => Ok(Json(user)),
        // "No such user" is an answer, not a failure: 404.
        None => Err(ApiError::NotFound(format!("user {id} not found"))),
    }
}
