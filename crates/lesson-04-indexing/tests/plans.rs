//! Lesson 4's checks: plans, not timings. Each PostgreSQL test spawns a
//! private server (the lesson creates an extension and drops indexes);
//! MariaDB's uses a database of its own on the server the harness finds.

use lab::Kind;
use lab::spawn::{Instance, can_spawn};
use lesson_04_indexing::cases::{self, cases};
use lesson_04_indexing::indexes::{self, COVERING, DOMAIN, REVERSE, TRGM};
use lesson_04_indexing::plan::Access;
use lesson_04_indexing::search::{self, Found};
use lesson_04_indexing::{dataset, mariadb};

const ROWS: i64 = 20_000;

async fn private_pg(test: &str) -> Option<(Instance, sqlx::PgPool)> {
    if !can_spawn(Kind::Postgres, test) {
        return None;
    }
    Some(
        lesson_04_indexing::private_postgres(ROWS)
            .await
            .expect("a private, seeded PostgreSQL"),
    )
}

fn ids(rows: &[Found]) -> Vec<i64> {
    rows.iter().map(|(id, _)| *id).collect()
}

#[tokio::test]
async fn every_case_runs_with_the_plan_the_chapter_shows() {
    let Some((_pg, pool)) = private_pg("plans").await else {
        return;
    };
    dataset::prepare_newsletter(&pool, ROWS)
        .await
        .expect("newsletter");
    for case in cases(ROWS) {
        for step in &case.steps {
            indexes::set(&pool, step.indexes).await.expect("indexes");
            let plan = step.query.explain(&pool, false).await.expect("explain");
            let access = plan.access("users");
            assert!(
                access.is_some_and(|a| step.expect.contains(&a)),
                "{} / {}: expected one of {:?}, the plan is {} ({access:?})",
                case.id,
                step.label,
                step.expect,
                plan.shape()
            );
        }
    }
    let natural = cases::explain_match_all(&pool, false).await.expect("plan");
    assert_eq!(
        natural.access("newsletter"),
        Some(Access::FullScan),
        "99% of rows match: the planner scans, index or not ({})",
        natural.shape()
    );
    let forced = cases::explain_match_all(&pool, true).await.expect("plan");
    assert_eq!(forced.access("newsletter"), Some(Access::Bitmap));
}

#[tokio::test]
async fn the_rewritten_suffix_searches_return_exactly_what_like_returns() {
    let Some((_pg, pool)) = private_pg("rewrites").await else {
        return;
    };
    let rare = lab::seed::RARE_DOMAIN;
    let cases: &[(&str, Option<&[i64]>)] = &[
        // The edge rows found for rare-domain.org: the % and _ in a name,
        // the quote, and the last @ of two; not the upper-case one, not
        // rare_domain.org, not a subdomain.
        (rare, None),
        ("rare_domain.org", Some(&[-2])),
        ("RARE-DOMAIN.ORG", Some(&[-1])),
        ("50%_off.test", Some(&[-7])),
        ("sub.rare-domain.org", Some(&[-6])),
        ("nothing.invalid", Some(&[])),
    ];
    for with_indexes in [false, true] {
        let wanted: &[&indexes::Index] = if with_indexes {
            &[&TRGM, &REVERSE, &DOMAIN]
        } else {
            &[&DOMAIN]
        };
        indexes::set(&pool, wanted).await.expect("indexes");
        for (domain, expected) in cases {
            let like = search::by_domain_like(domain)
                .fetch(&pool)
                .await
                .expect("like");
            let reversed = search::by_domain_reversed(domain)
                .fetch(&pool)
                .await
                .expect("reversed");
            let column = search::by_domain_column(domain)
                .fetch(&pool)
                .await
                .expect("column");
            assert_eq!(like, reversed, "reverse() differs from LIKE for {domain}");
            assert_eq!(like, column, "email_domain differs from LIKE for {domain}");
            if let Some(expected) = expected {
                assert_eq!(ids(&like), *expected, "{domain}");
            }
        }
    }
    let found = ids(&search::by_domain_like(rare)
        .fetch(&pool)
        .await
        .expect("like"));
    assert_eq!(
        found.iter().filter(|id| **id > 0).count() as i64,
        lab::seed::rare_count(ROWS)
    );
    for edge in [-3, -4, -5] {
        assert!(found.contains(&edge), "{edge} is at {rare}: {found:?}");
    }
    for not in [-1, -2, -6] {
        assert!(!found.contains(&not), "{not} is not at {rare}");
    }
}

