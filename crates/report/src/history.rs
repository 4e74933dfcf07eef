//! Every full run of this edition, kept: ranges "across N runs" come from
//! here, never from memory.
//!
//! After a full `just report`, [`record`] stores the run's numbers (every
//! numeric cell of every generated table, keyed by file, row and column)
//! in `book/history/run-NN.json`, and [`history_md`] renders them into
//! `generated/history.md`: per table row, each run's value and the range,
//! over all runs and per CPU. The appendix "Every run of this edition"
//! includes it. A quick run is never recorded.
//!
//! The runs made before the history existed are imported once from git
//! (`just report --history-import COMMIT`): each commit that changed
//! `generated/stamp.md` holds that run's tables; runs are told apart by the
//! stamp's "measured" line.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::claims::{Quantity, key, parse_quantity, tables};

/// One run's numbers: file → row → column → the cell's text.
pub type Cells = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

/// One full run of `just report`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Run {
    /// 1 for the edition's first run.
    pub n: u32,
    /// The stamp's "measured" line: when, and on which commit.
    pub measured: String,
    /// The stamp's "CPU" line.
    pub cpu: String,
    pub cells: Cells,
}

impl Run {
    /// "Intel Xeon" or "AMD EPYC": the machine kind, short.
    pub fn machine(&self) -> &'static str {
        if self.cpu.contains("EPYC") {
            "AMD EPYC"
        } else if self.cpu.contains("Xeon") {
            "Intel Xeon"
        } else {
            "other"
        }
    }
}

/// Columns that are not a result (a label, or an interval around one).
fn skip_column(header: &str) -> bool {
    let h = header.to_ascii_lowercase();
    h.contains("what it measures")
        || h.contains("ci of")
        || h.contains("interval")
        || h.contains("setup")
}

/// Whether a generated file's numbers are a run's results (not its claims,
/// its stamp or this history itself).
fn recorded(name: &str) -> bool {
    name != "stamp" && name != "history" && !name.starts_with("claims_")
}

/// The numeric cells of one generated file's tables.
pub fn snapshot_file(md: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut rows = BTreeMap::new();
    for t in tables(md) {
        // Rows are keyed by their first cell, or by the first two where the
        // first repeats (lesson 3's outage table: variant | phase).
        let firsts: Vec<String> = t
            .rows
            .iter()
            .filter_map(|r| r.first())
            .map(|c| key(c))
            .collect();
        let repeats = firsts
            .iter()
            .enumerate()
            .any(|(i, f)| firsts[..i].contains(f));
        for r in &t.rows {
            let Some(first) = r.first() else { continue };
            let row = match (repeats, r.get(1)) {
                (true, Some(second)) => format!("{}|{}", key(first), key(second)),
                _ => key(first),
            };
            let cols: &mut BTreeMap<String, String> = rows.entry(row).or_default();
            for (h, cell) in t.headers.iter().zip(r).skip(if repeats { 2 } else { 1 }) {
                // A header that repeats keeps its first column, as a claim
                // reads it.
                if !skip_column(h) && parse_quantity(cell).is_some() {
                    cols.entry(key(h)).or_insert_with(|| cell.clone());
                }
            }
        }
    }
    rows.retain(|_, cols| !cols.is_empty());
    rows
}

/// The stamp's `| measured | … |` and `| CPU | … |` values.
fn stamp_lines(stamp: &str) -> (Option<String>, Option<String>) {
    let field = |name: &str| {
        stamp.lines().find_map(|l| {
            let rest = l.strip_prefix(&format!("| {name} | "))?;
            Some(rest.trim_end_matches('|').trim().to_string())
        })
    };
    (field("measured"), field("CPU"))
}

/// Snapshots a directory of generated files (skipping claims and the stamp).
fn snapshot_dir(dir: &Path) -> anyhow::Result<Cells> {
    let mut cells = Cells::new();
    for (file, md) in crate::prose::chapters(dir)? {
        let name = file.trim_end_matches(".md");
        if !recorded(name) {
            continue;
        }
        let rows = snapshot_file(&md);
        if !rows.is_empty() {
            cells.insert(name.to_string(), rows);
        }
    }
    Ok(cells)
}

/// Every recorded run, in order.
pub fn load(history: &Path) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    let Ok(dir) = std::fs::read_dir(history) else {
        return Ok(runs);
    };
    for e in dir.filter_map(Result::ok) {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p)?;
            runs.push(
                serde_json::from_str::<Run>(&text)
                    .with_context(|| format!("{} is not a recorded run", p.display()))?,
            );
        }
    }
    runs.sort_by_key(|r| r.n);
    Ok(runs)
}

