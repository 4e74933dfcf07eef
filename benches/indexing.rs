//! Lesson 4: each query before and after its index, at 1,000,000 users
//! (100,000 with `LAB_QUICK=1`), on a private PostgreSQL (the bench creates
//! an extension and drops indexes) and on MariaDB in a database of its own.
//!
//! The data is built once per run, not per iteration. Each step sets exactly
//! the indexes it names (`indexes::set`), so a step is never helped by an
//! index an earlier one left behind. Scans take tens of milliseconds, so
//! the groups use flat sampling: every sample runs the same number of
//! iterations, and a group takes seconds, not the minutes criterion's
//! linear sampling would need.
//!
//! `LAB_INDEX_10M=1` adds 10,000,000 rows to the growth group (minutes of
//! seeding; not in the book).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use criterion::{
    BenchmarkGroup, SamplingMode, criterion_group, criterion_main, measurement::WallTime,
};
use lab::Kind;
use lab::results::Results;
use lesson_04_indexing::cases::{self, cases};
use lesson_04_indexing::experiment::{
    Excerpt, IndexPlansMariadbResults, IndexPlansResults, IndexSizesResults, MariadbPlan,
};
use lesson_04_indexing::indexes::{self, BTREE, DOMAIN, Index, REVERSE, TRGM};
use lesson_04_indexing::{dataset, mariadb, search};

fn rows() -> i64 {
    if benches::quick() { 100_000 } else { 1_000_000 }
}

fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sampling_mode(SamplingMode::Flat);
    if benches::quick() {
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
    } else {
        g.sample_size(20)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
    }
}

fn label(rows: i64) -> String {
    match rows {
        r if r >= 1_000_000 => format!("{}m", r / 1_000_000),
        r => format!("{}k", r / 1_000),
    }
}

fn postgres(c: &mut criterion::Criterion) {
    let rt = benches::runtime();
    let rows = rows();
    let (_pg, pool) = rt.block_on(async {
        let (pg, pool) = lesson_04_indexing::private_postgres(rows)
            .await
            .expect("a private, seeded PostgreSQL");
        dataset::prepare_newsletter(&pool, rows)
            .await
            .expect("newsletter");
        (pg, pool)
    });
    // The table as seeded, before any step adds a column or rows to it.
    let table_bytes: i64 = rt
        .block_on(sqlx::query_scalar("SELECT pg_relation_size('users')").fetch_one(&pool))
        .expect("table size");
    settle(&rt, &pool);

    let mut sizes = Vec::new();
    let mut plans = Vec::new();
    for case in cases(rows) {
        let mut g = c.benchmark_group(format!("index_{}", case.id));
        configure(&mut g);
        for step in &case.steps {
            let built = rt
                .block_on(indexes::set(&pool, step.indexes))
                .expect("indexes");
            sizes.extend(built);
            settle(&rt, &pool);
            let found = rt.block_on(step.query.fetch(&pool)).expect("query");
            assert!(
                !found.is_empty(),
                "{} / {} finds nothing",
                case.id,
                step.label
            );
            let plan = rt
                .block_on(search::explain_text(
                    &pool,
                    step.query.sql,
                    &step.query.param,
                ))
                .expect("plan");
            plans.push(Excerpt {
                case: case.id.into(),
                label: format!("{} ({})", step.label, step.query.sql),
                plan,
            });
            g.bench_function(step.bench, |b| {
                b.to_async(&rt)
                    .iter(|| async { step.query.fetch(&pool).await.expect("query") })
            });
        }
        g.finish();
        if case.id == "covering" {
            plans.extend(rt.block_on(heap_fetches(&pool, &case.steps[1].query)));
        }
    }

    let mut g = c.benchmark_group("index_match_all");
    configure(&mut g);
    for (name, force) in [("seq_scan", false), ("forced_trgm", true)] {
        plans.push(Excerpt {
            case: "match_all".into(),
            label: if force {
                "the trigram index, forced (SET LOCAL enable_seqscan = off)".into()
            } else {
                "the planner's choice, with the trigram index present".into()
            },
            plan: rt
                .block_on(cases::match_all_text(&pool, force))
                .expect("plan"),
        });
        g.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { cases::count_match_all(&pool, force).await.expect("count") })
        });
    }
    g.finish();

    IndexPlansResults(plans).write().expect("write the plans");
    growth(c, &rt, &_pg.url(), &pool, rows);
    writes(c, &rt, &pool, rows, &mut sizes);
    IndexSizesResults::new(rows, table_bytes, sizes)
        .write()
        .expect("write the index sizes");
}

/// Seeding a million rows, rewriting a table or building an index writes
/// hundreds of MB of WAL, and PostgreSQL checkpoints when enough has piled
/// up: in the middle of whatever runs next. A CHECKPOINT now writes it all
/// out before the clock starts.
fn settle(rt: &tokio::runtime::Runtime, pool: &sqlx::PgPool) {
    rt.block_on(sqlx::query("CHECKPOINT").execute(pool))
        .expect("CHECKPOINT");
}

/// Case 5's index-only scan after an UPDATE of the row it finds (the page
/// is no longer all-visible: Heap Fetches), and after VACUUM.
async fn heap_fetches(pool: &sqlx::PgPool, q: &search::Query) -> Vec<Excerpt> {
    sqlx::query("UPDATE users SET name = name WHERE email = $1")
        .bind(&q.param)
        .execute(pool)
        .await
        .expect("update");
    let mut out = Vec::new();
    for (label, vacuum) in [
        ("covering index, after an UPDATE of that row", false),
        ("covering index, after VACUUM users", true),
    ] {
        if vacuum {
            sqlx::query("VACUUM users")
                .execute(pool)
                .await
                .expect("vacuum");
        }
        out.push(Excerpt {
            case: "covering".into(),
            label: label.into(),
            plan: search::explain_text(pool, q.sql, &q.param)
                .await
                .expect("plan"),
        });
    }
    out
}

