//! Every index the lesson creates, and a way to set exactly which exist.
//!
//! Each case is measured with exactly the indexes it names and no others, so
//! a plan can't be rescued by an index a previous step left behind.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;

/// One index (plus, for the domain column, the column it needs).
#[derive(Debug, PartialEq, Eq)]
pub struct Index {
    pub name: &'static str,
    /// What the book calls it.
    pub label: &'static str,
    pub create: &'static [&'static str],
    pub drop: &'static [&'static str],
}

// ANCHOR: indexes
/// A plain B-tree: `=`, ranges, ORDER BY. In a language collation it
/// compares as that language sorts, which LIKE cannot use.
pub const BTREE: Index = Index {
    name: "users_email_btree",
    label: "B-tree on email",
    create: &["CREATE INDEX users_email_btree ON users (email)"],
    drop: &["DROP INDEX IF EXISTS users_email_btree"],
};

/// A B-tree that compares byte by byte, whatever the collation: LIKE
/// 'prefix%' becomes a range on it. It cannot serve `<` or ORDER BY in the
/// column's collation, so a table often needs both.
pub const PATTERN: Index = Index {
    name: "users_email_pattern",
    label: "B-tree, text_pattern_ops",
    create: &["CREATE INDEX users_email_pattern ON users (email text_pattern_ops)"],
    drop: &["DROP INDEX IF EXISTS users_email_pattern"],
};

/// Trigrams: every 3-character substring of every email. Serves LIKE and
/// ILIKE with the wildcard anywhere, when the pattern has 3 or more
/// literal characters; the biggest index here, and the slowest to update.
pub const TRGM: Index = Index {
    name: "users_email_trgm",
    label: "pg_trgm GIN",
    create: &["CREATE INDEX users_email_trgm ON users USING gin (email gin_trgm_ops)"],
    drop: &["DROP INDEX IF EXISTS users_email_trgm"],
};

/// The reversed email, byte-wise: the suffix becomes a prefix.
pub const REVERSE: Index = Index {
    name: "users_email_reverse",
    label: "reverse(email) text_pattern_ops",
    create: &["CREATE INDEX users_email_reverse ON users (reverse(email) text_pattern_ops)"],
    drop: &["DROP INDEX IF EXISTS users_email_reverse"],
};

/// The domain as a generated column (after the *last* `@`, as LIKE
/// '%@domain' means), with a plain B-tree. Costs a column in every row.
pub const DOMAIN: Index = Index {
    name: "users_email_domain",
    label: "generated email_domain column + B-tree",
    create: &[
        "ALTER TABLE users ADD COLUMN IF NOT EXISTS email_domain text \
         GENERATED ALWAYS AS (substring(email from '@([^@]*)$')) STORED",
        "CREATE INDEX users_email_domain ON users (email_domain)",
    ],
    drop: &[
        "DROP INDEX IF EXISTS users_email_domain",
        "ALTER TABLE users DROP COLUMN IF EXISTS email_domain",
    ],
};

/// A B-tree that carries `id` in its leaf pages too, so `SELECT id, email
/// … WHERE email = $1` never visits the table (when VACUUM has marked the
/// pages all-visible).
pub const COVERING: Index = Index {
    name: "users_email_covering",
    label: "covering B-tree (email) INCLUDE (id)",
    create: &["CREATE INDEX users_email_covering ON users (email) INCLUDE (id)"],
    drop: &["DROP INDEX IF EXISTS users_email_covering"],
};
// ANCHOR_END: indexes

pub const ALL: [&Index; 6] = [&BTREE, &PATTERN, &TRGM, &REVERSE, &DOMAIN, &COVERING];

/// What building an index cost.
#[derive(Clone, Debug)]
pub struct Built {
    pub name: &'static str,
    pub took: Duration,
    pub bytes: i64,
}

/// Makes exactly `wanted` exist: drops the lesson's other indexes, creates
/// the missing ones, then ANALYZEs. Returns what each creation cost.
pub async fn set(pool: &PgPool, wanted: &[&Index]) -> anyhow::Result<Vec<Built>> {
    for index in ALL.iter().filter(|i| !wanted.contains(i)) {
        for sql in index.drop {
            sqlx::query(sql).execute(pool).await?;
        }
    }
    let mut built = Vec::new();
    for index in wanted {
        if exists(pool, index.name).await? {
            continue;
        }
        let t0 = Instant::now();
        for sql in index.create {
            sqlx::query(sql)
                .execute(pool)
                .await
                .with_context(|| format!("Failed to {sql}"))?;
        }
        built.push(Built {
            name: index.name,
            took: t0.elapsed(),
            bytes: size(pool, index.name).await?,
        });
    }
    sqlx::query("ANALYZE users").execute(pool).await?;
    Ok(built)
}

async fn exists(pool: &PgPool, name: &str) -> anyhow::Result<bool> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_class WHERE relname = $1 AND relnamespace = current_schema()::regnamespace",
    )
    .bind(name)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}

/// `pg_relation_size` of an index, in bytes.
pub async fn size(pool: &PgPool, name: &str) -> anyhow::Result<i64> {
    let (bytes,): (i64,) = sqlx::query_as("SELECT pg_relation_size($1::regclass)")
        .bind(name)
        .fetch_one(pool)
        .await
        .with_context(|| format!("no index {name}"))?;
    Ok(bytes)
}