fn save(history: &Path, run: &Run) -> anyhow::Result<()> {
    std::fs::create_dir_all(history)?;
    let path = history.join(format!("run-{:02}.json", run.n));
    std::fs::write(&path, serde_json::to_string_pretty(run)? + "\n")
        .with_context(|| format!("Failed to write {}", path.display()))
}

/// Records the run whose files are in `generated` (a full run's), replacing
/// a run with the same "measured" line (`just report --reuse`).
pub fn record(history: &Path, generated: &Path) -> anyhow::Result<Run> {
    let stamp = std::fs::read_to_string(generated.join("stamp.md")).context("no stamp.md")?;
    let (Some(measured), Some(cpu)) = stamp_lines(&stamp) else {
        bail!("stamp.md has no measured or CPU line");
    };
    let runs = load(history)?;
    let n = runs
        .iter()
        .find(|r| r.measured == measured)
        .map(|r| r.n)
        .unwrap_or_else(|| runs.iter().map(|r| r.n).max().unwrap_or(0) + 1);
    let run = Run {
        n,
        measured,
        cpu,
        cells: snapshot_dir(generated)?,
    };
    save(history, &run)?;
    Ok(run)
}

fn git(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .context("Failed to run git")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Imports the runs committed before the history existed: every commit
/// from `since` on that changed `generated/stamp.md` with a new "measured"
/// line. Replaces what `history` holds. Returns the runs.
pub fn import_git(root: &Path, history: &Path, since: &str) -> anyhow::Result<Vec<Run>> {
    let range = format!("{since}^..HEAD");
    let commits = git(
        root,
        &[
            "log",
            "--reverse",
            "--format=%H",
            &range,
            "--",
            "book/src/generated/stamp.md",
        ],
    )?;
    let mut runs: Vec<Run> = Vec::new();
    for c in commits.lines() {
        let stamp = git(root, &["show", &format!("{c}:book/src/generated/stamp.md")])?;
        if stamp.contains(crate::render::QUICK_MARKER) {
            continue;
        }
        let (Some(measured), Some(cpu)) = stamp_lines(&stamp) else {
            continue;
        };
        if runs.iter().any(|r| r.measured == measured) {
            continue;
        }
        let mut cells = Cells::new();
        for f in git(root, &["ls-tree", "--name-only", c, "book/src/generated/"])?.lines() {
            let Some(name) = f
                .strip_prefix("book/src/generated/")
                .and_then(|n| n.strip_suffix(".md"))
            else {
                continue;
            };
            if !recorded(name) {
                continue;
            }
            let rows = snapshot_file(&git(root, &["show", &format!("{c}:{f}")])?);
            if !rows.is_empty() {
                cells.insert(name.to_string(), rows);
            }
        }
        runs.push(Run {
            n: runs.len() as u32 + 1,
            measured,
            cpu,
            cells,
        });
    }
    if runs.is_empty() {
        bail!("no full run's stamp.md was committed from {since} on");
    }
    if history.exists() {
        for e in std::fs::read_dir(history)?.filter_map(Result::ok) {
            if e.path().extension().is_some_and(|x| x == "json") {
                std::fs::remove_file(e.path())?;
            }
        }
    }
    for r in &runs {
        save(history, r)?;
    }
    Ok(runs)
}

fn range(values: &[Quantity]) -> Option<(Quantity, Quantity)> {
    let lo = values
        .iter()
        .copied()
        .reduce(|a, b| if b.value < a.value { b } else { a })?;
    let hi = values
        .iter()
        .copied()
        .reduce(|a, b| if b.value > a.value { b } else { a })?;
    Some((lo, hi))
}

fn range_text(values: &[Quantity]) -> String {
    match range(values) {
        Some((lo, hi)) if lo == hi => lo.to_string(),
        Some((lo, hi)) => format!("{lo} – {hi}"),
        None => "–".into(),
    }
}

/// The appendix's tables: per generated file, per row and column, each
/// run's value and the ranges.
pub fn history_md(runs: &[Run]) -> String {
    let mut md = String::from(
        "<!-- generated by `just report` from book/history/run-*.json; do not edit -->\n",
    );
    md.push_str("| run | measured | CPU |\n| ---: | --- | --- |\n");
    for r in runs {
        md.push_str(&format!("| {} | {} | {} |\n", r.n, r.measured, r.machine()));
    }
    // Every (file, row, column) any run has, in order.
    let mut keys: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for r in runs {
        for (file, rows) in &r.cells {
            for (row, cols) in rows {
                let v = keys.entry(file).or_default().entry(row).or_default();
                for c in cols.keys() {
                    if !v.contains(&c.as_str()) {
                        v.push(c);
                    }
                }
            }
        }
    }
    for (file, rows) in keys {
        md.push_str(&format!("\n### `{file}`\n\n"));
        md.push_str(
            "| row | column | every run, first to last | range | Intel Xeon | AMD EPYC |\n",
        );
        md.push_str("| --- | --- | --- | --- | --- | --- |\n");
        for (row, cols) in rows {
            for col in cols {
                let mut all = Vec::new();
                let mut by_machine: BTreeMap<&str, Vec<Quantity>> = BTreeMap::new();
                let mut each = Vec::new();
                for r in runs {
                    let q = r
                        .cells
                        .get(file)
                        .and_then(|rows| rows.get(row))
                        .and_then(|cols| cols.get(col))
                        .and_then(|cell| parse_quantity(cell));
                    match q {
                        Some(q) => {
                            all.push(q);
                            by_machine.entry(r.machine()).or_default().push(q);
                            each.push(q.to_string());
                        }
                        None => each.push("·".into()),
                    }
                }
                let m = |name: &str| {
                    by_machine
                        .get(name)
                        .map(|v| range_text(v))
                        .unwrap_or_else(|| "–".into())
                };
                md.push_str(&format!(
                    "| `{}` | {} | {} | {} over {} runs | {} | {} |\n",
                    row.replace('|', " \\| "),
                    col.replace('|', "\\|"),
                    each.join(" · "),
                    range_text(&all),
                    all.len(),
                    m("Intel Xeon"),
                    m("AMD EPYC"),
                ));
            }
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUFFIX: &str = "| bench | what it measures | median | 95% CI of the median | speed-up |
| --- | --- | ---: | ---: | ---: |
| `seq_scan` | no index | 96.99 ms | 96.10 ms – 98.48 ms | |
| `trgm_gin` | pg_trgm GIN index | 1.26 ms | 1.22 ms – 1.29 ms | 76.8× vs `seq_scan` |
";

    #[test]
    fn a_snapshot_keeps_the_results_and_not_the_labels() {
        let rows = snapshot_file(SUFFIX);
        assert_eq!(rows["seq_scan"].keys().collect::<Vec<_>>(), ["median"]);
        assert_eq!(rows["trgm_gin"]["speed-up"], "76.8× vs `seq_scan`");
        assert!(!rows["trgm_gin"].contains_key("95% CI of the median"));
        // A repeated first cell keys rows by the first two.
        let outage = "| variant | phase | p99 |\n| --- | --- | ---: |\n| a | before | 1 ms |\n| a | during | 250 ms |\n";
        let rows = snapshot_file(outage);
        assert_eq!(rows["a|during"]["p99"], "250 ms");
    }

    #[test]
    fn runs_are_recorded_once_per_stamp_and_rendered_with_their_ranges() {
        let root = std::env::temp_dir().join(format!("report-history-{}", std::process::id()));
        let (generated, history) = (root.join("generated"), root.join("history"));
        std::fs::create_dir_all(&generated).expect("a scratch directory");
        let stamp = |when: &str, cpu: &str| {
            format!("| | |\n| --- | --- |\n| measured | {when} |\n| CPU | {cpu} × 2 cores |\n")
        };
        std::fs::write(generated.join("index_suffix.md"), SUFFIX).expect("write");
        std::fs::write(
            generated.join("stamp.md"),
            stamp("day 1", "Intel(R) Xeon(R) Processor"),
        )
        .expect("write");
        assert_eq!(record(&history, &generated).expect("record").n, 1);
        // The same run again (--reuse) replaces it.
        assert_eq!(record(&history, &generated).expect("record").n, 1);
        std::fs::write(
            generated.join("index_suffix.md"),
            SUFFIX.replace("76.8×", "95.0×"),
        )
        .expect("write");
        std::fs::write(generated.join("stamp.md"), stamp("day 2", "AMD EPYC")).expect("write");
        assert_eq!(record(&history, &generated).expect("record").n, 2);
        let runs = load(&history).expect("load");
        let _ = std::fs::remove_dir_all(&root);
        let md = history_md(&runs);
        assert!(md.contains("| `trgm_gin` | speed-up | 76.8× · 95.0× | 76.8× – 95.0× over 2 runs | 76.8× | 95.0× |"), "{md}");
    }
}
