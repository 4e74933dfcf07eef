//! Your code goes here. `just exercise-1` runs the tests against it;
//! `just hint-1 1` prints the first hint (HINTS.md has four).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use lab::http::ApiError;
use lab::users::User;

use crate::AppState;

/// `GET /users/{id}`: the user as JSON, straight from the database.
pub async fn get_user(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<User>, ApiError> {
    // TODO 1: turn `path` into an id (an `i64`): `lab::http::user_id_from_path(path)?`
    //         does it, and answers 400 for anything that is not a positive integer.
    // TODO 2: read the user with
    //         `lab::users::fetch_user(&state.pool, id, state.latency).await`.
    //         It returns `anyhow::Result<Option<User>>`: `Ok(None)` when there
    //         is no such user. A database error is our fault (a 500):
    //         `ApiError::Internal`, which `?` converts an `anyhow::Error` into.
    // TODO 3: no user? Answer 404: `Err(ApiError::NotFound(format!("user {id} not found")))`.
    //         The text is the JSON body's `error`, so say which user.
    //         Found? `Ok(Json(user))`.
    // Stretch: bound the query with `tokio::time::timeout(state.db_timeout, ...)`
    //          and answer `ApiError::Unavailable(String)` (503) when it runs out;
    //          `lab::http::db_call` is that, ready-made.
    let _ = (state, path);
    todo!("exercise 1: implement get_user in crates/exercise-01-naive/src/starter.rs")
}
