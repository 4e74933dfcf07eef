//! Lesson 1 through its router, against a real PostgreSQL.
//!
//! Each test gets its own schema on whatever server the harness finds
//! (`lab::discover`), seeded with a few hundred deterministic users.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use lab::isolate::PgSchema;
use lab::seed::{email_for, ensure_users_pg};
use lab::testing::{CountingPostgres, get_json, send};
use lesson_01_naive::{AppState, router};
use tower::ServiceExt;

const USERS: i64 = 500;

async fn setup(latency: Duration) -> (lab::Server, PgSchema, AppState) {
    lab::init_tracing();
    let server = lab::discover(lab::Kind::Postgres)
        .await
        .expect("a PostgreSQL server");
    let schema = PgSchema::create(server.url()).await.expect("a test schema");
    ensure_users_pg(schema.pool(), USERS)
        .await
        .expect("seeded users");
    let state = AppState {
        pool: schema.pool().clone(),
        latency,
        db_timeout: Duration::from_secs(30),
    };
    (server, schema, state)
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, serde_json::Value) {
    get_json(router(state.clone()), uri).await
}

#[tokio::test]
async fn a_known_user_is_returned_as_json() {
    let (_s, _schema, state) = setup(Duration::ZERO).await;
    let (status, body) = get(&state, "/users/123").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({ "id": 123, "name": "User 123", "email": email_for(123) })
    );
}

#[tokio::test]
async fn an_unknown_user_is_a_json_404() {
    let (_s, _schema, state) = setup(Duration::ZERO).await;
    for uri in ["/users/501", "/users/9223372036854775807"] {
        let (status, body) = get(&state, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("not found")),
            "{uri}: {body}"
        );
    }
}

#[tokio::test]
async fn malformed_ids_are_json_errors_and_never_reach_the_database() {
    let (_s, _schema, state) = setup(Duration::ZERO).await;
    let long = "9".repeat(5000);
    let cases: Vec<(String, StatusCode)> = vec![
        ("/users/abc".into(), StatusCode::BAD_REQUEST),
        ("/users/-1".into(), StatusCode::BAD_REQUEST),
        (
            "/users/99999999999999999999".into(),
            StatusCode::BAD_REQUEST,
        ),
        ("/users/1.5".into(), StatusCode::BAD_REQUEST),
        ("/users/0".into(), StatusCode::BAD_REQUEST),
        ("/users/%20".into(), StatusCode::BAD_REQUEST),
        ("/users/%FF".into(), StatusCode::BAD_REQUEST),
        (format!("/users/{long}"), StatusCode::BAD_REQUEST),
        ("/users/".into(), StatusCode::NOT_FOUND),
        ("/users".into(), StatusCode::NOT_FOUND),
        ("/users/1/extra".into(), StatusCode::NOT_FOUND),
    ];
    for (uri, want) in cases {
        let (status, body) = get(&state, &uri).await;
        let shown: String = uri.chars().take(40).collect();
        assert_eq!(status, want, "{shown}: {body}");
        assert!(
            body["error"].is_string(),
            "{shown}: the body must be {{\"error\": ...}}, got {body}"
        );
    }
}

