//! The database side: a version on every row, a trigger that bumps it and
//! records the change, and the two queries the service makes.
//!
//! Every design in this lesson leans on one fact: **PostgreSQL knows the
//! order of the writes**, and nothing else does. Redis, the L1s and the
//! messages between instances all see writes late and sometimes out of
//! order; a version number from the database lets each of them tell an old
//! value from a new one. The trigger, not the service, keeps it, so a write
//! from anywhere (lesson 2's PUT, a migration, `psql`) bumps it too.

use std::time::{Duration, Instant};

use anyhow::Context;
use lab::users::User;
use sqlx::PgPool;

// ANCHOR: schema
/// What lesson 8 adds to the `users` table of lessons 1–3, idempotently.
///
/// - `version`: bumped by a `BEFORE UPDATE` trigger on every update, from
///   any writer. A cache entry carries the version it was read at.
/// - `user_cache_outbox`: one row per committed change, written by an
///   `AFTER` trigger **in the writer's transaction**. The change and the
///   record that caches must hear of it commit together or not at all, so
///   an invalidation cannot be lost between them: the service deletes the
///   row once Redis has heard, and a relay retries the rows it did not.
///   (This is the "transactional outbox" of event-driven systems.)
/// - `pg_notify`: the same trigger tells every listening instance, at
///   commit, which user changed and to which version. The channel is
///   per schema, so tests on one server never hear each other.
const SCHEMA: &[&str] = &[
    "ALTER TABLE users ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 1",
    "CREATE TABLE IF NOT EXISTS user_cache_outbox (
        user_id bigint NOT NULL,
        version bigint NOT NULL,
        at      timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (user_id, version)
    )",
    "CREATE OR REPLACE FUNCTION users_bump_version() RETURNS trigger
     LANGUAGE plpgsql AS $$
     BEGIN
         NEW.version := OLD.version + 1;
         RETURN NEW;
     END $$",
    "CREATE OR REPLACE TRIGGER users_bump_version BEFORE UPDATE ON users
     FOR EACH ROW EXECUTE FUNCTION users_bump_version()",
    // `SET search_path FROM CURRENT`: the function finds the outbox of its
    // own schema (the one it was created in), whatever the writer's
    // search_path is: `psql` with the default `public` included.
    "CREATE OR REPLACE FUNCTION users_changed() RETURNS trigger
     LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
     DECLARE
         changed bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
         -- A deleted row has no next version: one past its last stands for
         -- 'gone', so that no cached copy of it can win a comparison.
         v bigint := CASE WHEN TG_OP = 'DELETE' THEN OLD.version + 1 ELSE NEW.version END;
     BEGIN
         INSERT INTO user_cache_outbox (user_id, version) VALUES (changed, v)
             ON CONFLICT DO NOTHING;
         -- A channel name is at most 63 bytes: the schema's first 57.
         PERFORM pg_notify(left(TG_TABLE_SCHEMA, 57) || '_users', changed || ':' || v);
         RETURN NULL;
     END $$",
    "CREATE OR REPLACE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE ON users
     FOR EACH ROW EXECUTE FUNCTION users_changed()",
];
// ANCHOR_END: schema

/// The `LISTEN` channel of a schema's user changes (see [`SCHEMA`]): its
/// first 57 characters (schema names are ASCII here) and `_users`, 63 at
/// most, PostgreSQL's limit for a name.
pub fn channel(schema: &str) -> String {
    let short: String = schema.chars().take(57).collect();
    format!("{short}_users")
}

/// Marks the schema as prepared by this version of [`SCHEMA`]: when the
/// function's comment says so, `prepare` changes nothing (an `ALTER TABLE`,
/// even one that adds nothing, waits for every open transaction on the
/// table, and every read would queue behind it).
const PREPARED: &str = "lesson-08 schema v2";

