//! Lesson 6's edge experiments 2–6 → `edge_collapse.md`, `edge_stale.md`,
//! `edge_stale.svg`, `edge_swr.md`, `edge_revalidate.md`, `edge_purge.md`.
//!
//! The tables are the lesson's ([`EdgeResults`]'s methods), so `just
//! lesson-6` prints the same ones; experiment 1 (wrk) is rendered from its
//! own results file.

use std::path::Path;

use lab::results::Results;
use lesson_06_http_edge::experiment::EdgeResults;
use lesson_06_http_edge::experiment::stale::StaleRun;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::render::{QUICK_MARKER, experiment_header};

/// Each Markdown file's name and contents, under the header that says
/// where it came from (and, for a quick run, that it is not the book's).
pub fn files(r: &EdgeResults, quick: bool) -> Vec<(&'static str, String)> {
    let head = experiment_header("edge", EdgeResults::FILE, "figures", quick);
    [
        ("edge_collapse.md", r.collapse_md()),
        ("edge_stale.md", r.stale_md()),
        ("edge_swr.md", r.swr_md()),
        ("edge_revalidate.md", r.revalidate_md()),
        ("edge_purge.md", r.purge_md()),
    ]
    .into_iter()
    .map(|(name, md)| (name, head.clone() + &md))
    .collect()
}

/// What each answer was, as a colour: served fresh, served stale, fetched
/// from the origin, or an error.
fn colour(status: u16, cache: &str) -> RGBColor {
    match (status, cache) {
        (200, "HIT") => RGBColor(0x2e, 0x8b, 0x57),
        (200, "STALE" | "UPDATING") => RGBColor(0xe6, 0x7e, 0x22),
        (200, _) => RGBColor(0x27, 0x7d, 0xa1),
        _ => RGBColor(0xc0, 0x39, 0x2b),
    }
}

const KINDS: [(&str, u16, &str); 4] = [
    ("HIT (fresh)", 200, "HIT"),
    ("STALE (200, expired copy)", 200, "STALE"),
    ("from the origin (MISS, EXPIRED)", 200, "MISS"),
    ("error (500, 502, no answer)", 500, "-"),
];

/// The lane's name: the same plain words as the demo and the tables.
fn lane_name(run: &StaleRun) -> String {
    run.label()
}

