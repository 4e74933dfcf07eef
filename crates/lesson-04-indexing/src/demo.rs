//! `just lesson-4`: every case, before and after, with its plan.

use lab::Kind;

use crate::cases::{self, MATCH_ALL_PARAM};
use crate::cli::Args;
use crate::plan::PgPlan;
use crate::{dataset, indexes, mariadb};

pub async fn run(args: &Args) -> anyhow::Result<()> {
    println!(
        "Lesson 4: indexes, before and after, on {} users (LAB_INDEX_ROWS).\n",
        args.rows
    );
    println!("seeding a private PostgreSQL…");
    let (_pg, pool) = crate::private_postgres(args.rows).await?;
    dataset::prepare_newsletter(&pool, args.rows).await?;

    for (n, case) in cases::cases(args.rows).iter().enumerate() {
        println!("\n{}. {}", n + 1 + usize::from(n >= 3), case.title);
        for step in &case.steps {
            for b in indexes::set(&pool, step.indexes).await? {
                println!(
                    "   (built {} in {:.1?}: {})",
                    b.name,
                    b.took,
                    lab::units::kib_or_mib(b.bytes.max(0) as u64)
                );
            }
            let plan = step.query.explain(&pool, true).await?;
            print_pg(step.label, &plan);
        }
        if case.id == "covering" {
            heap_fetches(&pool, &case.steps[1].query.param).await?;
        }
        if case.id == "suffix" {
            println!(
                "   (the domain column must agree with LIKE: the tests check it on every edge case)"
            );
        }
        if n == 2 {
            println!(
                "\n4. WHERE email LIKE '{MATCH_ALL_PARAM}' on newsletter, where 99% of rows match"
            );
            print_pg(
                "trigram index exists",
                &cases::explain_match_all(&pool, false).await?,
            );
            print_pg(
                "index forced (seqscan off)",
                &cases::explain_match_all(&pool, true).await?,
            );
        }
    }
    indexes::set(&pool, &[]).await?;

    if args.no_mariadb {
        return Ok(());
    }
    println!("\n6. The same on MariaDB");
    let server = lab::discover(Kind::MySql).await?;
    let db = lab::isolate::MyDatabase::create(server.url()).await?;
    lab::seed::ensure_users_mysql(db.pool(), args.rows).await?;
    for step in mariadb::steps(args.rows) {
        mariadb::set_indexes(db.pool(), &step).await?;
        let plan = mariadb::explain(db.pool(), &step, true).await?;
        println!(
            "   {:<52} {:<6} key {:<20} rows read {:>9.0}  {}",
            step.label,
            plan.access_type().unwrap_or_default(),
            plan.key().unwrap_or_else(|| "-".into()),
            plan.rows().unwrap_or(0.0),
            plan.total_ms()
                .map_or("-".into(), |ms| format!("{ms:.2} ms"))
        );
    }
    println!(
        "\nThe chapter explains each plan; `cargo bench --bench indexing` measures them at 1M rows."
    );
    Ok(())
}

fn print_pg(label: &str, plan: &PgPlan) {
    let (hit, read) = plan.buffers();
    println!(
        "   {:<36} {:<18} {:>9}  buffers {:>6} hit {:>5} read  [{}]",
        label,
        plan.access("users")
            .or_else(|| plan.access("newsletter"))
            .map_or("?", |a| a.label()),
        plan.execution_ms()
            .map_or("-".into(), |ms| format!("{ms:.2} ms")),
        hit,
        read,
        plan.shape()
    );
}

async fn heap_fetches(pool: &sqlx::PgPool, email: &str) -> anyhow::Result<()> {
    let q = crate::search::by_email(email);
    sqlx::query("UPDATE users SET name = name WHERE email = $1")
        .bind(email)
        .execute(pool)
        .await?;
    let after_update = q.explain(pool, true).await?.heap_fetches();
    sqlx::query("VACUUM users").execute(pool).await?;
    let after_vacuum = q.explain(pool, true).await?.heap_fetches();
    println!(
        "   Heap Fetches after an UPDATE of that row: {}; after VACUUM: {}",
        after_update.unwrap_or(0),
        after_vacuum.unwrap_or(0)
    );
    Ok(())
}