/// Adds the version, the outbox and the triggers to the pool's schema.
/// Safe to run on every start, and from two instances at once: a
/// transaction-scoped advisory lock serialises them (two concurrent
/// `CREATE OR REPLACE FUNCTION`s would otherwise fail with "tuple
/// concurrently updated").
pub async fn prepare(pool: &PgPool) -> anyhow::Result<()> {
    let mut tx = pool
        .begin()
        .await
        .context("Failed to connect to PostgreSQL")?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.lesson-08'))")
        .execute(&mut *tx)
        .await?;
    for sql in SCHEMA {
        sqlx::query(sql)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("Failed to prepare lesson 8's schema: {sql}"))?;
    }
    sqlx::query(&format!(
        "COMMENT ON FUNCTION users_changed() IS '{PREPARED}'"
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A user as the database has it, with the row's version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    pub user: User,
    pub version: i64,
}

/// Reads one user and its version, spending `latency` inside PostgreSQL
/// first (as `lab::users::fetch_user` does, so a miss is as slow as the
/// lessons' slow database).
#[tracing::instrument(skip(pool, latency), fields(latency_ms = latency.as_millis() as u64))]
pub async fn fetch(pool: &PgPool, id: i64, latency: Duration) -> anyhow::Result<Option<Versioned>> {
    type Row = (Option<i64>, Option<String>, Option<String>, Option<i64>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT u.id, u.name, u.email, u.version \
         FROM (SELECT pg_sleep($2)) AS slow LEFT JOIN users u ON u.id = $1",
    )
    .bind(id)
    .bind(latency.as_secs_f64())
    .fetch_optional(pool)
    .await
    .with_context(|| format!("Failed to fetch user {id}"))?;
    Ok(match row {
        Some((Some(id), Some(name), Some(email), Some(version))) => Some(Versioned {
            user: User { id, name, email },
            version,
        }),
        _ => None,
    })
}

/// The UPDATE, under what is left of `limit` as its `statement_timeout`
/// (lesson 2's `update_row`, whose comments say why). The trigger bumps the
/// version and writes the outbox row in this same transaction.
#[tracing::instrument(skip(pool, name, email, limit))]
pub async fn update(
    pool: &PgPool,
    id: i64,
    name: &str,
    email: &str,
    limit: Duration,
) -> Result<Option<Versioned>, sqlx::Error> {
    let started = Instant::now();
    let mut tx = tokio::time::timeout(limit, pool.begin())
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
    let left = limit.saturating_sub(started.elapsed());
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(format!("{}ms", left.as_millis().max(1)))
        .execute(&mut *tx)
        .await?;
    let row: Option<(i64, String, String, i64)> = sqlx::query_as(
        "UPDATE users SET name = $2, email = $3 WHERE id = $1 RETURNING id, name, email, version",
    )
    .bind(id)
    .bind(name)
    .bind(email)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row.map(|(id, name, email, version)| Versioned {
        user: User { id, name, email },
        version,
    }))
}

/// Redis has heard of every change to `id` up to `version`: its outbox
/// rows can go.
#[tracing::instrument(skip(pool))]
pub async fn outbox_done(pool: &PgPool, id: i64, version: i64) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM user_cache_outbox WHERE user_id = $1 AND version <= $2")
        .bind(id)
        .bind(version)
        .execute(pool)
        .await
        .context("Failed to clear the outbox")?;
    Ok(())
}

/// The changes that nobody has confirmed for `grace`: their writer's own
/// invalidation failed, or the writer is gone. The newest version per user,
/// oldest first, at most `limit`.
#[tracing::instrument(skip(pool))]
pub async fn outbox_due(
    pool: &PgPool,
    grace: Duration,
    limit: i64,
) -> anyhow::Result<Vec<(i64, i64)>> {
    sqlx::query_as(
        "SELECT user_id, max(version) FROM user_cache_outbox \
         WHERE at < clock_timestamp() - make_interval(secs => $1) \
         GROUP BY user_id ORDER BY min(at) LIMIT $2",
    )
    .bind(grace.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("Failed to read the outbox")
}

/// How many changes wait in the outbox (for `/metrics` and the tests).
pub async fn outbox_len(pool: &PgPool) -> anyhow::Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM user_cache_outbox")
        .fetch_one(pool)
        .await
        .context("Failed to count the outbox")?;
    Ok(n)
}
