//! Lesson 8 → from the `layers` bench (`layers.json`): `layers_staleness.md`,
//! `layers_staleness.svg`, `layers_race.md`, `layers_lost.md`,
//! `layers_namespace.md`, `layers_pk.md`; from criterion's `layer_costs`
//! group: `layer_costs.md` and `layer_costs.svg`.
//!
//! The experiments' tables are the lesson's ([`LayersResults`]'s methods),
//! so `just lesson-8` prints the same ones. The costs table is the other
//! criterion tables' ([`render::table_md`]), each row also as a multiple
//! of an L1 hit, with what the service adds to each layer under it.

use std::fmt::Write;
use std::path::Path;

use lab::results::Results;
use lesson_08_layers::Invalidation;
use lesson_08_layers::experiment::staleness::Windows;
use lesson_08_layers::experiment::{LayersResults, Plan};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::criterion::Estimate;
use crate::groups::{GroupSpec, Row};
use crate::render::{self, QUICK_MARKER, experiment_header};

/// Each Markdown file's name and contents, under the header that says
/// where it came from (and, for a quick run, that it is not the book's).
pub fn files(r: &LayersResults, quick: bool) -> Vec<(&'static str, String)> {
    let head = experiment_header("layers", LayersResults::FILE, "figures", quick);
    [
        ("layers_staleness.md", setup(&r.plan) + &r.staleness_md()),
        ("layers_race.md", r.race_md()),
        ("layers_lost.md", r.lost_md()),
        ("layers_namespace.md", r.namespace_md()),
        ("layers_pk.md", r.pk_lookup_md()),
    ]
    .into_iter()
    .map(|(name, md)| (name, head.clone() + &md))
    .collect()
}

/// The staleness experiment's parameters, which its table does not show.
fn setup(p: &Plan) -> String {
    format!(
        "Setup: {} trials per design; L1's TTL {}; instance B read every {} while A wrote.\n\n",
        p.trials,
        duration(p.l1_ttl.as_secs_f64() * 1000.0),
        duration(p.poll.as_secs_f64() * 1000.0),
    )
}

/// Milliseconds as the chart's axis and setup line show them: `10 µs`,
/// `1 ms`, `2.5 ms`, `1 s`.
fn duration(ms: f64) -> String {
    let trim = |v: f64, unit: &str| {
        let s = format!("{v:.1}");
        format!("{} {unit}", s.strip_suffix(".0").unwrap_or(&s))
    };
    if ms >= 1000.0 {
        trim(ms / 1000.0, "s")
    } else if ms >= 1.0 {
        trim(ms, "ms")
    } else {
        trim(ms * 1000.0, "µs")
    }
}

/// The design's lane name: the tables' words.
fn lane_name(d: Invalidation) -> &'static str {
    match d {
        Invalidation::Ttl => "TTL only",
        Invalidation::PubSub => "Redis pub/sub",
        Invalidation::Notify => "PostgreSQL NOTIFY",
        Invalidation::Tracking => "Redis client tracking",
    }
}

const DOT: RGBColor = RGBColor(0x3b, 0x6e, 0xa5);
const P99: RGBColor = RGBColor(0xc0, 0x39, 0x2b);
const GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// The log axis: from a power of ten at or below the smallest window that
/// is not 0 (no lower than 1 µs) to a power of ten past the largest and
/// L1's TTL. A window of 0 (B had the new value before A's answer) has no
/// place on a log axis: it gets a column of its own left of the first
/// decade, at [`zero_at`].
fn axis_range(windows: &[&Windows], l1_ttl_ms: f64) -> (f64, f64) {
    let all = || windows.iter().flat_map(|w| w.windows_ms.iter().copied());
    let min = all().filter(|&v| v > 0.0).fold(f64::MAX, f64::min);
    let max = all().fold(l1_ttl_ms, f64::max);
    let lo = if min == f64::MAX {
        0.01
    } else {
        10f64.powf(min.log10().floor()).max(0.001)
    };
    // Room right of the last dot.
    let hi = 10f64.powf((max * 1.5).log10().ceil()).max(lo * 100.0);
    (lo, hi)
}

/// Where a window of 0 is drawn: half a decade left of `lo`.
fn zero_at(lo: f64) -> f64 {
    lo / 10f64.sqrt()
}

