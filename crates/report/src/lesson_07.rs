//! Lesson 7 → from the `stampede` bench (`stampede.json`):
//! `stampede_herd.md`, `stampede_baseline.md`, `stampede_jitter.md`,
//! `stampede_negative.md`, and two charts of the database's loads per
//! second over time: `stampede_qps.svg` (the herd, one line per strategy)
//! and `stampede_jitter.svg` (mass expiry, with and without jitter).
//!
//! The tables are the lesson's ([`StampedeResults`]'s methods), so `just
//! lesson-7` prints the same ones.

use std::path::Path;

use lab::results::Results;
use lesson_07_stampede::Strategy;
use lesson_07_stampede::experiment::StampedeResults;
use plotters::prelude::*;

use crate::render::{QUICK_MARKER, experiment_header};

/// Each Markdown file's name and contents, under the header that says
/// where it came from (and, for a quick run, that it is not the book's).
/// A quick run has no baseline: its file says where the table comes from.
pub fn files(r: &StampedeResults, quick: bool) -> Vec<(&'static str, String)> {
    let head = experiment_header("stampede", StampedeResults::FILE, "figures", quick);
    [
        ("stampede_herd.md", r.herd_setup_md() + "\n" + &r.herd_md()),
        (
            "stampede_baseline.md",
            if r.baseline.is_empty() {
                r.baseline_setup_md()
            } else {
                r.baseline_setup_md() + "\n" + &r.baseline_md()
            },
        ),
        (
            "stampede_jitter.md",
            r.jitter_setup_md() + "\n" + &r.jitter_md(),
        ),
        (
            "stampede_negative.md",
            r.negative_setup_md() + "\n" + &r.negative_md(),
        ),
    ]
    .into_iter()
    .map(|(name, md)| (name, head.clone() + &md))
    .collect()
}

/// One line of a chart: its legend, colour and loads per bucket.
struct Line<'a> {
    label: String,
    colour: RGBColor,
    buckets: &'a [u32],
    bucket_ms: u64,
}

const COLOURS: [RGBColor; 4] = [
    RGBColor(0xc0, 0x39, 0x2b), // naive: red, the herd
    RGBColor(0x3b, 0x6e, 0xa5),
    RGBColor(0x27, 0x8a, 0x4b),
    RGBColor(0x8e, 0x44, 0xad),
];

fn colour(s: Strategy) -> RGBColor {
    match s {
        Strategy::Naive => COLOURS[0],
        Strategy::SingleFlight => COLOURS[1],
        Strategy::XFetch => COLOURS[2],
        Strategy::Lease => COLOURS[3],
    }
}

/// `stampede_qps.svg`: the herd experiment's loads per second, one line
/// per strategy.
pub fn qps_svg(r: &StampedeResults, path: &Path, quick: bool) -> anyhow::Result<()> {
    let lines = r
        .herd
        .iter()
        .map(|h| Line {
            label: h.strategy.name().to_string(),
            colour: colour(h.strategy),
            buckets: &h.timeline,
            bucket_ms: h.bucket_ms,
        })
        .collect();
    let ttl = r.herd.first().map(|h| h.shape.ttl.as_secs_f64());
    chart(
        path,
        if quick {
            format!("stampede_qps ({QUICK_MARKER})")
        } else {
            "Database loads per second, hot keys expiring under load".to_string()
        },
        "seconds since the run started",
        lines,
        ttl,
    )
}

/// `stampede_jitter.svg`: the mass-expiry experiment's loads per second
/// after the warm-up, with and without jitter.
pub fn jitter_svg(r: &StampedeResults, path: &Path, quick: bool) -> anyhow::Result<()> {
    let lines = r
        .jitter
        .iter()
        .enumerate()
        .map(|(i, j)| Line {
            label: if j.jitter == 0.0 {
                "no jitter".to_string()
            } else {
                format!("jitter {:.0}% of the TTL", j.jitter * 100.0)
            },
            colour: COLOURS[if i == 0 { 0 } else { 1 }],
            buckets: &j.timeline,
            bucket_ms: j.bucket_ms,
        })
        .collect();
    chart(
        path,
        if quick {
            format!("stampede_jitter ({QUICK_MARKER})")
        } else {
            "Database loads per second after 1,000 keys were written together".to_string()
        },
        "seconds since the warm-up ended",
        lines,
        None,
    )
}

