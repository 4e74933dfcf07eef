//! Exercise 1's checks. Each failure message says what was expected.

use std::time::Duration;

use axum::http::StatusCode;
use exercise_01_naive::{AppState, router};
use lab::isolate::PgSchema;

async fn setup() -> (lab::Server, PgSchema, AppState) {
    let server = lab::discover(lab::Kind::Postgres)
        .await
        .expect("the tests need a PostgreSQL server; `just doctor` shows what was found");
    let schema = PgSchema::create(server.url())
        .await
        .expect("the tests could not create their own schema on PostgreSQL (not your code)");
    lab::seed::ensure_users_pg(schema.pool(), 200)
        .await
        .expect("the tests could not seed their users (not your code)");
    let state = AppState {
        pool: schema.pool().clone(),
        latency: Duration::ZERO,
        db_timeout: Duration::from_secs(30),
    };
    (server, schema, state)
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, String) {
    lab::testing::send(router(state.clone()), "GET", uri).await
}

#[tokio::test]
async fn returns_a_known_user_as_json() {
    let (_s, _schema, state) = setup().await;
    let (status, body) = get(&state, "/users/42").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "GET /users/42 should answer 200 with user 42; it answered {status}: {body}"
    );
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let want =
        serde_json::json!({ "id": 42, "name": "User 42", "email": lab::seed::email_for(42) });
    assert_eq!(
        json, want,
        "GET /users/42 should return the user's id, name and email as JSON"
    );
}

#[tokio::test]
async fn answers_404_for_a_user_that_does_not_exist() {
    let (_s, _schema, state) = setup().await;
    let (status, body) = get(&state, "/users/999999").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "there is no user 999999: answer 404 with ApiError::NotFound, not {status} ({body})"
    );
    let error = serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("999999"),
        "the 404 body should be JSON like {{\"error\": \"user 999999 not found\"}}, naming the user; got {body}"
    );
}

#[tokio::test]
async fn answers_400_for_ids_that_are_not_positive_integers() {
    let (_s, _schema, state) = setup().await;
    for bad in ["abc", "-1", "1.5", "99999999999999999999"] {
        let (status, body) = get(&state, &format!("/users/{bad}")).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "GET /users/{bad} should answer 400 (a malformed id is the client's mistake), not {status} ({body})"
        );
        assert!(
            body.contains("\"error\""),
            "the 400 body should be JSON like {{\"error\": \"...\"}}, got {body}"
        );
    }
}
