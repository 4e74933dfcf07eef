//! Exercise 4's checks, on a private PostgreSQL: plans and results, never
//! timings.

use exercise_04_indexing::migrate;
use lab::Kind;
use lab::spawn::{Instance, can_spawn};
use lesson_04_indexing::plan::Access;
use lesson_04_indexing::search::{self, Query};

const ROWS: i64 = 20_000;

async fn seeded(test: &str) -> Option<(Instance, sqlx::PgPool)> {
    if !can_spawn(Kind::Postgres, test) {
        return None;
    }
    Some(
        lesson_04_indexing::private_postgres(ROWS)
            .await
            .expect("a private, seeded PostgreSQL"),
    )
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
    let Some((_pg, pool)) = seeded("exercise 4: plans").await else {
        return;
    };
    for (what, q) in searches() {
        let plan = q.explain(&pool, false).await.expect("plan");
        assert_eq!(
            plan.access("users"),
            Some(Access::FullScan),
            "before the migration {what} scans"
        );
    }
    migrate(&pool).await.expect("your migration runs");
    for (what, q) in searches() {
        let plan = q.explain(&pool, false).await.expect("plan");
        let access = plan.access("users");
        assert!(
            matches!(
                access,
                Some(Access::Index | Access::IndexOnly | Access::Bitmap)
            ),
            "after the migration {what} ({} with {:?}) should use an index; the plan is {}",
            q.sql,
            q.param,
            plan.shape()
        );
    }
}

#[tokio::test]
async fn the_results_do_not_change_and_the_migration_can_run_twice() {
    let Some((_pg, pool)) = seeded("exercise 4: results").await else {
        return;
    };
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
    migrate(&pool).await.expect("your migration runs");
    migrate(&pool)
        .await
        .expect("your migration runs a second time (use IF NOT EXISTS)");
    for (q, expected) in terms.iter().zip(&before) {
        let after = q.fetch(&pool).await.expect("query");
        assert_eq!(&after, expected, "{} with {:?} changed", q.sql, q.param);
    }
}