/// Loads per second (each bucket's count scaled to a second) against time,
/// a line per run; dashed verticals every `ttl` s, when given (the herd's
/// expiries).
fn chart(
    path: &Path,
    title: String,
    x_desc: &str,
    lines: Vec<Line>,
    ttl: Option<f64>,
) -> anyhow::Result<()> {
    let per_s = |l: &Line, n: u32| f64::from(n) * 1000.0 / l.bucket_ms.max(1) as f64;
    let points = |l: &Line| -> Vec<(f64, f64)> {
        l.buckets
            .iter()
            .enumerate()
            .map(|(i, &n)| ((i as f64 + 0.5) * l.bucket_ms as f64 / 1000.0, per_s(l, n)))
            .collect()
    };
    let end = lines
        .iter()
        .map(|l| l.buckets.len() as f64 * l.bucket_ms as f64 / 1000.0)
        .fold(1.0, f64::max);
    let top = lines
        .iter()
        .flat_map(|l| l.buckets.iter().map(|&n| per_s(l, n)))
        .fold(10.0, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let area = root.titled(&title, ("sans-serif", 20))?;
        let (legend_row, area) = area.split_vertically(30);
        legend(&legend_row, &lines)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .margin_right(20)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..end, 0.0..top)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .y_desc("database loads per second")
            .x_desc(x_desc)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 14))
            .draw()?;
        if let Some(ttl) = ttl.filter(|t| *t > 0.0) {
            let mut t = ttl;
            while t < end {
                chart.draw_series(DashedLineSeries::new(
                    [(t, 0.0), (t, top)],
                    5,
                    4,
                    BLACK.mix(0.3).stroke_width(1),
                ))?;
                t += ttl;
            }
        }
        for l in &lines {
            chart.draw_series(LineSeries::new(points(l), l.colour.stroke_width(2)))?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("Failed to draw {}: {e}", path.display()))
}