#[tokio::test]
async fn search_terms_are_bound_parameters_so_injection_is_searched_literally() {
    let Some((_pg, pool)) = private_pg("injection").await else {
        return;
    };
    for evil in [
        "' OR '1'='1",
        "x'; DROP TABLE users; --",
        "%' OR 1=1 --",
        "\\",
    ] {
        for q in [
            search::by_email(evil),
            search::by_prefix(evil),
            search::by_domain_like(evil),
            search::by_domain_reversed(evil),
        ] {
            let rows = q
                .fetch(&pool)
                .await
                .expect("a bound parameter is just a value");
            assert!(rows.is_empty(), "{evil:?} matched {rows:?} via {}", q.sql);
        }
    }
    let quote = search::by_prefix("o'brien")
        .fetch(&pool)
        .await
        .expect("query");
    assert_eq!(
        ids(&quote),
        vec![-4],
        "a quote in a term is found, not executed"
    );
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .expect("users still exists");
    assert_eq!(n, ROWS + dataset::EDGE_ROWS.len() as i64);
}

#[tokio::test]
async fn an_index_only_scan_fetches_from_the_heap_until_vacuum() {
    let Some((_pg, pool)) = private_pg("heap fetches").await else {
        return;
    };
    indexes::set(&pool, &[&COVERING]).await.expect("index");
    let email = lab::seed::email_for(cases::target_id(ROWS));
    let q = search::by_email(&email);
    sqlx::query("UPDATE users SET name = 'Updated' WHERE email = $1")
        .bind(&email)
        .execute(&pool)
        .await
        .expect("update");
    let before = q.explain(&pool, true).await.expect("plan");
    assert_eq!(
        before.access("users"),
        Some(Access::IndexOnly),
        "{}",
        before.shape()
    );
    assert!(
        before.heap_fetches().is_some_and(|n| n > 0),
        "the updated row's page is not all-visible: {:?}",
        before.heap_fetches()
    );
    sqlx::query("VACUUM users")
        .execute(&pool)
        .await
        .expect("vacuum");
    let after = q.explain(&pool, true).await.expect("plan");
    assert_eq!(
        after.heap_fetches(),
        Some(0),
        "VACUUM set the visibility map"
    );
}

#[tokio::test]
async fn mariadb_uses_its_index_for_equality_and_prefix_and_the_generated_column_for_suffix() {
    lab::init_tracing();
    let server = lab::discover(Kind::MySql).await.expect("MariaDB");
    let db = lab::isolate::MyDatabase::create(server.url())
        .await
        .expect("a database");
    lab::seed::ensure_users_mysql(db.pool(), ROWS)
        .await
        .expect("seed");
    let steps = mariadb::steps(ROWS);
    for step in &steps {
        mariadb::set_indexes(db.pool(), step)
            .await
            .expect("indexes");
        let plan = mariadb::explain(db.pool(), step, false)
            .await
            .expect("explain");
        assert!(
            plan.access().is_some_and(|a| step.expect.contains(&a)),
            "{}: expected {:?}, got {:?} ({})",
            step.label,
            step.expect,
            plan.access_type(),
            plan.json
        );
    }
    // The generated column returns what the suffix LIKE returns.
    let like = mariadb::fetch(db.pool(), &steps[3]).await.expect("like");
    let column = mariadb::fetch(db.pool(), &steps[4]).await.expect("column");
    assert_eq!(like, column);
    assert_eq!(like.len() as i64, lab::seed::rare_count(ROWS));
}