/// One lane per design, every trial's window a dot on a log-scale ms axis
/// (jittered up and down so equal windows stay visible), its p50 a black
/// bar and its p99 a red one; a dashed line at L1's TTL, the bound TTL
/// alone gives. Each lane is named above its dots, not beside them, so the
/// plot has the whole width: narrow and with large text, it stays readable
/// when a phone shrinks it to 390 px.
pub fn staleness_svg(r: &LayersResults, path: &Path, quick: bool) -> anyhow::Result<()> {
    let lanes: Vec<&Windows> = r.staleness.iter().collect();
    let n = lanes.len().max(1);
    let ttl_ms = r.plan.l1_ttl.as_secs_f64() * 1000.0;
    let (lo, hi) = axis_range(&lanes, ttl_ms);
    let zero = zero_at(lo);
    let left = lo / 10f64.powf(0.8);
    let root = SVGBackend::new(path, (560, 130 + 90 * n as u32)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let title = if quick {
            format!("layers_staleness ({QUICK_MARKER})")
        } else {
            "How long B serves the old value after A's write".to_string()
        };
        let area = root.titled(&title, ("sans-serif", 20))?;
        let (top, area) = area.split_vertically(30);
        legend(&top)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .margin_right(24)
            .x_label_area_size(48)
            .y_label_area_size(8)
            // Lane i's dots around y = n - 1 - i, its name above them.
            .build_cartesian_2d((left..hi).log_scale(), -0.55..(n as f64 - 0.2))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE)
            .y_labels(0)
            .x_labels(12)
            .x_label_formatter(&|v| duration(*v))
            .x_desc("time after A's answer (log scale)")
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .draw()?;
        // Text at a data point (a closure would hold `chart` borrowed). The
        // chart gives the point in the whole image's pixels: draw on `root`.
        macro_rules! label {
            ($text:expr, $at:expr, $style:expr $(,)?) => {
                label!($text, $at, $style, 0)
            };
            ($text:expr, $at:expr, $style:expr, $dx:expr $(,)?) => {{
                let (x, y) = chart.backend_coord(&$at);
                root.draw(&Text::new($text.to_string(), (x + $dx, y), $style.clone()))
            }};
        }
        // The column of zeros has no tick: name it under the axis.
        label!(
            "0",
            (zero, -0.55),
            &TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Center, VPos::Top)),
        )?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(zero, -0.55), (zero, -0.5)],
            BLACK.stroke_width(1),
        )))?;
        // A faint rule between lanes: each name belongs to the dots under it.
        for i in 1..n {
            let y = i as f64 - 0.5;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(left, y), (hi, y)],
                BLACK.mix(0.15).stroke_width(1),
            )))?;
        }
        if ttl_ms < hi {
            chart.draw_series(DashedLineSeries::new(
                [(ttl_ms, -0.55), (ttl_ms, n as f64 - 0.2)],
                6,
                4,
                BLACK.mix(0.5).stroke_width(1),
            ))?;
        }
        let name_style =
            TextStyle::from(("sans-serif", 16).into_font()).pos(Pos::new(HPos::Left, VPos::Bottom));
        let stats_style = TextStyle::from(("sans-serif", 14).into_font())
            .color(&GREY)
            .pos(Pos::new(HPos::Right, VPos::Bottom));
        for (i, w) in lanes.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            // A few pixels right of the axis.
            label!(lane_name(w.design), (left, y + 0.38), &name_style, 6)?;
            label!(
                &format!(
                    "p50 {} · p99 {}",
                    lab::units::millis(w.p50_ms),
                    lab::units::millis(w.p99_ms)
                ),
                (hi, y + 0.38),
                &stats_style,
            )?;
            // Jitter from the golden ratio, like the experiment's delays: the
            // same run draws the same chart.
            let jitter = |t: usize| ((t as f64 * 0.618_033_988_75).fract() - 0.5) * 0.36;
            let at = |ms: f64| if ms > 0.0 { ms } else { zero };
            // The bars first: a dot on a bar stays visible.
            for (ms, colour) in [(w.p50_ms, BLACK), (w.p99_ms, P99)] {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(at(ms), y - 0.26), (at(ms), y + 0.26)],
                    colour.stroke_width(3),
                )))?;
            }
            chart.draw_series(w.windows_ms.iter().enumerate().map(|(t, &ms)| {
                let style = if ms > 0.0 {
                    DOT.mix(0.6).filled()
                } else {
                    DOT.stroke_width(2)
                };
                Circle::new((at(ms), y + jitter(t)), 6, style)
            }))?;
        }
        if ttl_ms < hi {
            label!(
                &format!("L1 TTL {}", duration(ttl_ms)),
                (ttl_ms, -0.55),
                &TextStyle::from(("sans-serif", 13).into_font())
                    .color(&GREY)
                    .pos(Pos::new(HPos::Right, VPos::Bottom)),
            )?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("Failed to draw {}: {e}", path.display()))
}