/// The legend, one row under the title, outside the plot: it covers no
/// line wherever the peaks are.
fn legend<'a>(
    area: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    lines: &[Line],
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let text = TextStyle::from(("sans-serif", 14).into_font()).pos(
        plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Left,
            plotters::style::text_anchor::VPos::Center,
        ),
    );
    let y = 14;
    let mut x = 80;
    for l in lines {
        area.draw(&PathElement::new(
            vec![(x, y), (x + 22, y)],
            l.colour.stroke_width(3),
        ))?;
        area.draw(&Text::new(l.label.clone(), (x + 28, y), text.clone()))?;
        x += 40 + 8 * l.label.chars().count() as i32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lesson_07_stampede::experiment::Plan;
    use lesson_07_stampede::experiment::herd::{HerdRow, Shape};
    use lesson_07_stampede::experiment::jitter::JitterRow;
    use lesson_07_stampede::experiment::negative::NegativeRow;
    use std::time::Duration;

    fn herd_row(strategy: Strategy, shape: Shape, loads: u64) -> HerdRow {
        let ideal = shape.ideal_refreshes();
        HerdRow {
            strategy,
            shape,
            requests: 20_000,
            errors: 0,
            db_queries: loads,
            pg_calls: loads as i64,
            overlapping: loads / 2,
            misses: loads,
            coalesced: 0,
            early: if strategy == Strategy::XFetch {
                loads
            } else {
                0
            },
            lease_timeouts: 0,
            redis_errors: 0,
            ideal_refreshes: ideal,
            per_refresh: loads as f64 / ideal as f64,
            p50_ms: 8.0,
            p99_ms: 90.0,
            max_ms: 150.0,
            queued: 3,
            timeline: (0..40)
                .map(|i| if i % 10 == 0 { loads as u32 / 4 } else { 0 })
                .collect(),
            bucket_ms: 100,
        }
    }

    fn results(long: bool) -> StampedeResults {
        let shape = Shape::herd(Duration::from_secs(4));
        let herd = Strategy::ALL
            .into_iter()
            .zip([650, 120, 140, 40])
            .map(|(s, n)| herd_row(s, shape, n))
            .collect();
        let baseline = if long {
            let shape = lesson_07_stampede::experiment::baseline::shape(Duration::from_secs(20));
            Strategy::ALL
                .into_iter()
                .zip([480, 38, 35, 10])
                .map(|(s, n)| herd_row(s, shape, n))
                .collect()
        } else {
            Vec::new()
        };
        let jitter = [0.0, 0.25]
            .into_iter()
            .map(|jitter| JitterRow {
                jitter,
                keys: 1000,
                clients: 64,
                instances: 4,
                ttl_ms: 4000,
                latency_ms: 20,
                warmup_ms: 600.0,
                warmup_loads: 1000,
                duration_ms: 6000,
                requests: 30_000,
                errors: 0,
                db_queries: 1300,
                pg_calls: 1300,
                peak: if jitter == 0.0 { 140 } else { 70 },
                peak_at_s: 3.8,
                p99_ms: 50.0,
                max_ms: 90.0,
                timeline: vec![0, 0, 10, 140, 20, 0],
                bucket_ms: 100,
            })
            .collect();
        let negative = [10, 0]
            .into_iter()
            .map(|ttl| NegativeRow {
                negative_ttl_s: ttl,
                ids: 100,
                clients: 32,
                instances: 4,
                latency_ms: 20,
                duration_ms: 2000,
                requests: 3000,
                errors: 0,
                db_queries: if ttl > 0 { 300 } else { 2400 },
                pg_calls: if ttl > 0 { 300 } else { 2399 },
                negative_hits: if ttl > 0 { 2700 } else { 0 },
                p50_ms: 20.0,
                p99_ms: 40.0,
            })
            .collect();
        StampedeResults {
            plan: if long { Plan::long() } else { Plan::short() },
            wall_s: 40.0,
            herd,
            baseline,
            jitter,
            negative,
        }
    }

    #[test]
    fn every_file_is_written_and_quick_runs_are_marked() {
        let quick = files(&results(false), true);
        let names: Vec<&str> = quick.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "stampede_herd.md",
                "stampede_baseline.md",
                "stampede_jitter.md",
                "stampede_negative.md"
            ]
        );
        assert!(quick.iter().all(|(_, md)| md.contains(QUICK_MARKER)));
        let baseline = &quick[1].1;
        assert!(
            baseline.contains("long-run table") && !baseline.contains("| ours |"),
            "{baseline}"
        );
        let herd = &quick[0].1;
        assert!(herd.contains("| naive | 20000 | 0 | 650 | 650 |"), "{herd}");
        assert!(herd.contains("A perfect cache makes 40 loads"), "{herd}");
        let negative = &quick[3].1;
        assert!(
            negative.contains("2399 (≠)"),
            "a differing count is flagged: {negative}"
        );

        let book = files(&results(true), false);
        assert!(book.iter().all(|(_, md)| !md.contains(QUICK_MARKER)));
        let baseline = &book[1].1;
        assert!(baseline.contains("| naive | plain | 480 |"), "{baseline}");
        assert!(baseline.contains("| 484 | 471 (97%) |"), "{baseline}");
        assert!(
            baseline.contains("| not run | XFetch + lock |"),
            "{baseline}"
        );
        assert!(baseline.contains("none (their workers were separate processes)"));
    }

    #[test]
    fn the_charts_name_every_line_and_quick_runs_are_marked() {
        let r = results(false);
        let dir = std::env::temp_dir();
        let qps = dir.join(format!("stampede-qps-{}.svg", std::process::id()));
        let jitter = dir.join(format!("stampede-jitter-{}.svg", std::process::id()));
        qps_svg(&r, &qps, true).expect("drawn");
        jitter_svg(&r, &jitter, false).expect("drawn");
        let qps_text = std::fs::read_to_string(&qps).expect("written");
        let jitter_text = std::fs::read_to_string(&jitter).expect("written");
        std::fs::remove_file(&qps).ok();
        std::fs::remove_file(&jitter).ok();
        assert!(qps_text.starts_with("<svg"));
        for s in Strategy::ALL {
            assert!(qps_text.contains(s.name()), "the herd chart names {s:?}");
        }
        assert!(qps_text.contains(QUICK_MARKER));
        assert!(jitter_text.contains("no jitter") && jitter_text.contains("jitter 25% of the TTL"));
        assert!(!jitter_text.contains(QUICK_MARKER));
    }
}
