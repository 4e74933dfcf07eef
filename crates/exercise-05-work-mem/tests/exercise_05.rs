//! Exercise 5's checks, on a private PostgreSQL: plans and settings, never
//! timings.

use exercise_05_work_mem::{REPORT, explain_report, sort_method};
use lab::Kind;
use lab::spawn::{Instance, SpawnOptions, can_spawn};
use sqlx::postgres::PgPoolOptions;

const ROWS: i64 = 200_000;

/// A private server, because a wrong answer might `ALTER SYSTEM`. Parallel
/// sorts are off so the plan has one Sort node; the pool has one
/// connection, so the tests see the same session the report ran in.
async fn seeded(test: &str) -> Option<(Instance, sqlx::PgPool)> {
    if !can_spawn(Kind::Postgres, test) {
        return None;
    }
    let pg = Instance::start_new(
        Kind::Postgres,
        SpawnOptions::with_settings([("max_parallel_workers_per_gather", "0")]),
    )
    .await
    .expect("a private PostgreSQL");
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&pg.url())
        .await
        .expect("pool");
    lesson_05_buffer_tuning::experiments::work_mem::prepare(&pool, ROWS)
        .await
        .expect("seed");
    Some((pg, pool))
}

async fn show_work_mem(pool: &sqlx::PgPool) -> String {
    sqlx::query_scalar("SHOW work_mem")
        .fetch_one(pool)
        .await
        .expect("SHOW work_mem")
}

#[tokio::test]
async fn the_report_sorts_in_memory() {
    let Some((_pg, pool)) = seeded("exercise 5: sort").await else {
        return;
    };
    let before: serde_json::Value =
        sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {REPORT}"))
            .fetch_one(&pool)
            .await
            .expect("plan");
    assert_eq!(
        sort_method(&before),
        Some(("external merge".into(), "Disk".into())),
        "at the default work_mem the report spills (the exercise's premise)"
    );
    let plan = explain_report(&pool).await.expect("your explain_report");
    assert_eq!(
        sort_method(&plan),
        Some(("quicksort".into(), "Memory".into())),
        "the report's Sort node must say `quicksort` in `Memory`; your plan: {plan:#}"
    );
}

#[tokio::test]
async fn nothing_else_gets_more_work_mem() {
    let Some((pg, pool)) = seeded("exercise 5: scope").await else {
        return;
    };
    explain_report(&pool).await.expect("your explain_report");
    assert_eq!(
        show_work_mem(&pool).await,
        "4MB",
        "the connection goes back to the pool with work_mem changed: use a setting that ends with the transaction"
    );
    // A new connection sees the server's, database's and role's settings.
    let fresh = sqlx::PgPool::connect(&pg.url()).await.expect("pool");
    assert_eq!(
        show_work_mem(&fresh).await,
        "4MB",
        "work_mem changed for every new connection (ALTER SYSTEM, DATABASE or ROLE): change it for the report only"
    );
    let overrides: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_db_role_setting")
        .fetch_one(&fresh)
        .await
        .expect("pg_db_role_setting");
    assert_eq!(overrides, 0, "no per-database or per-role settings");
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_file_settings WHERE name = 'work_mem' AND sourcefile LIKE '%postgresql.auto.conf'",
    )
    .fetch_one(&fresh)
    .await
    .expect("pg_file_settings");
    assert_eq!(pending, 0, "no ALTER SYSTEM SET work_mem");
}