/// "Rejected before it costs a database round trip", by PostgreSQL's own
/// count: a private server with `pg_stat_statements` sees no query on
/// `users` for any malformed id, and exactly one for a good one.
#[tokio::test]
async fn malformed_ids_make_no_database_query() {
    if !lab::spawn::can_spawn(lab::Kind::Postgres, "malformed_ids_make_no_database_query") {
        return;
    }
    lab::init_tracing();
    let pg = CountingPostgres::start(10)
        .await
        .expect("a counting PostgreSQL");
    let state = AppState {
        pool: pg.pool.clone(),
        latency: Duration::ZERO,
        db_timeout: Duration::from_secs(30),
    };
    for uri in [
        "/users/abc",
        "/users/-1",
        "/users/0",
        "/users/%FF",
        "/users/1e3",
    ] {
        let (status, _) = get(&state, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
    }
    let users_queries = "%FROM users%";
    assert_eq!(
        pg.calls(users_queries).await.expect("pg_stat_statements"),
        0,
        "a malformed id reached the database"
    );
    assert_eq!(get(&state, "/users/3").await.0, StatusCode::OK);
    assert_eq!(
        pg.calls(users_queries).await.expect("pg_stat_statements"),
        1,
        "the counter counts: a good id is one query"
    );
}

/// Liveness must not depend on the database: with the pool pointed at a
/// port where nothing listens, `/healthz` is still a 200 (and a malformed id
/// still a 400), while a real read fails, which shows the database really is
/// out of reach.
#[tokio::test]
async fn health_check_answers_without_the_database() {
    lab::init_tracing();
    let closed = lab::spawn::free_port().expect("a free port");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy(&format!("postgres://postgres@127.0.0.1:{closed}/test"))
        .expect("a lazy pool");
    let state = AppState {
        pool,
        latency: Duration::ZERO,
        db_timeout: Duration::from_secs(10),
    };
    let (status, body) = get(&state, "/healthz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(get(&state, "/users/abc").await.0, StatusCode::BAD_REQUEST);
    // A database that cannot be reached is a 503 a client may retry, not a
    // 500 that says the service is broken, and the cause stays in the log.
    let (status, body) = get(&state, "/users/1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "the database is unavailable");
}

#[tokio::test]
async fn the_wrong_method_is_a_json_405() {
    let (_s, _schema, state) = setup(Duration::ZERO).await;
    let (status, body) = send(router(state), "DELETE", "/users/1").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body.contains("\"error\""), "a JSON error body, got {body}");
}

// ANCHOR: latency_test
/// The simulated latency is spent inside PostgreSQL: while a request is in
/// flight, the server itself shows our query running `pg_sleep`. Not a
/// timing assertion: we look for the query, not at the clock.
#[tokio::test]
async fn simulated_latency_holds_a_database_connection() {
    let (server, schema, state) = setup(Duration::from_secs(3)).await;
    let app = router(state);
    let request = tokio::spawn(
        app.oneshot(
            Request::get("/users/7")
                .body(Body::empty())
                .expect("a valid request"),
        ),
    );

    let monitor = sqlx::PgPool::connect(server.url())
        .await
        .expect("a monitoring connection");
    let mut seen = false;
    for _ in 0..100 {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid() AND datname = current_database()",
        )
        .fetch_one(&monitor)
        .await
        .expect("pg_stat_activity");
        if n > 0 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resp = request
        .await
        .expect("the request task")
        .expect("the router answers");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        seen,
        "no pg_sleep query was active in PostgreSQL while the request ran (schema {})",
        schema.name()
    );
}
// ANCHOR_END: latency_test

/// A database that does not answer in time is a JSON 503, not a hang.
#[tokio::test]
async fn a_slow_database_is_a_503_not_a_hang() {
    let (_s, _schema, mut state) = setup(Duration::from_secs(2)).await;
    state.db_timeout = Duration::from_millis(200);
    let (status, body) = get(&state, "/users/1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not answer")),
        "{body}"
    );
}

#[tokio::test]
async fn the_summary_aggregates_the_users_orders() {
    let (_s, schema, state) = setup(Duration::ZERO).await;
    lab::seed::ensure_orders_pg(schema.pool(), 2_000, USERS)
        .await
        .expect("orders");
    let (count, total): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(amount_cents), 0)::bigint FROM orders WHERE user_id = 12",
    )
    .fetch_one(schema.pool())
    .await
    .expect("aggregate");
    let (status, body) = get(&state, "/users/12/summary").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({ "user_id": 12, "orders": count, "total_cents": total })
    );
    let (status, _) = get(&state, "/users/99999/summary").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_response_says_how_long_the_server_took() {
    let (_s, _schema, state) = setup(Duration::ZERO).await;
    for uri in ["/users/1", "/users/abc", "/nope"] {
        let r = lab::testing::call(router(state.clone()), "GET", uri, None).await;
        let timing = r.header("server-timing");
        assert!(
            timing.starts_with("app;dur="),
            "{uri}: Server-Timing should be app;dur=<ms>, got {timing:?}"
        );
    }
}
