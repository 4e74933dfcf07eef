//! Exercise 5's checks, on a private PostgreSQL: plans and settings, never
//! timings.

use exercise_05_work_mem::{REPORT, explain_report, sort_method};
use lab::Kind;
use lab::spawn::{Instance, SpawnOptions};
use sqlx::postgres::PgPoolOptions;

const ROWS: i64 = 200_000;

/// A private server, because a wrong answer might `ALTER SYSTEM`. Parallel
/// sorts are off so the plan has one Sort node; the pool has one
/// connection, so the tests see the same session the report ran in.
async fn seeded(test: &str) -> (Instance, sqlx::PgPool) {
    lab::spawn::require_spawn(Kind::Postgres, test);
    let pg = Instance::start_new(
        Kind::Postgres,
        SpawnOptions::with_settings([("max_parallel_workers_per_gather", "0")]),
    )
    .await
    .expect("the tests could not start a private PostgreSQL (not your code)");
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&pg.url())
        .await
        .expect("the tests could not connect (not your code)");
    lesson_05_buffer_tuning::experiments::work_mem::prepare(&pool, ROWS)
        .await
        .expect("the tests could not seed `sortable` (not your code)");
    (pg, pool)
}

async fn show_work_mem(pool: &sqlx::PgPool) -> String {
    sqlx::query_scalar("SHOW work_mem")
        .fetch_one(pool)
        .await
        .expect("SHOW work_mem")
}

#[tokio::test]
async fn the_report_sorts_in_memory() {
    let (_pg, pool) = seeded("the_report_sorts_in_memory").await;
    let before: serde_json::Value =
        sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {REPORT}"))
            .fetch_one(&pool)
            .await
            .expect("plan");
    assert_eq!(
        sort_method(&before),
        Some(("external merge".into(), "Disk".into())),
        "at the default work_mem the report should spill (the exercise's premise; not your code)"
    );
    let plan = explain_report(&pool)
        .await
        .unwrap_or_else(|e| panic!("your explain_report failed: {e:#}"));
    assert_eq!(
        sort_method(&plan),
        Some(("quicksort".into(), "Memory".into())),
        "the report's Sort node should say `quicksort` in `Memory`; it says {:?}. Still `external \
         merge`? The setting did not reach the report's connection, or it is too small: in memory \
         the sort needs about twice its `Disk:` figure. Your plan: {plan:#}",
        sort_method(&plan)
    );
}

#[tokio::test]
async fn nothing_else_gets_more_work_mem() {
    let (pg, pool) = seeded("nothing_else_gets_more_work_mem").await;
    explain_report(&pool)
        .await
        .unwrap_or_else(|e| panic!("your explain_report failed: {e:#}"));
    assert_eq!(
        show_work_mem(&pool).await,
        "4MB",
        "after your report, its connection went back to the pool with work_mem changed, for every \
         later query it serves: use the form of SET that ends with the transaction (`SET LOCAL`, \
         inside `pool.begin()`)"
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
    assert_eq!(
        overrides, 0,
        "your report left a per-database or per-role setting (ALTER DATABASE/ROLE … SET): every new \
         connection gets it. Change work_mem for the report's transaction only (`SET LOCAL`)"
    );
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_file_settings WHERE name = 'work_mem' AND sourcefile LIKE '%postgresql.auto.conf'",
    )
    .fetch_one(&fresh)
    .await
    .expect("pg_file_settings");
    assert_eq!(
        pending, 0,
        "your report ran ALTER SYSTEM SET work_mem: the whole server would get it at the next \
         reload. Change it for the report's transaction only (`SET LOCAL`)"
    );
}
