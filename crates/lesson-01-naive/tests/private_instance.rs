//! The spawn path serves lesson 1 on its own: with `LAB_BACKEND=local` the
//! harness ignores every shared server and starts a private PostgreSQL from
//! the local binaries, as it does on a machine with no server running.

use std::time::Duration;

use axum::http::StatusCode;
use lab::discover::Probe;
use lab::{Backend, Kind, Origin};
use lesson_01_naive::{AppState, router};

#[tokio::test]
async fn lesson_1_serves_from_a_private_postgres() {
    if !lab::spawn::can_spawn_local(
        lab::Kind::Postgres,
        "lesson_1_serves_from_a_private_postgres",
    ) {
        return;
    }
    lab::init_tracing();
    let probe = Probe {
        backend: Backend::Local,
        ..Probe::from_env(Kind::Postgres).expect("probe")
    };
    let server = lab::discover_with(Kind::Postgres, &probe)
        .await
        .expect("a private PostgreSQL");
    assert_eq!(server.origin(), &Origin::Private);

    let pool = lab::isolate::schema_pool(server.url(), "public", 2)
        .await
        .expect("a pool");
    lab::seed::ensure_users_pg(&pool, 100)
        .await
        .expect("seeded users");
    let state = AppState {
        pool,
        latency: Duration::ZERO,
        db_timeout: Duration::from_secs(30),
    };

    let (status, body) = lab::testing::get_json(router(state), "/users/42").await;
    assert_eq!(status, StatusCode::OK);
    let user: lab::users::User = serde_json::from_value(body).expect("a user");
    assert_eq!(user.email, lab::seed::email_for(42));
}
