//! Exercise 4's checks, on a private PostgreSQL: plans and results, never
//! timings.

use exercise_04_indexing::migrate;
use lab::Kind;
use lab::spawn::Instance;
use lesson_04_indexing::plan::Access;
use lesson_04_indexing::search::{self, Query};

const ROWS: i64 = 20_000;

/// A private PostgreSQL with ROWS users; without the binaries the test
/// fails, naming the package to install.
async fn seeded(test: &str) -> (Instance, sqlx::PgPool) {
    lab::spawn::require_spawn(Kind::Postgres, test);
    lesson_04_indexing::private_postgres(ROWS)
        .await
        .expect("the tests could not start a private, seeded PostgreSQL (not your code)")
}

fn searches() -> Vec<(&'static str, Query)> {
    vec![
        (
            "the suffix search",
            search::by_domain_like(lab::seed::RARE_DOMAIN),
        ),
        ("the prefix search", search::by_prefix("user123")),
    ]
}

#[tokio::test]
async fn both_searches_use_an_index_after_the_migration() {
    let (_pg, pool) = seeded("both_searches_use_an_index_after_the_migration").await;
    for (what, q) in searches() {
        let plan = q.explain(&pool, false).await.expect("plan");
        assert_eq!(
            plan.access("users"),
            Some(Access::FullScan),
            "before the migration {what} should scan the whole table (the exercise's premise; not your code)"
        );
    }
    if let Err(e) = migrate(&pool).await {
        panic!(
            "your MIGRATION failed on its first run; PostgreSQL said: {e:#}. If what it creates may \
             already exist (an extension often does), use IF NOT EXISTS"
        );
    }
    for (what, q) in searches() {
        let plan = q.explain(&pool, false).await.expect("plan");
        let access = plan.access("users");
        assert!(
            matches!(
                access,
                Some(Access::Index | Access::IndexOnly | Access::Bitmap)
            ),
            "after the migration {what} ({} with {:?}) should use an index, and it still scans the \
             table; the plan is {}. Which kind of index serves LIKE with the wildcard first, in any \
             collation? (`just hint-4 2`)",
            q.sql,
            q.param,
            plan.shape()
        );
    }
}

#[tokio::test]
async fn the_results_do_not_change_and_the_migration_can_run_twice() {
    let (_pg, pool) = seeded("the_results_do_not_change_and_the_migration_can_run_twice").await;
    let terms = [
        search::by_domain_like(lab::seed::RARE_DOMAIN),
        search::by_domain_like("rare_domain.org"),
        search::by_domain_like("50%_off.test"),
        search::by_domain_like("nothing.invalid"),
        search::by_prefix("user123"),
        search::by_prefix("o'brien"),
        search::by_prefix("100%_"),
    ];
    let mut before = Vec::new();
    for q in &terms {
        before.push(q.fetch(&pool).await.expect("query"));
    }
    if let Err(e) = migrate(&pool).await {
        panic!(
            "your MIGRATION failed on its first run; PostgreSQL said: {e:#}. If what it creates may \
             already exist (an extension often does), use IF NOT EXISTS"
        );
    }
    if let Err(e) = migrate(&pool).await {
        panic!(
            "your MIGRATION ran once, and failed the second time: a migration must be safe to \
             re-run (a retried deploy). Use `CREATE EXTENSION IF NOT EXISTS` and \
             `CREATE INDEX IF NOT EXISTS`. PostgreSQL said: {e:#}"
        );
    }
    for (q, expected) in terms.iter().zip(&before) {
        let after = q.fetch(&pool).await.expect("query");
        assert_eq!(
            &after, expected,
            "{} with {:?} returns other rows after your migration: an index must not change what a \
             query returns (did the migration change data, or the column's collation?)",
            q.sql, q.param
        );
    }
}
