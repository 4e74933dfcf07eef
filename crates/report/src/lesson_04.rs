//! Lesson 4's results → `index_sizes.md` (each index's size and build time),
//! `index_plan_<case>.md` (the PostgreSQL plans) and `index_plan_mariadb.md`.

use std::fmt::Write;

use lab::results::Results;
use lesson_04_indexing::experiment::{
    IndexPlansMariadbResults, IndexPlansResults, IndexSizesResults,
};

use crate::render::experiment_header;

/// The size of each index against the table's, and its build time.
pub fn table_md(s: &IndexSizesResults, quick: bool) -> String {
    let mut md = experiment_header("indexing", IndexSizesResults::FILE, "figures", quick);
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
pub fn plans_md(plans: &IndexPlansResults, quick: bool) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for p in &plans.0 {
        let name = format!("index_plan_{}.md", p.case);
        if !files.iter().any(|(n, _)| *n == name) {
            let head = experiment_header("indexing", IndexPlansResults::FILE, "plans", quick);
            files.push((name.clone(), head));
        }
        if let Some((_, md)) = files.iter_mut().find(|(n, _)| *n == name) {
            let _ = writeln!(md, "**{}**\n\n```text\n{}\n```\n", p.label, p.plan);
        }
    }
    files
}

/// MariaDB's access types per step → `index_plan_mariadb.md`.
pub fn mariadb_md(plans: &IndexPlansMariadbResults, quick: bool) -> String {
    let mut md = experiment_header("indexing", IndexPlansMariadbResults::FILE, "plans", quick);
    md.push_str(
        "| step | `access_type` | key | rows read (`r_rows`) |\n| --- | --- | --- | ---: |\n",
    );
    for p in &plans.0 {
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} |",
            p.label,
            p.access_type.as_deref().unwrap_or("?"),
            p.key
                .as_deref()
                .map_or("–".to_string(), |k| format!("`{k}`")),
            p.rows.map_or("?".to_string(), |r| format!("{r:.0}"))
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_shown_against_the_table() {
        let s = IndexSizesResults {
            rows: 1_000_000,
            table_bytes: 100 * 1024 * 1024,
            indexes: vec![lesson_04_indexing::experiment::IndexSize {
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
