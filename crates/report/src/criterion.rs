//! Reading criterion's saved results: `target/criterion/<group>/<bench>/new/`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use serde::Deserialize;

/// One bench's median and its 95% confidence interval, in nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub bench: String,
    pub median_ns: f64,
    pub lower_ns: f64,
    pub upper_ns: f64,
    /// When criterion wrote it.
    pub modified: SystemTime,
}

#[derive(Deserialize)]
struct Estimates {
    median: Stat,
}

#[derive(Deserialize)]
struct Stat {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Deserialize)]
struct BenchmarkId {
    group_id: String,
    function_id: Option<String>,
    value_str: Option<String>,
}

impl BenchmarkId {
    /// `function`, `function/parameter` or `parameter`, as criterion shows it.
    fn bench(self) -> String {
        match (self.function_id, self.value_str) {
            (Some(f), Some(v)) => format!("{f}/{v}"),
            (Some(f), None) => f,
            (None, v) => v.unwrap_or_default(),
        }
    }
}

/// Every bench of `group` that criterion has results for.
pub fn read_group(criterion_dir: &Path, group: &str) -> anyhow::Result<Vec<Estimate>> {
    let mut out = Vec::new();
    for new_dir in new_dirs(criterion_dir)? {
        let id: BenchmarkId = read_json(&new_dir.join("benchmark.json"))?;
        if id.group_id != group {
            continue;
        }
        let path = new_dir.join("estimates.json");
        let e: Estimates = read_json(&path)?;
        out.push(Estimate {
            bench: id.bench(),
            median_ns: e.median.point_estimate,
            lower_ns: e.median.confidence_interval.lower_bound,
            upper_ns: e.median.confidence_interval.upper_bound,
            modified: std::fs::metadata(&path)?.modified()?,
        });
    }
    Ok(out)
}

// Criterion nests `group/bench/new`, or `group/bench/param/new` for
// parameterised benches: find every `new` directory with results in it.
fn new_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if !p.is_dir() {
                continue;
            }
            if p.file_name().is_some_and(|n| n == "new") && p.join("estimates.json").exists() {
                found.push(p);
            } else if p
                .file_name()
                .is_some_and(|n| n != "base" && n != "change" && n != "report")
            {
                stack.push(p);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("Failed to read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not criterion's format", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_layout() {
        let dir = tempfile_dir();
        let new = dir.join("lesson_01/naive_get_user/new");
        std::fs::create_dir_all(&new).expect("mkdir");
        std::fs::write(
            new.join("benchmark.json"),
            r#"{"group_id":"lesson_01","function_id":"naive_get_user","value_str":null,"throughput":null,"full_id":"lesson_01/naive_get_user","directory_name":"lesson_01/naive_get_user","title":"lesson_01/naive_get_user"}"#,
        )
        .expect("write");
        std::fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1},
                "median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":299500.0,"upper_bound":302000.0},"point_estimate":300700.0,"standard_error":10.0}}"#,
        )
        .expect("write");
        let got = read_group(&dir, "lesson_01").expect("read");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].bench, "naive_get_user");
        assert_eq!(
            (got[0].median_ns, got[0].lower_ns, got[0].upper_ns),
            (300700.0, 299500.0, 302000.0)
        );
        assert!(read_group(&dir, "other").expect("read").is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("report-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("tempdir");
        d
    }
}
