//! Reading `EXPLAIN (FORMAT JSON)`: the plan as data, so tests can assert
//! the node a query runs with, and the demo can print what matters.
//!
//! Tests assert plans, never timings: a plan node is a fact about the query,
//! a timing is a fact about the machine at that moment.

use anyhow::Context;
use serde_json::Value;

/// How a plan reads the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Every row is read: `Seq Scan` (or `Parallel Seq Scan`); MariaDB `ALL`.
    FullScan,
    /// An index finds the rows, the heap supplies the columns: `Index Scan`;
    /// MariaDB `ref`, `eq_ref`, `const` or `range`.
    Index,
    /// The index alone answers: `Index Only Scan`.
    IndexOnly,
    /// An index builds a bitmap of pages, then the heap is read in page
    /// order (and rechecked): `Bitmap Index Scan` under `Bitmap Heap Scan`.
    Bitmap,
}

impl Access {
    pub fn label(self) -> &'static str {
        match self {
            Access::FullScan => "full scan",
            Access::Index => "index scan",
            Access::IndexOnly => "index-only scan",
            Access::Bitmap => "bitmap index scan",
        }
    }
}

/// One PostgreSQL plan, with the numbers `EXPLAIN (ANALYZE, BUFFERS)` adds.
#[derive(Clone, Debug)]
pub struct PgPlan {
    pub json: Value,
}

impl PgPlan {
    pub fn parse(json: Value) -> anyhow::Result<PgPlan> {
        // EXPLAIN (FORMAT JSON) returns a one-element array.
        let top = json
            .get(0)
            .filter(|t| t.get("Plan").is_some())
            .cloned()
            .context("EXPLAIN (FORMAT JSON) returned no plan")?;
        Ok(PgPlan { json: top })
    }

    fn root(&self) -> &Value {
        &self.json["Plan"]
    }