/// The legend, one row under the title, outside the plot: it covers no
/// dot whatever the windows are.
fn legend<'a>(
    area: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let text =
        TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let y = 14;
    let mut x = 20;
    area.draw(&Circle::new((x, y), 6, DOT.mix(0.6).filled()))?;
    area.draw(&Text::new("a trial", (x + 11, y), text.clone()))?;
    x += 78;
    area.draw(&Circle::new((x, y), 6, DOT.stroke_width(2)))?;
    area.draw(&Text::new(
        "0: B had it before A answered",
        (x + 11, y),
        text.clone(),
    ))?;
    x += 262;
    for (label, colour) in [("p50", BLACK), ("p99", P99)] {
        area.draw(&PathElement::new(
            vec![(x, y - 9), (x, y + 9)],
            colour.stroke_width(3),
        ))?;
        area.draw(&Text::new(label, (x + 8, y), text.clone()))?;
        x += 64;
    }
    Ok(())
}

const fn row(name: &'static str, what: &'static str, baseline: Option<&'static str>) -> Row {
    Row {
        name,
        what,
        baseline,
    }
}

/// The `layer_costs` bench group: each layer's hit alone and through the
/// service, and a write with and without the outbox. Its ratios are
/// against an L1 hit; the speed-ups are a cache hit's against a miss.
pub static COSTS: GroupSpec = GroupSpec {
    id: "layer_costs",
    title: "Lesson 8: one hit in each layer, alone and through the service; a write with and without the outbox",
    floor: Some("l1_hit"),
    benches: &[
        row(
            "l1_hit",
            "L1 alone: `L1::get` of a present entry (moka)",
            None,
        ),
        row(
            "l2_hit",
            "Redis alone: one `HMGET key v json` on the service's connection",
            None,
        ),
        row(
            "db_hit",
            "PostgreSQL alone: `db::fetch`, the primary-key lookup",
            None,
        ),
        row(
            "get_l1",
            "`GET /users/{id}` through the router (no socket): an L1 hit",
            Some("get_db"),
        ),
        row(
            "get_l2",
            "the same: L1 misses, Redis hits, L1 refilled",
            Some("get_db"),
        ),
        row(
            "get_db",
            "the same: both miss; the lookup, the versioned fill of Redis, L1 refilled",
            None,
        ),
        row(
            "update_plain",
            "`db::update` (a transaction: UPDATE … RETURNING), no trigger",
            None,
        ),
        row(
            "update_outbox",
            "the same with lesson 8's triggers (version, outbox row, NOTIFY), then the outbox `DELETE`",
            None,
        ),
    ],
    checks: &[],
};

