//! Case 6: the same searches on MariaDB (InnoDB), where the answer is the
//! same: a B-tree serves `=` and a prefix, not a suffix, and a generated
//! column with an index fixes the suffix.

use anyhow::Context;
use sqlx::MySqlPool;

use crate::plan::{Access, MyPlan};
use crate::search::escape_like;

/// One MariaDB step.
#[derive(Debug)]
pub struct MyStep {
    /// The criterion bench's name.
    pub bench: &'static str,
    pub label: &'static str,
    pub sql: &'static str,
    pub param: String,
    /// Whether the email index (and the domain column's) exist.
    pub email_index: bool,
    pub domain_index: bool,
    pub expect: &'static [Access],
}

// ANCHOR: mariadb
const ADD_EMAIL_INDEX: &str = "CREATE INDEX users_email ON users (email)";
const DROP_EMAIL_INDEX: &str = "DROP INDEX IF EXISTS users_email ON users";
/// MariaDB's generated column: `SUBSTRING_INDEX(email, '@', -1)` is the
/// part after the last `@`. STORED, like PostgreSQL's; a VIRTUAL column can
/// be indexed too, and costs no space in the row.
const ADD_DOMAIN: &str = "ALTER TABLE users \
    ADD COLUMN IF NOT EXISTS email_domain VARCHAR(255) AS (SUBSTRING_INDEX(email, '@', -1)) STORED, \
    ADD INDEX IF NOT EXISTS users_email_domain (email_domain)";
const DROP_DOMAIN: &str = "ALTER TABLE users DROP INDEX IF EXISTS users_email_domain, \
    DROP COLUMN IF EXISTS email_domain";
// ANCHOR_END: mariadb

pub fn steps(rows: i64) -> Vec<MyStep> {
    let email = lab::seed::email_for(crate::cases::target_id(rows));
    let rare = lab::seed::RARE_DOMAIN;
    let eq = "SELECT id, email FROM users WHERE email = ? ORDER BY id";
    let like = "SELECT id, email FROM users WHERE email LIKE ? ORDER BY id";
    let seek = &[Access::Index, Access::IndexOnly];
    vec![
        MyStep {
            bench: "eq_scan",
            label: "equality, no index",
            sql: eq,
            param: email.clone(),
            email_index: false,
            domain_index: false,
            expect: &[Access::FullScan],
        },
        MyStep {
            bench: "eq_btree",
            label: "equality, B-tree on email",
            sql: eq,
            param: email,
            email_index: true,
            domain_index: false,
            expect: seek,
        },
        MyStep {
            bench: "prefix_btree",
            label: "prefix 'user12345%', B-tree on email",
            sql: like,
            param: format!("{}%", escape_like("user12345")),
            email_index: true,
            domain_index: false,
            expect: seek,
        },
        MyStep {
            bench: "suffix_btree",
            label: "suffix '%@rare-domain.org', B-tree on email",
            sql: like,
            param: format!("%@{}", escape_like(rare)),
            email_index: true,
            domain_index: false,
            expect: &[Access::FullScan],
        },
        MyStep {
            bench: "domain_column",
            label: "suffix as email_domain = ?, generated column + B-tree",
            sql: "SELECT id, email FROM users WHERE email_domain = ? ORDER BY id",
            param: rare.to_string(),
            email_index: true,
            domain_index: true,
            expect: seek,
        },
    ]
}

/// Makes the indexes a step needs exist, and no others.
pub async fn set_indexes(pool: &MySqlPool, step: &MyStep) -> anyhow::Result<()> {
    let has = |name: &'static str| async move {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND table_name = 'users' AND index_name = ?",
        )
        .bind(name)
        .fetch_one(pool)
        .await?;
        anyhow::Ok(n > 0)
    };
    if step.email_index != has("users_email").await? {
        let sql = if step.email_index {
            ADD_EMAIL_INDEX
        } else {
            DROP_EMAIL_INDEX
        };
        sqlx::query(sql).execute(pool).await?;
    }
    let sql = if step.domain_index {
        ADD_DOMAIN
    } else {
        DROP_DOMAIN
    };
    sqlx::query(sql).execute(pool).await?;
    sqlx::query("ANALYZE TABLE users").execute(pool).await?;
    Ok(())
}

/// `EXPLAIN FORMAT=JSON` or, with `analyze`, `ANALYZE FORMAT=JSON` (which
/// runs the query) of a step.
pub async fn explain(pool: &MySqlPool, step: &MyStep, analyze: bool) -> anyhow::Result<MyPlan> {
    let verb = if analyze { "ANALYZE" } else { "EXPLAIN" };
    let (text,): (String,) = sqlx::query_as(&format!("{verb} FORMAT=JSON {}", step.sql))
        .bind(&step.param)
        .fetch_one(pool)
        .await
        .with_context(|| format!("Failed to {verb} {}", step.sql))?;
    MyPlan::parse(&text)
}

/// Runs a step's query.
pub async fn fetch(pool: &MySqlPool, step: &MyStep) -> anyhow::Result<Vec<(i64, String)>> {
    Ok(sqlx::query_as(step.sql)
        .bind(&step.param)
        .fetch_all(pool)
        .await?)
}