    /// Every node, depth first.
    pub fn nodes(&self) -> Vec<&Value> {
        fn walk<'a>(n: &'a Value, out: &mut Vec<&'a Value>) {
            out.push(n);
            if let Some(children) = n.get("Plans").and_then(Value::as_array) {
                for c in children {
                    walk(c, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.root(), &mut out);
        out
    }

    /// The node names, depth first: "Aggregate > Gather > Parallel Seq Scan".
    pub fn shape(&self) -> String {
        self.nodes()
            .iter()
            .filter_map(|n| n["Node Type"].as_str())
            .collect::<Vec<_>>()
            .join(" > ")
    }

    /// How the plan reads `table`.
    pub fn access(&self, table: &str) -> Option<Access> {
        let nodes = self.nodes();
        // A bitmap plan names the table on the heap node and the index on
        // the child, so look for the index node's type first.
        if nodes.iter().any(|n| n["Node Type"] == "Bitmap Index Scan")
            && nodes
                .iter()
                .any(|n| n["Node Type"] == "Bitmap Heap Scan" && n["Relation Name"] == table)
        {
            return Some(Access::Bitmap);
        }
        nodes.iter().find_map(|n| {
            if n["Relation Name"] != table {
                return None;
            }
            match n["Node Type"].as_str()? {
                "Seq Scan" => Some(Access::FullScan),
                "Index Scan" => Some(Access::Index),
                "Index Only Scan" => Some(Access::IndexOnly),
                _ => None,
            }
        })
    }

    /// The index the plan uses, if any.
    pub fn index_name(&self) -> Option<String> {
        self.nodes()
            .iter()
            .find_map(|n| n["Index Name"].as_str().map(str::to_string))
    }

    /// `Heap Fetches` of an index-only scan (ANALYZE only).
    pub fn heap_fetches(&self) -> Option<u64> {
        self.nodes().iter().find_map(|n| n["Heap Fetches"].as_u64())
    }

    /// `Execution Time` in ms (ANALYZE only).
    pub fn execution_ms(&self) -> Option<f64> {
        self.json["Execution Time"].as_f64()
    }

    /// Shared buffers hit and read by the whole plan (ANALYZE, BUFFERS).
    pub fn buffers(&self) -> (u64, u64) {
        let root = self.root();
        (
            root["Shared Hit Blocks"].as_u64().unwrap_or(0),
            root["Shared Read Blocks"].as_u64().unwrap_or(0),
        )
    }

    /// `Rows Removed by Filter` summed over the plan: what a scan read and
    /// threw away.
    pub fn rows_removed(&self) -> u64 {
        self.nodes()
            .iter()
            .filter_map(|n| n["Rows Removed by Filter"].as_u64())
            .sum()
    }
}

/// MariaDB's `EXPLAIN FORMAT=JSON` (or `ANALYZE FORMAT=JSON`) for a
/// one-table query.
#[derive(Clone, Debug)]
pub struct MyPlan {
    pub json: Value,
}

impl MyPlan {
    pub fn parse(text: &str) -> anyhow::Result<MyPlan> {
        let json: Value = serde_json::from_str(text).context("EXPLAIN FORMAT=JSON is not JSON")?;
        Ok(MyPlan { json })
    }

    fn table(&self) -> Option<&Value> {
        fn find(v: &Value) -> Option<&Value> {
            match v {
                Value::Object(m) => {
                    if let Some(t) = m.get("table").filter(|t| t.get("access_type").is_some()) {
                        return Some(t);
                    }
                    m.values().find_map(find)
                }
                Value::Array(a) => a.iter().find_map(find),
                _ => None,
            }
        }
        find(&self.json)
    }

    /// MariaDB's access type: `ALL`, `ref`, `range`, `index`, `const`…
    pub fn access_type(&self) -> Option<String> {
        self.table()?["access_type"].as_str().map(str::to_string)
    }

    pub fn access(&self) -> Option<Access> {
        Some(match self.access_type()?.as_str() {
            "ALL" | "index" => Access::FullScan,
            _ if self.table()?["using_index"] == true => Access::IndexOnly,
            _ => Access::Index,
        })
    }

    pub fn key(&self) -> Option<String> {
        self.table()?["key"].as_str().map(str::to_string)
    }

    /// Rows the engine read (`r_rows` with ANALYZE, else the estimate).
    pub fn rows(&self) -> Option<f64> {
        let t = self.table()?;
        t["r_rows"].as_f64().or_else(|| t["rows"].as_f64())
    }

    /// Total time in ms (ANALYZE only).
    pub fn total_ms(&self) -> Option<f64> {
        fn find(v: &Value) -> Option<f64> {
            match v {
                Value::Object(m) => m
                    .get("r_total_time_ms")
                    .and_then(Value::as_f64)
                    .or_else(|| m.values().find_map(find)),
                Value::Array(a) => a.iter().find_map(find),
                _ => None,
            }
        }
        find(&self.json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_postgres_plans() {
        let seq = PgPlan::parse(
            serde_json::json!([{"Plan": {"Node Type": "Gather", "Plans": [
            {"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Relation Name": "users",
             "Rows Removed by Filter": 333}
        ]}, "Execution Time": 12.5}]),
        )
        .expect("plan");
        assert_eq!(seq.access("users"), Some(Access::FullScan));
        assert_eq!(seq.shape(), "Gather > Seq Scan");
        assert_eq!(seq.execution_ms(), Some(12.5));
        assert_eq!(seq.rows_removed(), 333);
        let bitmap = PgPlan::parse(
            serde_json::json!([{"Plan": {"Node Type": "Bitmap Heap Scan",
                "Relation Name": "users", "Plans": [
                {"Node Type": "Bitmap Index Scan", "Index Name": "users_email_trgm"}
            ]}}]),
        )
        .expect("plan");
        assert_eq!(bitmap.access("users"), Some(Access::Bitmap));
        assert_eq!(bitmap.index_name().as_deref(), Some("users_email_trgm"));
        assert!(PgPlan::parse(serde_json::json!([])).is_err());
    }

    #[test]
    fn reads_mariadb_plans() {
        let p = MyPlan::parse(
            r#"{"query_block": {"select_id": 1, "table": {"table_name": "users",
                "access_type": "ref", "key": "users_email_domain", "rows": 99}}}"#,
        )
        .expect("plan");
        assert_eq!(p.access(), Some(Access::Index));
        assert_eq!(p.key().as_deref(), Some("users_email_domain"));
        assert_eq!(p.rows(), Some(99.0));
        let all = MyPlan::parse(
            r#"{"query_block": {"table": {"table_name": "users", "access_type": "ALL"}}}"#,
        )
        .expect("plan");
        assert_eq!(all.access(), Some(Access::FullScan));
    }
}