/// `layer_costs.md`: the table, then what the service adds to each layer
/// and what the outbox adds to a write.
pub fn costs_md(rows: &[&Estimate], quick: bool) -> String {
    let mut md = render::table_md(&COSTS, rows, quick);
    let median = |name: &str| rows.iter().find(|e| e.bench == name).map(|e| e.median_ns);
    let plus = |ns: f64| {
        if ns < 0.0 {
            format!("−{}", lab::units::nanos(-ns))
        } else {
            format!("+{}", lab::units::nanos(ns))
        }
    };
    let added: Vec<String> = [
        ("get_l1", "l1_hit"),
        ("get_l2", "l2_hit"),
        ("get_db", "db_hit"),
    ]
    .into_iter()
    .filter_map(|(whole, part)| {
        Some(format!(
            "`{whole}` {} over `{part}`",
            plus(median(whole)? - median(part)?)
        ))
    })
    .collect();
    if !added.is_empty() {
        let _ = writeln!(
            md,
            "\nWhat the service adds to a layer's own hit (the router, the handler, the JSON answer; \
             for `get_l2` also L1's lookup and refill, for `get_db` also Redis's miss and the fill): {}.",
            added.join(", ")
        );
    }
    if let (Some(outbox), Some(plain)) = (median("update_outbox"), median("update_plain")) {
        let _ = writeln!(
            md,
            "\n`update_outbox` takes {:.2}× `update_plain`: {} per write for the triggers and the outbox `DELETE`.",
            outbox / plain,
            plus(outbox - plain)
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use lesson_08_layers::Fill;
    use lesson_08_layers::experiment::PkLookup;
    use lesson_08_layers::experiment::lost::LostRow;
    use lesson_08_layers::experiment::namespace::NamespaceResults;
    use lesson_08_layers::experiment::race::RaceRow;

    fn results() -> LayersResults {
        let staleness = Invalidation::ALL
            .into_iter()
            .map(|design| {
                let windows_ms: Vec<f64> = (0..8)
                    .map(|t| match design {
                        Invalidation::Ttl => 1000.0 * (t as f64 * 0.618).fract(),
                        _ if t % 3 == 0 => 0.0,
                        _ => 0.2 + t as f64 * 0.1,
                    })
                    .collect();
                let max = windows_ms.iter().copied().fold(0.0, f64::max);
                Windows {
                    design,
                    trials: windows_ms.len(),
                    p50_ms: max / 2.0,
                    p99_ms: max,
                    max_ms: max,
                    from_sent_ms: windows_ms.clone(),
                    windows_ms,
                    before_answer: 3,
                    stale_reads: 1,
                    reads: 100,
                }
            })
            .collect();
        LayersResults {
            plan: Plan::short(),
            wall_s: 30.0,
            staleness,
            race: Fill::ALL
                .into_iter()
                .map(|fill| RaceRow {
                    fill,
                    trials: 5,
                    stale_left: if fill == Fill::Naive { 5 } else { 0 },
                    refused: 0,
                })
                .collect(),
            lost: vec![LostRow {
                relay: true,
                trials: 1,
                answered: vec!["queued".into()],
                windows_ms: vec![Some(420.0)],
                watch_ms: 3000.0,
                relay_every_ms: 500.0,
            }],
            namespace: NamespaceResults {
                keys: 1000,
                ttl_s: 60,
                bump_us: 40.0,
                scan_delete_ms: 12.0,
                keys_after_bump: 2000,
                orphans: 1000,
                orphan_bytes: 100_000,
            },
            pk_lookup: PkLookup {
                shared_hit: 3,
                shared_read: 0,
                execution_ms: 0.02,
                shared_buffers: "128MB".into(),
            },
        }
    }

    #[test]
    fn the_chart_names_every_design_and_quick_runs_are_marked() {
        let r = results();
        let path =
            std::env::temp_dir().join(format!("layers-staleness-{}.svg", std::process::id()));
        staleness_svg(&r, &path, true).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        std::fs::remove_file(&path).ok();
        assert!(svg.starts_with("<svg"));
        for d in Invalidation::ALL {
            assert!(svg.contains(lane_name(d)), "the chart names {d:?}");
        }
        assert!(svg.contains("L1 TTL 1 s"), "the TTL line is labelled");
        assert!(svg.contains(QUICK_MARKER));
        let quick = files(&r, true);
        assert_eq!(quick.len(), 5);
        assert!(quick.iter().all(|(_, md)| md.contains(QUICK_MARKER)));
        let staleness = &quick[0].1;
        assert!(
            staleness
                .contains("Setup: 8 trials per design; L1's TTL 1 s; instance B read every 1 ms"),
            "{staleness}"
        );
        assert!(
            files(&r, false)
                .iter()
                .all(|(_, md)| !md.contains(QUICK_MARKER))
        );
    }

    #[test]
    fn the_axis_starts_at_a_power_of_ten_below_the_fastest_window() {
        let r = results();
        let lanes: Vec<&Windows> = r.staleness.iter().collect();
        assert_eq!(axis_range(&lanes, 1000.0), (0.1, 10_000.0));
        assert!((zero_at(0.1) - 0.0316).abs() < 1e-3);
        assert_eq!(duration(0.01), "10 µs");
        assert_eq!(duration(2.5), "2.5 ms");
        assert_eq!(duration(1000.0), "1 s");
    }

    #[test]
    fn the_costs_table_is_against_an_l1_hit() {
        let est = |bench: &str, median_ns: f64| Estimate {
            bench: bench.into(),
            median_ns,
            lower_ns: median_ns * 0.99,
            upper_ns: median_ns * 1.01,
            modified: std::time::SystemTime::now(),
        };
        let all = vec![
            est("l1_hit", 100.0),
            est("l2_hit", 30_000.0),
            est("db_hit", 60_000.0),
            est("get_l1", 5_000.0),
            est("get_l2", 40_000.0),
            est("get_db", 150_000.0),
            est("update_plain", 200_000.0),
            est("update_outbox", 300_000.0),
        ];
        let rows = render::select(&COSTS, &all).expect("every row");
        let md = costs_md(&rows, false);
        assert!(md.contains("| × `l1_hit` |"), "{md}");
        assert!(md.contains("| `db_hit` |"), "{md}");
        assert!(md.contains(" 600× |"), "{md}");
        assert!(md.contains("30.0× vs `get_db` |"), "{md}");
        assert!(md.contains("`get_l1` +4.9 µs over `l1_hit`"), "{md}");
        assert!(
            md.contains("`update_outbox` takes 1.50× `update_plain`: +100.0 µs per write"),
            "{md}"
        );
        assert!(costs_md(&rows, true).contains(QUICK_MARKER));
    }
}
