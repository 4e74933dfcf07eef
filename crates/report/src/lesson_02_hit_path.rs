//! Lesson 2's hit path under load (the `hit_path` bench) → `hit_path.md`
//! and `hit_path.svg`: every target's requests a second at 32 connections
//! beside its server's CPU time per request.

use std::path::Path;

use lab::results::Results;
use lesson_06_http_edge::experiment::hit_path::{HitPathResults, HitRow};

use crate::lesson_06_load::two_panels;
use crate::render::{QUICK_MARKER, experiment_header};

/// The table, the targets and the run's conditions, under the header that
/// says where they came from.
pub fn table_md(r: &HitPathResults, quick: bool) -> String {
    experiment_header("hit_path", HitPathResults::FILE, "figures", quick) + &r.table_md()
}

/// Two panels, one bar per target (medians over the rounds): requests a
/// second with 32 connections, and the server's CPU time per request.
pub fn chart_svg(r: &HitPathResults, path: &Path, quick: bool) -> anyhow::Result<()> {
    let rows: Vec<(&str, Option<f64>, Option<f64>)> = HitRow::ALL
        .iter()
        .filter_map(|&row| r.get(row))
        .map(|t| (short(t.row), r.rps(t.row), r.cpu(t.row)))
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let rps: Vec<Option<f64>> = rows.iter().map(|r| r.1).collect();
    let cpu: Vec<Option<f64>> = rows.iter().map(|r| r.2).collect();
    let title = if quick {
        format!("hit_path ({QUICK_MARKER})")
    } else {
        "A Redis HIT through each stack, 32 connections (medians over the rounds)".to_string()
    };
    two_panels(path, (1100, 460), &title, &names, &rps, &cpu)
}

/// A label short enough for a bar.
fn short(row: HitRow) -> &'static str {
    match row {
        HitRow::NginxStatic => "nginx",
        HitRow::AxumConstant => "axum",
        HitRow::Lesson2Healthz => "L2 healthz",
        HitRow::MinimalHit => "floor",
        HitRow::Lesson2HitWarn => "L2 warn",
        HitRow::Lesson2HitInfo => "L2 default",
        HitRow::Lesson2HitDebug => "L2 debug",
        HitRow::Lesson3FreshHit => "L3 fresh",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_names_every_target_and_the_table_its_ratios() {
        // A quick run's results, as the bench wrote them.
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/hit_path.json"
        ))
        .expect("the fixture");
        let r: HitPathResults = serde_json::from_str(&text).expect("the results file's shape");
        let path = std::env::temp_dir().join(format!("hit_path-{}.svg", std::process::id()));
        chart_svg(&r, &path, true).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        std::fs::remove_file(&path).ok();
        for name in HitRow::ALL.map(short).into_iter().chain([QUICK_MARKER]) {
            assert!(svg.contains(name), "the chart shows {name}");
        }
        let md = table_md(&r, false);
        assert!(!md.contains(QUICK_MARKER), "{md}");
        assert!(md.contains("| minimal hit path (floor) |"), "{md}");
        assert!(md.contains("÷ the floor's"), "{md}");
    }
}