/// One lane per outage and policy: every answer the polling client got, a
/// dot coloured by what it was; dashed lines where the origin broke, where
/// the entry expired (s-maxage) and where stale-if-error ended.
pub fn stale_svg(r: &EdgeResults, path: &Path, quick: bool) -> anyhow::Result<()> {
    let s = &r.stale;
    let runs = &s.runs;
    let lanes: Vec<String> = runs.iter().map(lane_name).collect();
    let end = s.watched_s.max(1.0);
    let root = SVGBackend::new(path, (1000, 240 + 70 * runs.len() as u32)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let title = if quick {
            format!("edge_stale ({QUICK_MARKER})")
        } else {
            "What a client got from the edge while the origin was broken".to_string()
        };
        let n = runs.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title.as_str(), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            // Room for the longest lane name ("origin answers 500, nginx's
            // proxy_cache_use_stale") at 13 px.
            .y_label_area_size(300)
            // Headroom above the top lane for the legend, so it hides no dot.
            .build_cartesian_2d(0.0..end, -0.6..(n + 0.9))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            // The lanes are named by hand below: a mesh's ticks need not
            // fall on whole numbers.
            .y_labels(0)
            .x_desc(format!(
                "seconds since the fill (dashed: origin broke; s-maxage={} s; + stale-if-error={} s)",
                s.s_maxage_s, s.stale_if_error_s
            ))
            .label_style(("sans-serif", 13))
            .draw()?;
        let broke = runs.first().map_or(0.0, |r| r.broke_at);
        let marks = [
            broke,
            s.s_maxage_s as f64,
            (s.s_maxage_s + s.stale_if_error_s) as f64,
        ];
        for x in marks.into_iter().filter(|x| *x <= end) {
            chart.draw_series(DashedLineSeries::new(
                [(x, -0.6), (x, n - 0.4)],
                6,
                4,
                BLACK.mix(0.5).stroke_width(1),
            ))?;
        }
        let name_style = TextStyle::from(("sans-serif", 13).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (lane, name) in lanes.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(0.0, lane as f64));
            root.draw(&Text::new(name.clone(), (x - 8, y), name_style.clone()))?;
        }
        for (lane, run) in runs.iter().enumerate() {
            chart.draw_series(run.timeline.iter().map(|p| {
                Circle::new((p.t, lane as f64), 5, colour(p.status, &p.cache).filled())
            }))?;
        }
        for (label, status, cache) in KINDS {
            let c = colour(status, cache);
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 6, y), 5, c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("Failed to draw {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lesson_06_http_edge::experiment::Plan;
    use lesson_06_http_edge::experiment::purge::PurgeResults;
    use lesson_06_http_edge::experiment::revalidate::RevalidateResults;
    use lesson_06_http_edge::experiment::stale::{Point, StaleResults, window};
    use lesson_06_http_edge::experiment::swr::SwrResults;

    fn results() -> EdgeResults {
        let runs = ["500", "killed"]
            .into_iter()
            .flat_map(|o| ["Directive", "OriginHeaders"].map(move |p| (o, p)))
            .map(|(outage, policy)| {
                let timeline: Vec<Point> = (0..60)
                    .map(|i| {
                        let t = f64::from(i) * 0.15;
                        let (status, cache) = match t {
                            t if t < 2.0 => (200, "HIT"),
                            t if t < 7.0 || policy == "Directive" => (200, "STALE"),
                            _ => (502, "EXPIRED"),
                        };
                        Point {
                            t,
                            status,
                            cache: cache.into(),
                        }
                    })
                    .collect();
                StaleRun {
                    outage: outage.into(),
                    use_stale: policy.into(),
                    broke_at: 0.5,
                    window: window(&timeline),
                    timeline,
                }
            })
            .collect();
        EdgeResults {
            plan: Plan::short(),
            wall_s: 30.0,
            nginx: "nginx version: nginx/1.22.1".into(),
            collapse: Vec::new(),
            stale: StaleResults {
                s_maxage_s: 2,
                stale_if_error_s: 5,
                watched_s: 9.0,
                poll_ms: 150,
                runs,
            },
            swr: SwrResults {
                s_maxage_s: 3,
                stale_while_revalidate_s: 60,
                origin_latency_ms: 300,
                rows: Vec::new(),
                probe: None,
            },
            revalidate: RevalidateResults {
                body_bytes: 1 << 20,
                rows: Vec::new(),
                client_status: 304,
                client_bytes: 0,
                client_ms: 1.0,
                client_full_bytes: 1 << 20,
                client_full_ms: 5.0,
            },
            purge: PurgeResults {
                versioned: Vec::new(),
                purged: None,
            },
        }
    }

    #[test]
    fn the_chart_names_every_lane_and_quick_runs_are_marked() {
        let r = results();
        let path = std::env::temp_dir().join(format!("edge-stale-{}.svg", std::process::id()));
        stale_svg(&r, &path, true).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        std::fs::remove_file(&path).ok();
        assert!(svg.starts_with("<svg"));
        for lane in [
            "origin answers 500, nginx&apos;s proxy_cache_use_stale",
            "origin killed, origin&apos;s stale-if-error only",
        ] {
            assert!(svg.contains(lane), "the chart names the lane {lane}");
        }
        assert!(svg.contains(QUICK_MARKER));
        let quick = files(&r, true);
        assert_eq!(quick.len(), 5);
        assert!(quick.iter().all(|(_, md)| md.contains(QUICK_MARKER)));
        let stale = &quick
            .iter()
            .find(|(n, _)| *n == "edge_stale.md")
            .expect("a file")
            .1;
        assert!(stale.contains("`s-maxage=2, stale-if-error=5`"), "{stale}");
        assert!(
            files(&r, false)
                .iter()
                .all(|(_, md)| !md.contains(QUICK_MARKER))
        );
    }
}
