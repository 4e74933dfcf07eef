//! # Exercise 5: a sort that fits, for one query only
//!
//! A nightly report sorts every row of `sortable`:
//!
//! ```sql
//! SELECT id, val FROM sortable ORDER BY val
//! ```
//!
//! At the default `work_mem` (4MB) the sort spills to temporary files:
//! `EXPLAIN ANALYZE` shows `Sort Method: external merge  Disk: …kB`.
//! Lesson 5 measured what that costs, and why raising `work_mem` for the
//! whole server is dangerous: it is allowed per sort, per connection.
//!
//! In `src/starter.rs`, make [`explain_report`] run the report so that its
//! sort happens in memory (`quicksort`), **without** changing `work_mem`
//! for anything else: not for the server, not for the database or a role,
//! and not for the rest of the connection's session, which the pool hands
//! to the next query.
//!
//! ```text
//! just exercise-5          # the tests against your src/starter.rs
//! # without just: cargo test -p exercise-05-work-mem --features starter
//! ```
//!
//! The tests seed a private PostgreSQL, call your function, read the plan
//! it returns, and then check `work_mem` on the same connection and on a
//! new one.

#[cfg(feature = "starter")]
mod starter;
#[cfg(feature = "starter")]
pub use starter::explain_report;

#[cfg(not(feature = "starter"))]
mod solution;
#[cfg(not(feature = "starter"))]
pub use solution::explain_report;

/// The report's query.
pub const REPORT: &str = "SELECT id, val FROM sortable ORDER BY val";

/// The plan's Sort node: `(Sort Method, Sort Space Type)`, e.g.
/// `("quicksort", "Memory")`.
pub fn sort_method(plan: &serde_json::Value) -> Option<(String, String)> {
    fn walk(n: &serde_json::Value) -> Option<&serde_json::Value> {
        if n["Node Type"] == "Sort" {
            return Some(n);
        }
        n["Plans"].as_array()?.iter().find_map(walk)
    }
    let sort = walk(&plan[0]["Plan"])?;
    Some((
        sort["Sort Method"].as_str()?.to_string(),
        sort["Sort Space Type"].as_str()?.to_string(),
    ))
}
