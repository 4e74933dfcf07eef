//! The lesson's tables: `users` from the shared seed (with `email` in a
//! real-world collation and a few awkward rows added), and `newsletter`,
//! where nearly every address is at one domain.

use anyhow::Context;
use sqlx::PgPool;

/// The collation `users.email` gets. The database's default here is `C` or
/// `C.UTF-8`, which hides the prefix trap; production databases mostly run
/// a language collation such as `en_US.UTF-8`. ICU's `en-US` stands in for
/// it on any machine, whatever locales the OS has installed.
pub const COLLATION: &str = "en-US-x-icu";

// ANCHOR: edge_rows
/// Rows that catch a rewrite that is not exactly equivalent to the LIKE it
/// replaces. Negative ids, so they never collide with the seed's.
pub const EDGE_ROWS: &[(i64, &str)] = &[
    (-1, "USER1@RARE-DOMAIN.ORG"),     // LIKE is case-sensitive here
    (-2, "user2@rare_domain.org"),     // `_` would match the `-`
    (-3, "100%_sure@rare-domain.org"), // LIKE metacharacters in the name
    (-4, "o'brien@rare-domain.org"),   // a quote
    (-5, "a@b@rare-domain.org"),       // two @: the domain is after the last
    (-6, "user6@sub.rare-domain.org"), // a subdomain is another domain
    (-7, "x@50%_off.test"),            // metacharacters in the domain
];
// ANCHOR_END: edge_rows

/// Creates and seeds `users` (ids 1..=rows plus [`EDGE_ROWS`]) in the
/// pool's schema, with `email` in [`COLLATION`], and the `pg_trgm`
/// extension the lesson's GIN index needs.
pub async fn prepare_pg(pool: &PgPool, rows: i64) -> anyhow::Result<()> {
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        .execute(pool)
        .await
        .context("Failed to create the pg_trgm extension (install postgresql-contrib)")?;
    lab::seed::ensure_users_pg(pool, rows).await?;
    let (collation,): (String,) = sqlx::query_as(
        "SELECT c.collname::text FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation \
         WHERE a.attrelid = 'users'::regclass AND a.attname = 'email'",
    )
    .fetch_one(pool)
    .await?;
    if collation != COLLATION {
        tracing::info!("setting users.email's collation to {COLLATION} (rewrites the table)");
        sqlx::query(&format!(
            "ALTER TABLE users ALTER COLUMN email TYPE text COLLATE \"{COLLATION}\""
        ))
        .execute(pool)
        .await
        .with_context(|| {
            format!("Failed to use collation {COLLATION}: this PostgreSQL was built without ICU")
        })?;
    }
    for (id, email) in EDGE_ROWS {
        sqlx::query(
            "INSERT INTO users (id, name, email, created_at) VALUES ($1, 'Edge case', $2, now()) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(email)
        .execute(pool)
        .await?;
    }
    sqlx::query("VACUUM ANALYZE users").execute(pool).await?;
    Ok(())
}

/// `newsletter`: `rows` subscribers, 99 in 100 of them at example.com, with
/// a trigram index, for the predicate no index can help.
pub async fn prepare_newsletter(pool: &PgPool, rows: i64) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS newsletter (id bigint PRIMARY KEY, email text COLLATE \"{COLLATION}\" NOT NULL)"
    ))
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO newsletter (id, email) \
         SELECT g, 'reader' || g || '@' || CASE WHEN g % 100 = 0 THEN 'example.org' ELSE 'example.com' END \
         FROM generate_series(1, $1::bigint) AS g ON CONFLICT (id) DO NOTHING",
    )
    .bind(rows)
    .execute(pool)
    .await
    .context("Failed to seed newsletter")?;
    sqlx::query(
        "CREATE INDEX IF NOT EXISTS newsletter_email_trgm ON newsletter USING gin (email gin_trgm_ops)",
    )
    .execute(pool)
    .await?;
    sqlx::query("VACUUM ANALYZE newsletter")
        .execute(pool)
        .await?;
    Ok(())
}
