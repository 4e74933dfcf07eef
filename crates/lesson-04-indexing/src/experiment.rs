//! What the `indexing` bench leaves in `target/lab-experiments/` for `just
//! report`: one type per file, each a [`lab::results::Results`], so the
//! bench that writes it and the report that reads it share the fields and
//! the file name.

use serde::{Deserialize, Serialize};

use crate::indexes::Built;
use crate::plan::MyPlan;

/// The size and build time of each index at the bench's size, for the
/// chapter's "which fix would you pick" table (`index_sizes.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexSizesResults {
    /// Rows in `users`.
    pub rows: i64,
    /// `users` as seeded, before any step adds a column or rows to it.
    pub table_bytes: i64,
    pub indexes: Vec<IndexSize>,
}

/// One index: its name, its size, and how long it took to build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexSize {
    pub name: String,
    pub bytes: i64,
    pub build_ms: f64,
}

impl IndexSizesResults {
    /// From every build the bench made, in order. Later steps build some
    /// indexes again; the first build of each is the one reported.
    pub fn new(rows: i64, table_bytes: i64, built: impl IntoIterator<Item = Built>) -> Self {
        let mut seen = std::collections::HashSet::new();
        let indexes = built
            .into_iter()
            .filter(|b| seen.insert(b.name))
            .map(|b| IndexSize {
                name: b.name.into(),
                bytes: b.bytes,
                build_ms: b.took.as_secs_f64() * 1000.0,
            })
            .collect();
        IndexSizesResults {
            rows,
            table_bytes,
            indexes,
        }
    }
}

impl lab::results::Results for IndexSizesResults {
    const FILE: &'static str = "index_sizes.json";
}

/// The PostgreSQL plans the bench captured, in the order it ran the steps
/// (`index_plans.json`): a JSON array of [`Excerpt`]s.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IndexPlansResults(pub Vec<Excerpt>);

/// One step's plan, for the book.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Excerpt {
    /// The case's id, which names the book's file: `index_plan_<case>.md`.
    pub case: String,
    pub label: String,
    /// `EXPLAIN (ANALYZE, BUFFERS)` as psql prints it.
    pub plan: String,
}

impl lab::results::Results for IndexPlansResults {
    const FILE: &'static str = "index_plans.json";
}

/// MariaDB's plan for each step of case 6 (`index_plans_mariadb.json`): a
/// JSON array of [`MariadbPlan`]s.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IndexPlansMariadbResults(pub Vec<MariadbPlan>);

/// What the book's table shows of one MariaDB plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MariadbPlan {
    pub label: String,
    pub access_type: Option<String>,
    pub key: Option<String>,
    /// Rows read (`r_rows`).
    pub rows: Option<f64>,
}

impl MariadbPlan {
    pub fn new(label: &str, plan: &MyPlan) -> Self {
        MariadbPlan {
            label: label.into(),
            access_type: plan.access_type(),
            key: plan.key(),
            rows: plan.rows(),
        }
    }
}

impl lab::results::Results for IndexPlansMariadbResults {
    const FILE: &'static str = "index_plans_mariadb.json";
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_files_keep_the_shape_the_report_reads() {
        let built = |name, ms| Built {
            name,
            took: Duration::from_millis(ms),
            bytes: 8192,
        };
        let sizes =
            IndexSizesResults::new(10, 65536, [built("a", 3), built("b", 4), built("a", 99)]);
        assert_eq!(
            serde_json::to_value(&sizes).expect("json"),
            serde_json::json!({
                "rows": 10,
                "table_bytes": 65536,
                "indexes": [
                    { "name": "a", "bytes": 8192, "build_ms": 3.0 },
                    { "name": "b", "bytes": 8192, "build_ms": 4.0 },
                ],
            })
        );
        let plans = IndexPlansResults(vec![Excerpt {
            case: "eq".into(),
            label: "l".into(),
            plan: "p".into(),
        }]);
        assert_eq!(
            serde_json::to_value(&plans).expect("json"),
            serde_json::json!([{ "case": "eq", "label": "l", "plan": "p" }])
        );
        let maria = IndexPlansMariadbResults(vec![MariadbPlan {
            label: "l".into(),
            access_type: Some("ref".into()),
            key: None,
            rows: Some(1.0),
        }]);
        assert_eq!(
            serde_json::to_value(&maria).expect("json"),
            serde_json::json!([{ "label": "l", "access_type": "ref", "key": null, "rows": 1.0 }])
        );
    }
}
