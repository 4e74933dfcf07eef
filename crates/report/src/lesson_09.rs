//! Lesson 9 → from the `scale_out` bench (`scale_out.json`):
//! `scale_out_slots.md`, `scale_out_failover.md` (the table and the
//! second-by-second timeline), `scale_out_reshard.md`,
//! `scale_out_coverage.md`, `scale_out_throughput.md`, `scale_out_lag.md`,
//! and one chart, `scale_out_failover.svg`: per client configuration, the
//! requests started per second, the share answered without a failed cache
//! call, and the p99, over the seconds of the run, with the kill and each
//! promotion marked.
//!
//! The tables are the lesson's ([`ScaleOutResults`]'s methods, and the
//! replica experiment's own), so `just lesson-9` prints the same ones.

use std::path::Path;

use lab::results::Results;
use lesson_09_scale_out::cache::ClientMode;
use lesson_09_scale_out::experiment::ScaleOutResults;
use lesson_09_scale_out::experiment::failover::FailoverRun;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::render::{QUICK_MARKER, experiment_header};

/// Each Markdown file's name and contents, under the header that says
/// where it came from (and, for a quick run, that it is not the book's).
pub fn files(r: &ScaleOutResults, quick: bool) -> Vec<(&'static str, String)> {
    let head = experiment_header("scale_out", ScaleOutResults::FILE, "figures", quick);
    [
        ("scale_out_slots.md", r.slots_md()),
        (
            "scale_out_failover.md",
            r.failover_md()
                + "\nSecond by second (by when each request started):\n\n"
                + &r.failover_timeline_md(),
        ),
        ("scale_out_reshard.md", r.reshard_md()),
        ("scale_out_coverage.md", r.coverage_md()),
        ("scale_out_throughput.md", r.throughput_md()),
        (
            "scale_out_lag.md",
            r.lag.setup_md() + "\n" + &r.lag.table_md(),
        ),
    ]
    .into_iter()
    .map(|(name, md)| (name, head.clone() + &md))
    .collect()
}

fn colour(m: ClientMode) -> RGBColor {
    match m {
        // The untuned client: red, the stall.
        ClientMode::Defaults => RGBColor(0xc0, 0x39, 0x2b),
        ClientMode::Bounded => RGBColor(0x3b, 0x6e, 0xa5),
        ClientMode::ReplicaReads => RGBColor(0x27, 0x8a, 0x4b),
    }
}

/// One panel's points for one run: `(seconds, value)` per bucket that
/// has a value (a bucket where no request started has no share and no
/// p99: a gap in the line, not a zero).
type Points = Vec<(f64, f64)>;

fn started_per_s(r: &FailoverRun) -> Points {
    let per_s = 1000.0 / r.bucket_ms.max(1) as f64;
    r.timeline
        .iter()
        .map(|b| (b.t + r.bucket_ms as f64 / 2000.0, b.requests as f64 * per_s))
        .collect()
}

fn clean_share(r: &FailoverRun) -> Points {
    r.timeline
        .iter()
        .filter(|b| b.requests > 0)
        .map(|b| {
            let clean = b.ok.saturating_sub(b.cache_failures);
            (
                b.t + r.bucket_ms as f64 / 2000.0,
                clean as f64 * 100.0 / b.requests as f64,
            )
        })
        .collect()
}

fn p99(r: &FailoverRun) -> Points {
    r.timeline
        .iter()
        .filter(|b| b.requests > 0)
        .map(|b| (b.t + r.bucket_ms as f64 / 2000.0, b.p99_ms.max(0.1)))
        .collect()
}

/// Splits `points` where consecutive buckets are not neighbours, so a
/// stretch with no request started is drawn as a gap.
fn segments(points: &Points, bucket_s: f64) -> Vec<Points> {
    let mut out: Vec<Points> = Vec::new();
    let mut last: Option<f64> = None;
    for &p in points {
        if last.is_none_or(|l| p.0 - l > bucket_s * 1.5) {
            out.push(Vec::new());
        }
        if let Some(seg) = out.last_mut() {
            seg.push(p);
        }
        last = Some(p.0);
    }
    out
}