/// Equality and the rare suffix, with and without their index, at growing
/// sizes: the scan grows with the table, the index lookup barely moves.
fn growth(
    c: &mut criterion::Criterion,
    rt: &tokio::runtime::Runtime,
    url: &str,
    main: &sqlx::PgPool,
    rows: i64,
) {
    // Always 10k, 100k and 1M, so a quick run measures the same benches as
    // the book's (it seeds the sizes its main table is not).
    let mut sizes = vec![10_000, 100_000, 1_000_000];
    if std::env::var("LAB_INDEX_10M").is_ok_and(|v| v == "1") {
        sizes.push(10_000_000);
    }
    let mut pools = Vec::new();
    for &n in &sizes {
        if n == rows {
            pools.push(main.clone());
            continue;
        }
        let schema = format!("growth_{}", label(n));
        let pool = rt.block_on(async {
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(main)
                .await
                .expect("schema");
            let pool = lab::isolate::schema_pool(url, &format!("{schema},public"), 4)
                .await
                .expect("pool");
            dataset::prepare_pg(&pool, n).await.expect("users");
            pool
        });
        pools.push(pool);
    }
    let rare = lab::seed::RARE_DOMAIN;
    let mut g = c.benchmark_group("index_growth");
    configure(&mut g);
    for (&n, pool) in sizes.iter().zip(&pools) {
        let eq = search::by_email(&lab::seed::email_for(cases::target_id(n)));
        let like = search::by_domain_like(rare);
        let column = search::by_domain_column(rare);
        let steps: [(&str, &search::Query, &[&Index]); 4] = [
            ("eq_seq_scan", &eq, &[]),
            ("suffix_seq_scan", &like, &[]),
            ("eq_btree", &eq, &[&BTREE, &DOMAIN]),
            ("suffix_domain_column", &column, &[&BTREE, &DOMAIN]),
        ];
        for (name, query, wanted) in steps {
            rt.block_on(indexes::set(pool, wanted)).expect("indexes");
            settle(rt, pool);
            g.bench_function(format!("{name}_{}", label(n)), |b| {
                b.to_async(rt)
                    .iter(|| async { query.fetch(pool).await.expect("query") })
            });
        }
    }
    g.finish();
}

/// What each suffix fix costs a writer: inserting 1,000 users with the
/// index in place, against the primary key alone.
fn writes(
    c: &mut criterion::Criterion,
    rt: &tokio::runtime::Runtime,
    pool: &sqlx::PgPool,
    rows: i64,
    sizes: &mut Vec<indexes::Built>,
) {
    let next = AtomicI64::new(rows * 10);
    let mut g = c.benchmark_group("index_write");
    configure(&mut g);
    let insert = "INSERT INTO users (id, name, email, created_at) \
        SELECT g, 'User ' || g, 'user' || g || '@' || CASE WHEN g % 10000 = 7 THEN 'rare-domain.org' ELSE 'example.com' END, now() \
        FROM generate_series($1::bigint, $1::bigint + 999) AS g";
    let steps: [(&str, &[&Index]); 4] = [
        ("insert_1000_pk_only", &[]),
        ("insert_1000_trgm_gin", &[&TRGM]),
        ("insert_1000_reverse_expr", &[&REVERSE]),
        ("insert_1000_domain_column", &[&DOMAIN]),
    ];
    for (name, wanted) in steps {
        sizes.extend(rt.block_on(indexes::set(pool, wanted)).expect("indexes"));
        settle(rt, pool);
        g.bench_function(name, |b| {
            b.to_async(rt).iter(|| async {
                let from = next.fetch_add(1000, Ordering::Relaxed);
                sqlx::query(insert)
                    .bind(from)
                    .execute(pool)
                    .await
                    .expect("insert")
            })
        });
    }
    g.finish();
}

fn maria(c: &mut criterion::Criterion) {
    let rt = benches::runtime();
    let rows = rows();
    let (_server, db) = rt.block_on(async {
        let server = lab::discover(Kind::MySql).await.expect("MariaDB");
        let db = lab::isolate::MyDatabase::create(server.url())
            .await
            .expect("a database");
        lab::seed::ensure_users_mysql(db.pool(), rows)
            .await
            .expect("seed");
        (server, db)
    });
    let mut g = c.benchmark_group("index_mariadb");
    configure(&mut g);
    let mut plans = Vec::new();
    for step in mariadb::steps(rows) {
        rt.block_on(mariadb::set_indexes(db.pool(), &step))
            .expect("indexes");
        let plan = rt
            .block_on(mariadb::explain(db.pool(), &step, true))
            .expect("plan");
        plans.push(MariadbPlan::new(step.label, &plan));
        g.bench_function(step.bench, |b| {
            b.to_async(&rt)
                .iter(|| async { mariadb::fetch(db.pool(), &step).await.expect("query") })
        });
    }
    g.finish();
    IndexPlansMariadbResults(plans)
        .write()
        .expect("write the MariaDB plans");
}

criterion_group! {
    name = indexing;
    config = benches::criterion();
    targets = postgres, maria
}
criterion_main!(indexing);
