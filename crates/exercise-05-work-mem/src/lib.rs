//! # Exercise 5: a sort that fits, for one query only (about 20 minutes)
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
//! just hint-5 1            # the first hint (of HINTS.md's four), if you are stuck
//! # without just: cargo test -p exercise-05-work-mem --features starter
//! ```
//!
//! The tests seed a private PostgreSQL, call your function, read the plan
//! it returns, and then check `work_mem` on the same connection and on a
//! new one.

// Every implementation below is compiled in every build, so your editor
// checks starter.rs as you type. A feature only picks the one the tests
// run: `starter` (what `just exercise-5` turns on) is yours; none is the
// reference in solution.rs; `wrong-*` are plausible mistakes that CI proves
// the tests catch. With several on (clippy's `--all-features`), the first
// in this list wins.
pub mod solution;
pub mod starter;
#[doc(hidden)]
pub mod wrong;

cfg_if::cfg_if! {
    if #[cfg(feature = "starter")] {
        pub use starter::explain_report;
    } else if #[cfg(feature = "wrong-session-set")] {
        pub use wrong::session_set as explain_report;
    } else if #[cfg(feature = "wrong-alter-role")] {
        pub use wrong::alter_role as explain_report;
    } else if #[cfg(feature = "wrong-disk-figure")] {
        pub use wrong::disk_figure as explain_report;
    } else {
        pub use solution::explain_report;
    }
}

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