/// `scale_out_failover.svg`: three panels over the same seconds.
pub fn failover_svg(r: &ScaleOutResults, path: &Path, quick: bool) -> anyhow::Result<()> {
    let runs = &r.failover;
    let end = runs
        .iter()
        .map(|f| f.timeline.len() as f64 * f.bucket_ms as f64 / 1000.0)
        .fold(1.0, f64::max);
    let top_rate = runs
        .iter()
        .flat_map(|f| started_per_s(f).into_iter().map(|p| p.1))
        .fold(10.0, f64::max)
        * 1.1;
    let top_p99 = runs
        .iter()
        .flat_map(|f| p99(f).into_iter().map(|p| p.1))
        .fold(10.0, f64::max)
        * 2.0;
    let title = if quick {
        format!("scale_out_failover ({QUICK_MARKER})")
    } else {
        "A master killed under load: what the clients saw, per client configuration".to_string()
    };
    let root = SVGBackend::new(path, (900, 760)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let area = root.titled(&title, ("sans-serif", 20))?;
        let (legend_row, area) = area.split_vertically(30);
        legend(&legend_row, runs)?;
        let panels = area.split_evenly((3, 1));

        // 1. Requests started per second: the closed loop's throughput.
        let mut c = ChartBuilder::on(&panels[0])
            .margin(8)
            .margin_right(20)
            .x_label_area_size(24)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..end, 0.0..top_rate)?;
        c.configure_mesh()
            .light_line_style(WHITE)
            .y_desc("requests started / s")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .draw()?;
        events(&mut c, runs, 0.0, top_rate)?;
        for f in runs {
            c.draw_series(LineSeries::new(
                started_per_s(f),
                colour(f.mode).stroke_width(2),
            ))?;
        }

        // 2. The share answered without a failed cache call.
        let mut c = ChartBuilder::on(&panels[1])
            .margin(8)
            .margin_right(20)
            .x_label_area_size(24)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..end, 0.0..105.0)?;
        c.configure_mesh()
            .light_line_style(WHITE)
            .y_desc("% without a cache failure")
            .y_label_formatter(&|v| format!("{v:.0}%"))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .draw()?;
        events(&mut c, runs, 0.0, 105.0)?;
        for f in runs {
            let bucket_s = f.bucket_ms as f64 / 1000.0;
            for seg in segments(&clean_share(f), bucket_s) {
                c.draw_series(LineSeries::new(seg, colour(f.mode).stroke_width(2)))?;
            }
        }

        // 3. p99 per bucket, on a log scale: milliseconds and seconds on
        // one axis.
        let mut c = ChartBuilder::on(&panels[2])
            .margin(8)
            .margin_right(20)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..end, (0.1..top_p99).log_scale())?;
        c.configure_mesh()
            .light_line_style(WHITE)
            .y_desc("p99 (ms, log)")
            .x_desc("seconds since the clients started (by when a request started)")
            .y_label_formatter(&|v| {
                if *v >= 1.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            })
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .draw()?;
        for f in runs {
            let x = f.kill_at_s;
            c.draw_series(DashedLineSeries::new(
                [(x, 0.1), (x, top_p99)],
                5,
                4,
                BLACK.mix(0.5).stroke_width(1),
            ))?;
            if let Some(p) = f.promoted_at_s {
                c.draw_series(DashedLineSeries::new(
                    [(p, 0.1), (p, top_p99)],
                    5,
                    4,
                    colour(f.mode).mix(0.6).stroke_width(1),
                ))?;
            }
        }
        for f in runs {
            let bucket_s = f.bucket_ms as f64 / 1000.0;
            for seg in segments(&p99(f), bucket_s) {
                c.draw_series(LineSeries::new(seg, colour(f.mode).stroke_width(2)))?;
            }
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("Failed to draw {}: {e}", path.display()))
}

/// The kill (grey, dashed) and each run's promotion (its colour, dashed)
/// on a linear panel, the kill labelled once.
fn events<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    runs: &[FailoverRun],
    lo: f64,
    hi: f64,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    for f in runs {
        chart
            .draw_series(DashedLineSeries::new(
                [(f.kill_at_s, lo), (f.kill_at_s, hi)],
                5,
                4,
                BLACK.mix(0.5).stroke_width(1),
            ))
            .map_err(e)?;
        if let Some(p) = f.promoted_at_s {
            chart
                .draw_series(DashedLineSeries::new(
                    [(p, lo), (p, hi)],
                    5,
                    4,
                    colour(f.mode).mix(0.6).stroke_width(1),
                ))
                .map_err(e)?;
        }
    }
    if let Some(f) = runs.first() {
        chart
            .draw_series(std::iter::once(Text::new(
                " kill",
                (f.kill_at_s, hi * 0.95),
                ("sans-serif", 12).into_font(),
            )))
            .map_err(e)?;
    }
    Ok(())
}

