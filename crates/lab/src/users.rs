//! The one query every lesson serves: a user by primary key.
//!
//! The workshop's story starts from a slow database (2 s in the demo). The
//! delay is spent *inside* PostgreSQL with `pg_sleep`, not with a sleep in
//! Rust, so a slow request really holds a pool connection for that long, as
//! a slow query does in production: ten concurrent slow requests need ten
//! connections, and the eleventh waits for one.

use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// What `GET /users/{id}` returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
}

// ANCHOR: fetch_user
/// Reads one user, spending `latency` inside the database first.
#[tracing::instrument(skip(pool, latency), fields(latency_ms = latency.as_millis() as u64))]
pub async fn fetch_user(pool: &PgPool, id: i64, latency: Duration) -> anyhow::Result<Option<User>> {
    // DEBUG, not INFO: a line per request is 42 MB of log in 32 s at the
    // benches' ~50k requests a second, and writing it costs the request time.
    // The demos don't need it: their tables show each request's X-Cache and
    // server time. `RUST_LOG=info,lab::users=debug` brings it back.
    tracing::debug!("Fetching user {id} from DB…");
    type Row = (Option<i64>, Option<String>, Option<String>);
    let row: Option<Row> = if latency.is_zero() {
        // No artificial latency: the real cost of a primary-key lookup, which
        // is what the benches measure.
        sqlx::query_as("SELECT id, name, email FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
    } else {
        // The sleep is the outer side of a LEFT JOIN, so it runs once per
        // query whether or not the user exists: a 404 is as slow as a 200.
        sqlx::query_as(
            "SELECT u.id, u.name, u.email \
             FROM (SELECT pg_sleep($2)) AS slow LEFT JOIN users u ON u.id = $1",
        )
        .bind(id)
        .bind(latency.as_secs_f64())
        .fetch_optional(pool)
        .await
    }
    .with_context(|| format!("Failed to fetch user {id}"))?;
    Ok(match row {
        Some((Some(id), Some(name), Some(email))) => Some(User { id, name, email }),
        _ => None,
    })
}
// ANCHOR_END: fetch_user

/// What `GET /users/{id}/summary` returns: the expensive query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub user_id: i64,
    pub orders: i64,
    pub total_cents: i64,
}

// ANCHOR: fetch_summary
/// A user's order count and total spend: an aggregate over the `orders`
/// table, which has no index on `user_id` (lesson 4 adds one), so every call
/// scans every order. This is the query that makes a cache pay: it really
/// costs the database milliseconds, with no simulated latency at all.
#[tracing::instrument(skip(pool))]
pub async fn fetch_summary(pool: &PgPool, id: i64) -> anyhow::Result<Option<Summary>> {
    // DEBUG for the same reason as `fetch_user`'s line.
    tracing::debug!("Summarising orders of user {id} in the DB…");
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT u.id, count(o.id), coalesce(sum(o.amount_cents), 0)::bigint \
         FROM users u LEFT JOIN orders o ON o.user_id = u.id \
         WHERE u.id = $1 GROUP BY u.id",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .with_context(|| format!("Failed to summarise user {id}"))?;
    Ok(row.map(|(user_id, orders, total_cents)| Summary {
        user_id,
        orders,
        total_cents,
    }))
}
// ANCHOR_END: fetch_summary
