//! Lesson 4's index sizes and build times → `index_sizes.md`.

use std::fmt::Write;

use serde::Deserialize;

use crate::render::experiment_header;

/// What the `indexing` bench wrote (`target/lab-experiments/index_sizes.json`).
#[derive(Debug, Deserialize)]
pub struct Sizes {
    pub rows: i64,
    pub table_bytes: i64,
    pub indexes: Vec<Built>,
}

#[derive(Debug, Deserialize)]
pub struct Built {
    pub name: String,
    pub bytes: i64,
    pub build_ms: f64,
}

pub fn table_md(s: &Sizes, quick: bool) -> String {
    let mut md = experiment_header("indexing", "index_sizes.json", "figures", quick);
    let _ = writeln!(
        md,
        "`users` at {} rows: the table itself is {}.\n\n| index | size | of the table | build time |\n| --- | ---: | ---: | ---: |",
        s.rows,
        lab::units::mib(s.table_bytes.max(0) as u64, 1)
    );
    for index in lesson_04_indexing::indexes::ALL {
        if let Some(b) = s.indexes.iter().find(|b| b.name == index.name) {
            let _ = writeln!(
                md,
                "| {} (`{}`) | {} | {:.0}% | {:.2} s |",
                index.label,
                b.name,
                lab::units::mib(b.bytes.max(0) as u64, 1),
                100.0 * b.bytes as f64 / s.table_bytes.max(1) as f64,
                b.build_ms / 1000.0
            );
        }
    }
    md
}

/// The plans the indexing bench captured, one Markdown file per case:
/// `index_plan_<case>.md`, each step's `EXPLAIN (ANALYZE, BUFFERS)` as psql
/// prints it.
pub fn plans_md(
    plans: &[lesson_04_indexing::cases::Excerpt],
    quick: bool,
) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for p in plans {
        let name = format!("index_plan_{}.md", p.case);
        if !files.iter().any(|(n, _)| *n == name) {
            let head = experiment_header("indexing", "index_plans.json", "plans", quick);
            files.push((name.clone(), head));
        }
        if let Some((_, md)) = files.iter_mut().find(|(n, _)| *n == name) {
            let _ = writeln!(md, "**{}**\n\n```text\n{}\n```\n", p.label, p.plan);
        }
    }
    files
}

/// MariaDB's access types per step → `index_plan_mariadb.md`.
pub fn mariadb_md(plans: &[serde_json::Value], quick: bool) -> String {
    let mut md = experiment_header("indexing", "index_plans_mariadb.json", "plans", quick);
    md.push_str(
        "| step | `access_type` | key | rows read (`r_rows`) |\n| --- | --- | --- | ---: |\n",
    );
    for p in plans {
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} |",
            p["label"].as_str().unwrap_or("?"),
            p["access_type"].as_str().unwrap_or("?"),
            p["key"]
                .as_str()
                .map_or("–".to_string(), |k| format!("`{k}`")),
            p["rows"]
                .as_f64()
                .map_or("?".to_string(), |r| format!("{r:.0}"))
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_shown_against_the_table() {
        let s = Sizes {
            rows: 1_000_000,
            table_bytes: 100 * 1024 * 1024,
            indexes: vec![Built {
                name: "users_email_trgm".into(),
                bytes: 50 * 1024 * 1024,
                build_ms: 4200.0,
            }],
        };
        let md = table_md(&s, false);
        assert!(
            md.contains("| pg_trgm GIN (`users_email_trgm`) | 50.0 MiB | 50% | 4.20 s |"),
            "{md}"
        );
        assert!(table_md(&s, true).contains(crate::render::QUICK_MARKER));
    }
}
