//! Your code goes here. `just exercise-1` runs the tests against it.

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
    // TODO 1: turn `path` into an id. `lab::http::user_id_from_path` does it,
    //         and answers 400 for anything that is not a positive integer.
    // TODO 2: read the user with `lab::users::fetch_user(&state.pool, id, state.latency)`.
    //         It returns `Ok(None)` when there is no such user.
    // TODO 3: no user? Answer 404 with `ApiError::NotFound(...)`.
    // Stretch: bound the query with `tokio::time::timeout(state.db_timeout, ...)`
    //          and answer `ApiError::Unavailable` when it runs out.
    let _ = (state, path);
    todo!("exercise 1: implement get_user in crates/exercise-01-naive/src/starter.rs")
}
