//! Lesson 6's experiment 1 (the `edge_load` bench) → `edge_load.md` and
//! `edge_load.svg`: an edge HIT against the origin's Redis HIT and nginx
//! static, throughput and CPU time per request side by side.

use std::path::Path;

use lab::results::Results;
use lesson_06_http_edge::experiment::load::{LoadResults, Target};
use plotters::prelude::*;

use crate::render::{QUICK_MARKER, experiment_header};

/// The table and its ratio lines, under the header that says where they
/// came from.
pub fn table_md(r: &LoadResults, quick: bool) -> String {
    experiment_header("edge_load", LoadResults::FILE, "figures", quick) + &r.table_md()
}

/// Two panels, one bar per target: requests per second with 32
/// connections (higher is better), and the serving process's CPU time per
/// request (lower is better), the steadier of the two on 2 cores.
pub fn chart_svg(r: &LoadResults, path: &Path, quick: bool) -> anyhow::Result<()> {
    let rows: Vec<(&str, f64, Option<f64>)> = Target::ALL
        .iter()
        .filter_map(|&t| r.get(t))
        .map(|t| {
            (
                short(t.target),
                t.throughput.wrk.rps(),
                t.throughput.cpu_us_per_request,
            )
        })
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let rps: Vec<Option<f64>> = rows.iter().map(|r| Some(r.1)).collect();
    let cpu: Vec<Option<f64>> = rows.iter().map(|r| r.2).collect();
    let title = if quick {
        format!("edge_load ({QUICK_MARKER})")
    } else {
        "An edge HIT, the origin's Redis HIT and nginx static (32 connections)".to_string()
    };
    two_panels(path, (900, 420), &title, &names, &rps, &cpu)
}

/// The two panels side by side under `title`: requests per second (blue)
/// and the server's CPU time per request (orange), a bar per name.
pub(crate) fn two_panels(
    path: &Path,
    size: (u32, u32),
    title: &str,
    names: &[&str],
    rps: &[Option<f64>],
    cpu: &[Option<f64>],
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, size).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let root = root.titled(title, ("sans-serif", 20))?;
        let (left, right) = root.split_horizontally(size.0 / 2);
        let blue = RGBColor(0x3b, 0x6e, 0xa5);
        let orange = RGBColor(0xc0, 0x6c, 0x2b);
        panel(
            &left,
            names,
            rps,
            "requests per second (higher is better)",
            blue,
        )
        .map_err(|e| e.to_string())?;
        panel(
            &right,
            names,
            cpu,
            "server CPU µs per request (lower is better)",
            orange,
        )
        .map_err(|e| e.to_string())?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("Failed to draw {}: {e}", path.display()))
}

/// One panel: a bar per name (none where the value is missing).
fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    names: &[&str],
    values: &[Option<f64>],
    desc: &str,
    colour: RGBColor,
) -> Result<(), Box<dyn std::error::Error>> {
    let max = values.iter().flatten().fold(1.0_f64, |m, &v| m.max(v)) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        // `0..n-1` segmented gives exactly n bars (0..n would add an empty one).
        .build_cartesian_2d(
            (0..names.len().saturating_sub(1)).into_segmented(),
            0.0..max,
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).map(|s| s.to_string()).unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_desc(desc)
        .label_style(("sans-serif", 13))
        .draw()?;
    chart.draw_series(
        Histogram::vertical(&chart)
            .style(colour.filled())
            .margin(24)
            .data(
                values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (i, v))),
            ),
    )?;
    Ok(())
}

/// A label short enough for a bar.
fn short(t: Target) -> &'static str {
    match t {
        Target::EdgeHit => "edge HIT",
        Target::OriginRedisHit => "origin Redis HIT",
        Target::NginxStatic => "nginx static",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> LoadResults {
        let text = r#"{
          "quick": true, "warmup_s": 1.0, "measure_s": 2.0,
          "placement": {"client_cpus": [0], "server_cpus": [1], "wrk_allowed": "0",
                        "nginx_worker_allowed": "1", "origin_thread_allowed": "1", "cores": 2},
          "wrk_version": "wrk debian/4.1.0", "edge_origin_requests": 1, "redis_origin_db_queries": 1,
          "targets": [
            {"target": "edge_hit", "path": "/users/42", "body_bytes": 70,
             "latency": {"shape": {"connections": 1, "threads": 1}, "wrk": {"requests": 20000, "duration_us": 2000000, "bytes": 9000000, "connect_errors": 0, "read_errors": 0, "write_errors": 0, "status_errors": 0, "timeouts": 0, "p50_us": 80, "p90_us": 95, "p99_us": 150, "max_us": 900, "mean_us": 85.0}, "cpu_us_per_request": 30.0},
             "throughput": {"shape": {"connections": 32, "threads": 1}, "wrk": {"requests": 60000, "duration_us": 2000000, "bytes": 27000000, "connect_errors": 0, "read_errors": 0, "write_errors": 0, "status_errors": 0, "timeouts": 0, "p50_us": 900, "p90_us": 1000, "p99_us": 1500, "max_us": 9000, "mean_us": 950.0}, "cpu_us_per_request": 25.0}},
            {"target": "nginx_static", "path": "/static/user-42.json", "body_bytes": 70,
             "latency": {"shape": {"connections": 1, "threads": 1}, "wrk": {"requests": 24000, "duration_us": 2000000, "bytes": 9000000, "connect_errors": 0, "read_errors": 0, "write_errors": 0, "status_errors": 0, "timeouts": 0, "p50_us": 70, "p90_us": 85, "p99_us": 140, "max_us": 800, "mean_us": 75.0}, "cpu_us_per_request": 20.0},
             "throughput": {"shape": {"connections": 32, "threads": 1}, "wrk": {"requests": 80000, "duration_us": 2000000, "bytes": 27000000, "connect_errors": 0, "read_errors": 0, "write_errors": 0, "status_errors": 0, "timeouts": 0, "p50_us": 700, "p90_us": 800, "p99_us": 1200, "max_us": 8000, "mean_us": 750.0}, "cpu_us_per_request": null}}
          ]
        }"#;
        serde_json::from_str(text).expect("the results file's shape")
    }

    #[test]
    fn the_chart_names_each_target_and_the_quick_marker_shows() {
        let path = std::env::temp_dir().join(format!("edge_load-{}.svg", std::process::id()));
        chart_svg(&results(), &path, true).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        std::fs::remove_file(&path).ok();
        assert!(svg.starts_with("<svg"));
        for name in ["edge HIT", "nginx static", QUICK_MARKER] {
            assert!(svg.contains(name), "the chart shows {name}");
        }
        let md = table_md(&results(), true);
        assert!(md.contains(QUICK_MARKER), "{md}");
        assert!(
            md.contains("edge HIT / nginx static: throughput 0.75×"),
            "{md}"
        );
        assert!(!table_md(&results(), false).contains(QUICK_MARKER));
    }
}