/// The legend, one row under the title: a line per client configuration
/// and what the dashed lines are.
fn legend<'a>(
    area: &DrawingArea<SVGBackend<'a>, Shift>,
    runs: &[FailoverRun],
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let text = TextStyle::from(("sans-serif", 14).into_font()).pos(
        plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Left,
            plotters::style::text_anchor::VPos::Center,
        ),
    );
    let y = 14;
    let mut x = 80;
    for f in runs {
        let label = format!("{} client", f.mode.name());
        area.draw(&PathElement::new(
            vec![(x, y), (x + 22, y)],
            colour(f.mode).stroke_width(3),
        ))?;
        area.draw(&Text::new(label.clone(), (x + 28, y), text.clone()))?;
        x += 40 + 8 * label.chars().count() as i32;
    }
    area.draw(&Text::new(
        "dashed: the kill (grey), each promotion (its colour)",
        (x, y),
        text,
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lesson_09_scale_out::experiment::Plan;
    use lesson_09_scale_out::experiment::coverage::{Answered, CoverageRow};
    use lesson_09_scale_out::experiment::fixture::Bucket;
    use lesson_09_scale_out::experiment::lag::{LagResults, NaturalLag};
    use lesson_09_scale_out::experiment::reshard::{Phase, ReshardResult};
    use lesson_09_scale_out::experiment::slots::{MasterShare, SlotsResult};
    use lesson_09_scale_out::experiment::throughput::ThroughputRow;

    fn run(mode: ClientMode) -> FailoverRun {
        let stalled = mode == ClientMode::Defaults;
        let timeline: Vec<Bucket> = (0..40)
            .map(|i| {
                let t = i as f64 * 0.25;
                let dead = (2.0..7.0).contains(&t);
                let requests = if stalled && dead { 0 } else { 6_000 };
                let failures = if mode == ClientMode::Bounded && dead {
                    2_000
                } else {
                    0
                };
                Bucket {
                    t,
                    requests,
                    ok: requests,
                    errors: 0,
                    cache_failures: failures,
                    hits: requests - failures,
                    p99_ms: if stalled && t == 1.75 { 9_800.0 } else { 4.0 },
                    max_ms: 10.0,
                }
            })
            .collect();
        FailoverRun {
            mode,
            clients: 32,
            keys: 1000,
            node_timeout_ms: 3000,
            victim_keys: 331,
            victim_port: 7000,
            kill_at_s: 2.0,
            promoted_at_s: Some(7.0),
            stopped_at_s: 9.0,
            requests: timeline.iter().map(|b| b.requests).sum(),
            hits: 100_000,
            misses: 0,
            cache_failures: if mode == ClientMode::Bounded {
                40_000
            } else {
                0
            },
            errors: 0,
            failures_elsewhere: 0,
            elsewhere_from_s: None,
            elsewhere_to_s: None,
            cluster_down_from_s: Some(6.5),
            cluster_down_to_s: Some(7.0),
            failure_window_s: if mode == ClientMode::ReplicaReads {
                0.0
            } else {
                4.6
            },
            failure_from_s: Some(2.0),
            failure_to_s: Some(6.6),
            answered_per_s_before: 24_000.0,
            answered_per_s_in_window: if stalled { 0.0 } else { 8_000.0 },
            longest_ms: if stalled { 9_800.0 } else { 120.0 },
            longest_on_victim: true,
            over_1s: u64::from(stalled) * 32,
            p50_ms: 1.0,
            p99_ms: 5.0,
            victim_requests_in_window: 3_000,
            victim_hit_ratio: Some(if mode == ClientMode::ReplicaReads {
                0.99
            } else {
                0.0
            }),
            other_requests_in_window: 6_000,
            other_p99_ms_in_window: 5.0,
            db_reads: 40_000,
            bucket_ms: 250,
            timeline,
        }
    }

    fn results() -> ScaleOutResults {
        ScaleOutResults {
            plan: Plan::short(),
            wall_s: 80.0,
            slots: SlotsResult {
                keys: 10_000,
                masters: (0..3)
                    .map(|i| MasterShare {
                        port: 7000 + i,
                        ranges: "0-5460".into(),
                        slots: 5461,
                        keys: 3_333,
                        keys_by_slot: 3_333,
                    })
                    .collect(),
                untagged: [("l9:user:1".into(), 4665), ("l9:user:2".into(), 8794)],
                untagged_mget: "CROSSSLOT Keys in request don't hash to the same slot".into(),
                tagged: [
                    ("l9:{user:42}:profile".into(), 15880),
                    ("l9:{user:42}:orders".into(), 15880),
                ],
                tagged_mget: "[\"1\", \"1\"]".into(),
                client_mget: "[nil, nil]".into(),
            },
            failover: ClientMode::ALL.into_iter().map(run).collect(),
            reshard: ReshardResult {
                mode: ClientMode::Bounded,
                clients: 32,
                keys: 10_000,
                slots: 1_000,
                reshard_s: 1.2,
                from_keys: (3_338, 2_729),
                to_keys: (3_335, 3_944),
                from_slots_after: 4_461,
                to_slots_after: 6_462,
                phases: ["before", "during"]
                    .into_iter()
                    .map(|p| Phase {
                        phase: p.into(),
                        seconds: 1.0,
                        requests: 20_000,
                        hits: 20_000,
                        misses: 0,
                        cache_failures: 0,
                        errors: 0,
                        p50_ms: 1.0,
                        p99_ms: 5.0,
                        max_ms: 16.0,
                    })
                    .collect(),
            },
            coverage: [true, false]
                .into_iter()
                .map(|full| CoverageRow {
                    require_full_coverage: full,
                    keys: 300,
                    dead_keys: 101,
                    other_keys: 199,
                    marked_failed_s: 1.5,
                    cluster_state: if full { "fail" } else { "ok" }.into(),
                    live_master_answer: if full {
                        "CLUSTERDOWN The cluster is down".into()
                    } else {
                        "\"1\"".into()
                    },
                    direct: Answered {
                        dead: 0,
                        other: if full { 0 } else { 199 },
                        slowest_ms: 1.0,
                    },
                    client_first: Answered::default(),
                    client_later: Answered {
                        dead: 0,
                        other: if full { 0 } else { 199 },
                        slowest_ms: 500.0,
                    },
                })
                .collect(),
            throughput: ["one Redis", "cluster (3 masters)"]
                .into_iter()
                .map(|t| ThroughputRow {
                    topology: t.into(),
                    round: 1,
                    seconds: 2.0,
                    requests: 100_000,
                    not_hits: 0,
                    ops_per_s: 50_000.0,
                    p50_ms: 0.5,
                    p99_ms: 2.0,
                    per_node: vec![(7000, 50_000.0)],
                })
                .collect(),
            lag: LagResults {
                users: 1000,
                ttl_s: 60,
                window_ms: 2000,
                reads_after: 20,
                writes_per_sec: 200,
                poison: Vec::new(),
                natural: NaturalLag {
                    duration_ms: 3000,
                    writes: 600,
                    probes: 100,
                    visible_p50_ms: 0.4,
                    visible_p99_ms: 3.0,
                    visible_max_ms: 11.0,
                    replay_lag_samples: 150,
                    replay_lag_p50_ms: 0.4,
                    replay_lag_max_ms: 12.0,
                    lag_bytes_p50: 112,
                    lag_bytes_max: 1480,
                },
                race: Vec::new(),
            },
        }
    }

    #[test]
    fn every_file_is_written_and_quick_runs_are_marked() {
        let r = results();
        let quick = files(&r, true);
        let names: Vec<&str> = quick.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "scale_out_slots.md",
                "scale_out_failover.md",
                "scale_out_reshard.md",
                "scale_out_coverage.md",
                "scale_out_throughput.md",
                "scale_out_lag.md",
            ]
        );
        assert!(quick.iter().all(|(_, md)| md.contains(QUICK_MARKER)));
        let book = files(&r, false);
        assert!(book.iter().all(|(_, md)| !md.contains(QUICK_MARKER)));
        let failover = &book[1].1;
        assert!(
            failover.contains("| defaults (redis-rs as shipped) | 5.0 s |"),
            "{failover}"
        );
        assert!(failover.contains("9800 ms"), "{failover}");
        assert!(failover.contains("24,000 → 0"), "{failover}");
        assert!(
            failover.contains("← kill"),
            "the timeline marks the kill: {failover}"
        );
        assert!(book[0].1.contains("CROSSSLOT"));
        assert!(book[3].1.contains("| yes | fail |"), "{}", book[3].1);
        assert!(
            book[3].1.contains("199 of 300 (66%; dead shard 0)"),
            "{}",
            book[3].1
        );
        assert!(book[5].1.contains("Natural lag"), "{}", book[5].1);
    }

    #[test]
    fn the_chart_names_every_client_and_quick_runs_are_marked() {
        let r = results();
        let path =
            std::env::temp_dir().join(format!("scale-out-failover-{}.svg", std::process::id()));
        failover_svg(&r, &path, true).expect("drawn");
        let text = std::fs::read_to_string(&path).expect("written");
        std::fs::remove_file(&path).ok();
        assert!(text.starts_with("<svg"));
        for m in ClientMode::ALL {
            assert!(
                text.contains(&format!("{} client", m.name())),
                "the chart names {m:?}"
            );
        }
        assert!(text.contains(QUICK_MARKER));
    }

    #[test]
    fn a_stretch_with_no_request_is_a_gap() {
        let points = vec![(0.125, 1.0), (0.375, 1.0), (2.125, 1.0), (2.375, 1.0)];
        let segs = segments(&points, 0.25);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[1], vec![(2.125, 1.0), (2.375, 1.0)]);
    }
}
