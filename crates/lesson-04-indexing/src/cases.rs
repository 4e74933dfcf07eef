//! The lesson's cases: a query, and the indexes it is tried with, in order.

use sqlx::PgPool;

use crate::indexes::{BTREE, COVERING, DOMAIN, Index, PATTERN, REVERSE, TRGM};
use crate::plan::{Access, PgPlan};
use crate::search::{self, Query};

/// One measured step: a query with exactly these indexes.
#[derive(Debug)]
pub struct Step {
    /// The criterion bench's name.
    pub bench: &'static str,
    pub label: &'static str,
    pub query: Query,
    pub indexes: &'static [&'static Index],
    /// What the plan must be; the tests check it.
    pub expect: &'static [Access],
}

#[derive(Debug)]
pub struct Case {
    pub id: &'static str,
    pub title: &'static str,
    pub steps: Vec<Step>,
}

/// The id the equality and covering cases look up: near the end of the
/// table, so a scan cannot stop early by luck.
pub fn target_id(rows: i64) -> i64 {
    (rows - 12).max(1)
}

const SEEK: &[Access] = &[Access::Index, Access::IndexOnly, Access::Bitmap];

// ANCHOR: cases
/// Cases 1–3 and 5, on `users` with `rows` seeded rows.
pub fn cases(rows: i64) -> Vec<Case> {
    let email = lab::seed::email_for(target_id(rows));
    let rare = lab::seed::RARE_DOMAIN;
    let step = |bench, label, query, indexes, expect| Step {
        bench,
        label,
        query,
        indexes,
        expect,
    };
    vec![
        Case {
            id: "equality",
            title: "WHERE email = $1",
            steps: vec![
                step(
                    "seq_scan",
                    "no index",
                    search::by_email(&email),
                    &[],
                    &[Access::FullScan],
                ),
                step(
                    "btree",
                    "B-tree on email",
                    search::by_email(&email),
                    &[&BTREE],
                    SEEK,
                ),
            ],
        },
        Case {
            id: "prefix",
            title: "WHERE email LIKE 'user12345%'",
            steps: vec![
                step(
                    "btree_en_us",
                    "B-tree on email (en-US collation)",
                    search::by_prefix("user12345"),
                    &[&BTREE],
                    &[Access::FullScan],
                ),
                step(
                    "text_pattern_ops",
                    "B-tree, text_pattern_ops",
                    search::by_prefix("user12345"),
                    &[&PATTERN],
                    SEEK,
                ),
            ],
        },
        Case {
            id: "suffix",
            title: "WHERE email LIKE '%@rare-domain.org'",
            steps: vec![
                step(
                    "seq_scan",
                    "no index",
                    search::by_domain_like(rare),
                    &[],
                    &[Access::FullScan],
                ),
                step(
                    "plain_btree",
                    "B-tree on email",
                    search::by_domain_like(rare),
                    &[&BTREE, &PATTERN],
                    &[Access::FullScan],
                ),
                step(
                    "trgm_gin",
                    "pg_trgm GIN",
                    search::by_domain_like(rare),
                    &[&TRGM],
                    SEEK,
                ),
                step(
                    "reverse_expr",
                    "reverse(email) text_pattern_ops",
                    search::by_domain_reversed(rare),
                    &[&REVERSE],
                    SEEK,
                ),
                step(
                    "domain_column",
                    "generated email_domain + B-tree",
                    search::by_domain_column(rare),
                    &[&DOMAIN],
                    SEEK,
                ),
            ],
        },
        Case {
            id: "covering",
            title: "SELECT id, email … WHERE email = $1",
            steps: vec![
                step(
                    "index_scan",
                    "B-tree on email",
                    search::by_email(&email),
                    &[&BTREE],
                    &[Access::Index, Access::Bitmap],
                ),
                step(
                    "index_only_scan",
                    "covering (email) INCLUDE (id)",
                    search::by_email(&email),
                    &[&COVERING],
                    &[Access::IndexOnly],
                ),
            ],
        },
    ]
}
// ANCHOR_END: cases

// ANCHOR: match_all
/// Case 4: a predicate that matches 99% of `newsletter`. The trigram
/// index exists, and the planner rightly ignores it: reading 99% of the
/// rows through an index costs the index *and* nearly every heap page.
pub const MATCH_ALL: &str = "SELECT count(*) FROM newsletter WHERE email LIKE $1";
pub const MATCH_ALL_PARAM: &str = "%@example.com";

/// A transaction in which, when `force_index`, sequential scans are
/// switched off, to make the planner use the index it rejected. Callers
/// roll it back: the setting dies with it.
async fn begin(
    pool: &PgPool,
    force_index: bool,
) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    if force_index {
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

/// Case 4's plan, with or without the index forced.
pub async fn explain_match_all(pool: &PgPool, force_index: bool) -> anyhow::Result<PgPlan> {
    let mut tx = begin(pool, force_index).await?;
    let json: serde_json::Value = sqlx::query_scalar(&format!(
        "EXPLAIN (FORMAT JSON, ANALYZE, BUFFERS) {MATCH_ALL}"
    ))
    .bind(MATCH_ALL_PARAM)
    .fetch_one(&mut *tx)
    .await?;
    tx.rollback().await?;
    PgPlan::parse(json)
}
// ANCHOR_END: match_all

/// Runs case 4's query, with or without the index forced: what the bench
/// times.
pub async fn count_match_all(pool: &PgPool, force_index: bool) -> anyhow::Result<i64> {
    let mut tx = begin(pool, force_index).await?;
    let n: i64 = sqlx::query_scalar(MATCH_ALL)
        .bind(MATCH_ALL_PARAM)
        .fetch_one(&mut *tx)
        .await?;
    tx.rollback().await?;
    Ok(n)
}

/// Case 4's plan as text, with or without the index forced.
pub async fn match_all_text(pool: &PgPool, force_index: bool) -> anyhow::Result<String> {
    let mut tx = begin(pool, force_index).await?;
    let text = search::explain_text(&mut *tx, MATCH_ALL, MATCH_ALL_PARAM).await?;
    tx.rollback().await?;
    Ok(text)
}
