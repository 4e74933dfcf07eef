//! The searches the lesson tunes, as the application would write them.
//!
//! The user's search term is always a bound parameter, never spliced into
//! the SQL: an injection string is searched for, literally. LIKE has its own
//! metacharacters on top of SQL's, `%` and `_`, and a term that contains
//! them must be escaped, or `rare_domain.org` would also match
//! `rare-domain.org` (`_` matches any one character).

use anyhow::Context;
use sqlx::PgPool;

/// One row found.
pub type Found = (i64, String);

// ANCHOR: escape_like
/// Escapes LIKE's metacharacters with PostgreSQL's and MariaDB's default
/// escape character, the backslash: `50%_off` → `50\%\_off`.
pub fn escape_like(term: &str) -> String {
    let mut out = String::with_capacity(term.len());
    for c in term.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
// ANCHOR_END: escape_like

/// The SQL and the bound parameter of each search, so the demo, the tests
/// and the benches EXPLAIN exactly what the application runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub sql: &'static str,
    pub param: String,
}

// ANCHOR: queries
/// `WHERE email = $1`: served by a B-tree on `email`.
pub fn by_email(email: &str) -> Query {
    Query {
        sql: "SELECT id, email FROM users WHERE email = $1 ORDER BY id",
        param: email.to_string(),
    }
}

/// `WHERE email LIKE 'user12%'`: a prefix. A B-tree can serve it only when
/// its operator class compares byte by byte (`text_pattern_ops`, or a
/// column in the C collation).
pub fn by_prefix(prefix: &str) -> Query {
    Query {
        sql: "SELECT id, email FROM users WHERE email LIKE $1 ORDER BY id",
        param: format!("{}%", escape_like(prefix)),
    }
}

/// `WHERE email LIKE '%@rare-domain.org'`: a suffix. The leading `%`
/// means no B-tree on `email` can narrow the search.
pub fn by_domain_like(domain: &str) -> Query {
    Query {
        sql: "SELECT id, email FROM users WHERE email LIKE $1 ORDER BY id",
        param: format!("%@{}", escape_like(domain)),
    }
}

/// The same search on the reversed string, which turns the suffix into a
/// prefix: `reverse(email) LIKE 'gro.niamod-erar@%'`, served by an index on
/// `reverse(email) text_pattern_ops`.
///
/// The term is reversed *before* it is escaped. Reversing in SQL,
/// `reverse(email) LIKE reverse($1)`, would reverse the escapes too:
/// `\_` would become `_\`, and the `_` would be a wildcard again.
pub fn by_domain_reversed(domain: &str) -> Query {
    let reversed: String = format!("@{domain}").chars().rev().collect();
    Query {
        sql: "SELECT id, email FROM users WHERE reverse(email) LIKE $1 ORDER BY id",
        param: format!("{}%", escape_like(&reversed)),
    }
}

/// The domain as a column of its own: plain equality, served by a plain
/// B-tree, no LIKE and no escaping at all.
pub fn by_domain_column(domain: &str) -> Query {
    Query {
        sql: "SELECT id, email FROM users WHERE email_domain = $1 ORDER BY id",
        param: domain.to_string(),
    }
}
// ANCHOR_END: queries

impl Query {
    /// Runs it.
    pub async fn fetch(&self, pool: &PgPool) -> anyhow::Result<Vec<Found>> {
        sqlx::query_as(self.sql)
            .bind(&self.param)
            .fetch_all(pool)
            .await
            .with_context(|| format!("Failed to run {} with {:?}", self.sql, self.param))
    }

    /// `EXPLAIN (FORMAT JSON[, ANALYZE, BUFFERS])` of it, with the same
    /// bound parameter: PostgreSQL plans a statement with known parameter
    /// values (a "custom plan"), so the plan is the one the query gets.
    pub async fn explain(
        &self,
        pool: &PgPool,
        analyze: bool,
    ) -> anyhow::Result<crate::plan::PgPlan> {
        explain_pg(pool, self.sql, Some(&self.param), analyze).await
    }
}

/// `EXPLAIN (ANALYZE, BUFFERS)` in PostgreSQL's text format, as a reader
/// would see it in psql: what the book prints for each step.
pub async fn explain_text(
    executor: impl sqlx::PgExecutor<'_>,
    sql: &str,
    param: &str,
) -> anyhow::Result<String> {
    let lines: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
        .bind(param)
        .fetch_all(executor)
        .await
        .with_context(|| format!("Failed to EXPLAIN {sql}"))?;
    Ok(lines.join("\n"))
}

/// EXPLAIN any statement, with at most one text parameter.
pub async fn explain_pg(
    pool: &PgPool,
    sql: &str,
    param: Option<&str>,
    analyze: bool,
) -> anyhow::Result<crate::plan::PgPlan> {
    let options = if analyze {
        "FORMAT JSON, ANALYZE, BUFFERS"
    } else {
        "FORMAT JSON"
    };
    let explain = format!("EXPLAIN ({options}) {sql}");
    let mut q = sqlx::query_scalar::<_, serde_json::Value>(&explain);
    if let Some(p) = param {
        q = q.bind(p);
    }
    let json = q
        .fetch_one(pool)
        .await
        .with_context(|| format!("Failed to {explain}"))?;
    crate::plan::PgPlan::parse(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(
            by_domain_like("rare_domain.org").param,
            "%@rare\\_domain.org"
        );
        assert_eq!(by_prefix("user12").param, "user12%");
    }

    #[test]
    fn the_reversed_search_escapes_after_reversing() {
        assert_eq!(
            by_domain_reversed("rare-domain.org").param,
            "gro.niamod-erar@%"
        );
        // `_` keeps its escape in front of it.
        assert_eq!(by_domain_reversed("a_b").param, "b\\_a@%");
    }
}
