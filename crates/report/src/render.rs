//! Turning estimates into the book's Markdown tables and SVG charts.

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::criterion::Estimate;

/// The marker a quick run leaves in every file it writes. CI refuses to let
/// a committed generated file carry it.
pub const QUICK_MARKER: &str = "QUICK RUN";

/// A criterion group the book shows, and how to read it.
#[derive(Debug)]
pub struct GroupSpec {
    /// The criterion group, and the generated files' name.
    pub id: &'static str,
    pub title: &'static str,
    /// The physical floor on this machine (e.g. an HTTP handler returning a constant).
    pub floor: Option<&'static str>,
    /// Benches in the order shown.
    pub benches: &'static [Row],
    /// Sentences under the table: `bench` against the sum of `against`.
    pub checks: &'static [Check],
}

/// One bench in a table.
#[derive(Debug)]
pub struct Row {
    pub name: &'static str,
    pub what: &'static str,
    /// What this row improves on; its speed-up is "baseline ÷ this".
    pub baseline: Option<&'static str>,
}

/// "`bench` takes N× the sum of `against`": e.g. a cache hit against its
/// floors (an HTTP round trip plus a Redis GET).
#[derive(Debug)]
pub struct Check {
    pub bench: &'static str,
    pub against: &'static [&'static str],
}

const fn row(name: &'static str, what: &'static str, baseline: Option<&'static str>) -> Row {
    Row {
        name,
        what,
        baseline,
    }
}

/// Every group the book shows. A lesson that adds a bench group adds it here,
/// and its chapter includes `generated/<id>.md` and `generated/<id>.svg`.
pub const GROUPS: &[GroupSpec] = &[
    GroupSpec {
        id: "lesson_01",
        title: "Lesson 1: GET /users/{id}, no cache, no artificial latency",
        floor: Some("http_constant"),
        benches: &[
            row(
                "http_constant",
                "axum handler returning a constant, over HTTP (the floor)",
                None,
            ),
            row(
                "sqlx_pk_lookup",
                "the lesson's query through the pool, no HTTP",
                None,
            ),
            row(
                "naive_get_user",
                "the whole lesson: HTTP, handler, pool, query, JSON",
                None,
            ),
        ],
        checks: &[Check {
            bench: "naive_get_user",
            against: &["http_constant", "sqlx_pk_lookup"],
        }],
    },
    GroupSpec {
        id: "cache_aside",
        title: "Lesson 2: cache-aside, for a cheap and an expensive query",
        floor: Some("floor_http_constant"),
        benches: &[
            row(
                "floor_http_constant",
                "floor: axum handler returning a constant, over HTTP",
                None,
            ),
            row(
                "floor_redis_get",
                "floor: one Redis GET through redis-rs, no HTTP",
                None,
            ),
            row(
                "naive_get_user",
                "lesson 1: primary-key lookup, no cache",
                None,
            ),
            row(
                "miss_get_user",
                "lesson 2, miss: Redis GET, lookup, Redis SET",
                Some("naive_get_user"),
            ),
            row(
                "hit_get_user",
                "lesson 2, hit: Redis GET only",
                Some("naive_get_user"),
            ),
            row(
                "naive_summary",
                "lesson 1: aggregate over 1M orders, no cache",
                None,
            ),
            row(
                "miss_summary",
                "lesson 2, miss: Redis GET, aggregate, Redis SET",
                Some("naive_summary"),
            ),
            row(
                "hit_summary",
                "lesson 2, hit: Redis GET only",
                Some("naive_summary"),
            ),
        ],
        checks: &[Check {
            bench: "hit_get_user",
            against: &["floor_http_constant", "floor_redis_get"],
        }],
    },
    GroupSpec {
        id: "placement",
        title: "How we measure: one connection's round trip, by CPU placement",
        floor: None,
        benches: &[
            row(
                "pg_pk_lookup_same_core",
                "prepared PostgreSQL primary-key lookup, server on the client's core",
                None,
            ),
            row(
                "pg_pk_lookup_cross_core",
                "the same, server on the other core",
                Some("pg_pk_lookup_same_core"),
            ),
            row(
                "redis_get_same_core",
                "Redis GET, server on the client's core",
                None,
            ),
            row(
                "redis_get_cross_core",
                "the same, server on the other core",
                Some("redis_get_same_core"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_equality",
        title: "Lesson 4, case 1: WHERE email = $1, 1M users",
        floor: None,
        benches: &[
            row("seq_scan", "no index: a sequential scan", None),
            row("btree", "B-tree on email", Some("seq_scan")),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_prefix",
        title: "Lesson 4, case 2: WHERE email LIKE 'user12345%', 1M users",
        floor: None,
        benches: &[
            row(
                "btree_en_us",
                "B-tree on email, en-US collation: LIKE cannot use it",
                None,
            ),
            row(
                "text_pattern_ops",
                "B-tree with text_pattern_ops",
                Some("btree_en_us"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_suffix",
        title: "Lesson 4, case 3: WHERE email LIKE '%@rare-domain.org', 1M users",
        floor: None,
        benches: &[
            row("seq_scan", "no index", None),
            row(
                "plain_btree",
                "B-trees on email (plain and text_pattern_ops)",
                Some("seq_scan"),
            ),
            row("trgm_gin", "pg_trgm GIN index", Some("seq_scan")),
            row(
                "reverse_expr",
                "reverse(email) text_pattern_ops, queried by reverse(email) LIKE",
                Some("seq_scan"),
            ),
            row(
                "domain_column",
                "generated email_domain column + B-tree, queried by =",
                Some("seq_scan"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_match_all",
        title: "Lesson 4, case 4: LIKE '%@example.com' when 99% of 1M rows match",
        floor: None,
        benches: &[
            row(
                "seq_scan",
                "the planner's choice: a sequential scan (a trigram index exists)",
                None,
            ),
            row(
                "forced_trgm",
                "the trigram index, forced (enable_seqscan = off)",
                Some("seq_scan"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_covering",
        title: "Lesson 4, case 5: SELECT id, email WHERE email = $1, 1M users",
        floor: None,
        benches: &[
            row("index_scan", "B-tree on email: index, then the table", None),
            row(
                "index_only_scan",
                "covering (email) INCLUDE (id): the index alone",
                Some("index_scan"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_growth",
        title: "Lesson 4: scans grow with the table, index lookups don't",
        floor: None,
        benches: &[
            row("eq_seq_scan_10k", "email =, no index, 10k rows", None),
            row("eq_seq_scan_100k", "email =, no index, 100k rows", None),
            row("eq_seq_scan_1m", "email =, no index, 1M rows", None),
            row(
                "eq_btree_10k",
                "email =, B-tree, 10k rows",
                Some("eq_seq_scan_10k"),
            ),
            row(
                "eq_btree_100k",
                "email =, B-tree, 100k rows",
                Some("eq_seq_scan_100k"),
            ),
            row(
                "eq_btree_1m",
                "email =, B-tree, 1M rows",
                Some("eq_seq_scan_1m"),
            ),
            row(
                "suffix_seq_scan_10k",
                "rare suffix LIKE, no index, 10k rows",
                None,
            ),
            row(
                "suffix_seq_scan_100k",
                "rare suffix LIKE, no index, 100k rows",
                None,
            ),
            row(
                "suffix_seq_scan_1m",
                "rare suffix LIKE, no index, 1M rows",
                None,
            ),
            row(
                "suffix_domain_column_10k",
                "rare domain, email_domain column + B-tree, 10k rows",
                Some("suffix_seq_scan_10k"),
            ),
            row(
                "suffix_domain_column_100k",
                "rare domain, email_domain column + B-tree, 100k rows",
                Some("suffix_seq_scan_100k"),
            ),
            row(
                "suffix_domain_column_1m",
                "rare domain, email_domain column + B-tree, 1M rows",
                Some("suffix_seq_scan_1m"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_write",
        title: "Lesson 4: what each suffix fix costs a writer (1,000-row INSERT)",
        floor: None,
        benches: &[
            row("insert_1000_pk_only", "primary key only", None),
            row(
                "insert_1000_trgm_gin",
                "plus the pg_trgm GIN index",
                Some("insert_1000_pk_only"),
            ),
            row(
                "insert_1000_reverse_expr",
                "plus the reverse(email) index",
                Some("insert_1000_pk_only"),
            ),
            row(
                "insert_1000_domain_column",
                "plus the generated column and its B-tree",
                Some("insert_1000_pk_only"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "index_mariadb",
        title: "Lesson 4, case 6: the same on MariaDB (InnoDB), 1M users",
        floor: None,
        benches: &[
            row("eq_scan", "email =, no index", None),
            row("eq_btree", "email =, B-tree on email", Some("eq_scan")),
            row("prefix_btree", "LIKE 'user12345%', B-tree on email", None),
            row(
                "suffix_btree",
                "LIKE '%@rare-domain.org', B-tree on email: a full scan",
                None,
            ),
            row(
                "domain_column",
                "email_domain = ?, generated column + B-tree",
                Some("suffix_btree"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "buffers_pg_read",
        title: "Lesson 5: a random primary-key read, by shared_buffers (2M users, 203 MiB)",
        floor: None,
        benches: &[
            row("read/128kB", "shared_buffers = 128kB (the minimum)", None),
            row("read/16MB", "shared_buffers = 16MB", None),
            row("read/128MB", "shared_buffers = 128MB (the default)", None),
            row(
                "read/25pct_ram",
                "shared_buffers = 25% of RAM",
                Some("read/128MB"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "buffers_pg_scan",
        title: "Lesson 5: a full-scan aggregate over 2M users, by shared_buffers",
        floor: None,
        benches: &[
            row("scan/128kB", "shared_buffers = 128kB (the minimum)", None),
            row("scan/16MB", "shared_buffers = 16MB", None),
            row("scan/128MB", "shared_buffers = 128MB (the default)", None),
            row(
                "scan/25pct_ram",
                "shared_buffers = 25% of RAM",
                Some("scan/128MB"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "work_mem",
        title: "Lesson 5: ORDER BY and GROUP BY over 1M rows, by work_mem",
        floor: None,
        benches: &[
            row("sort/64kB", "ORDER BY, work_mem = 64kB", None),
            row("sort/4MB", "ORDER BY, work_mem = 4MB (the default)", None),
            row("sort/32MB", "ORDER BY, work_mem = 32MB", Some("sort/4MB")),
            row("sort/256MB", "ORDER BY, work_mem = 256MB", Some("sort/4MB")),
            row("hash/64kB", "GROUP BY (hash), work_mem = 64kB", None),
            row(
                "hash/4MB",
                "GROUP BY (hash), work_mem = 4MB (the default)",
                None,
            ),
            row(
                "hash/32MB",
                "GROUP BY (hash), work_mem = 32MB",
                Some("hash/4MB"),
            ),
            row(
                "hash/256MB",
                "GROUP BY (hash), work_mem = 256MB",
                Some("hash/4MB"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "innodb_pool_read",
        title: "Lesson 5: a random primary-key read in MariaDB, by innodb_buffer_pool_size (1M users)",
        floor: None,
        benches: &[
            row("read/8M", "innodb_buffer_pool_size = 8M", None),
            row(
                "read/128M",
                "128M (the default), resized online",
                Some("read/8M"),
            ),
            row("read/1G", "1G, resized online", Some("read/8M")),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "query_cache_aggregate",
        title: "Lesson 5: a repeated aggregate over 1M users in MariaDB, query cache off vs on",
        floor: None,
        benches: &[
            row(
                "repeat/off",
                "the same aggregate again, query cache off",
                None,
            ),
            row(
                "repeat/on",
                "the same aggregate again, query cache on (64M)",
                Some("repeat/off"),
            ),
            row("after_write/off", "after an UPDATE of one row, off", None),
            row(
                "after_write/on",
                "after an UPDATE of one row, on",
                Some("after_write/off"),
            ),
        ],
        checks: &[],
    },
    GroupSpec {
        id: "query_cache_reads",
        title: "Lesson 5: point reads in MariaDB, 4 readers at once, query cache off vs on",
        floor: None,
        benches: &[
            row(
                "hot_reads/off",
                "reads of 1,000 hot users, query cache off",
                None,
            ),
            row(
                "hot_reads/on",
                "reads only, query cache on (64M)",
                Some("hot_reads/off"),
            ),
            row(
                "hot_reads_with_writes/off",
                "1,000 hot users, 500 UPDATEs/s meanwhile, off",
                None,
            ),
            row(
                "hot_reads_with_writes/on",
                "1,000 hot users, 500 UPDATEs/s meanwhile, on",
                Some("hot_reads_with_writes/off"),
            ),
            row("spread_reads/off", "reads of any of 1M users, off", None),
            row(
                "spread_reads/on",
                "reads of any of 1M users, on",
                Some("spread_reads/off"),
            ),
            row(
                "spread_reads_with_writes/off",
                "any of 1M users, 500 UPDATEs/s, off",
                None,
            ),
            row(
                "spread_reads_with_writes/on",
                "any of 1M users, 500 UPDATEs/s, on",
                Some("spread_reads_with_writes/off"),
            ),
        ],
        checks: &[],
    },
];

/// The estimates of `spec`'s benches, in its order; an error names any
/// bench with no results.
pub fn select<'a>(spec: &GroupSpec, all: &'a [Estimate]) -> anyhow::Result<Vec<&'a Estimate>> {
    spec.benches
        .iter()
        .map(|Row { name, .. }| {
            all.iter().find(|e| e.bench == *name).with_context(|| {
                format!(
                    "no criterion results for {}/{name}: run `just report` without --reuse",
                    spec.id
                )
            })
        })
        .collect()
}

fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    }
}

/// The Markdown table for one group.
pub fn table_md(spec: &GroupSpec, rows: &[&Estimate], quick: bool) -> String {
    let median_of = |name: &str| rows.iter().find(|e| e.bench == name).map(|e| e.median_ns);
    let floor = spec.floor.and_then(median_of);
    let any_baseline = spec.benches.iter().any(|r| r.baseline.is_some());
    let mut md = String::new();
    let _ = writeln!(
        md,
        "<!-- generated by `just report` from criterion's estimates; do not edit -->"
    );
    if quick {
        let _ = writeln!(
            md,
            "<!-- {QUICK_MARKER} -->\n> **{QUICK_MARKER}** (`just report --quick`): too few samples to quote. \
             `just report` gives the book's figures.\n"
        );
    }
    let mut header = String::from("| bench | what it measures | median | 95% CI of the median |");
    let mut rule = String::from("| --- | --- | ---: | ---: |");
    if let Some(f) = spec.floor {
        let _ = write!(header, " × `{f}` |");
        rule.push_str(" ---: |");
    }
    if any_baseline {
        header.push_str(" speed-up |");
        rule.push_str(" ---: |");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    for (e, row) in rows.iter().zip(spec.benches) {
        let _ = write!(
            md,
            "| `{}` | {} | {} | {} – {} |",
            e.bench,
            row.what,
            lab::units::nanos(e.median_ns),
            lab::units::nanos(e.lower_ns),
            lab::units::nanos(e.upper_ns)
        );
        if let Some(f) = floor {
            let _ = write!(md, " {} |", fmt_ratio(e.median_ns / f));
        }
        if any_baseline {
            match row.baseline.and_then(|b| median_of(b).map(|m| (b, m))) {
                Some((b, m)) => {
                    let _ = write!(md, " {} vs `{b}` |", fmt_ratio(m / e.median_ns));
                }
                None => md.push_str(" |"),
            }
        }
        md.push('\n');
    }
    for check in spec.checks {
        let sum: Option<f64> = check.against.iter().map(|a| median_of(a)).sum();
        if let (Some(m), Some(sum)) = (median_of(check.bench), sum) {
            let names = check
                .against
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(" + ");
            let _ = writeln!(
                md,
                "\n`{}` takes {} the sum of {names} ({}).",
                check.bench,
                fmt_ratio(m / sum),
                lab::units::nanos(sum)
            );
        }
    }
    md
}

/// A bar chart of the medians, with the confidence interval as a whisker.
pub fn chart_svg(
    spec: &GroupSpec,
    rows: &[&Estimate],
    path: &Path,
    quick: bool,
) -> anyhow::Result<()> {
    let max = rows
        .iter()
        .map(|e| e.upper_ns)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let (div, unit) = if max >= 1e6 {
        (1e6, "ms")
    } else if max >= 1e3 {
        (1e3, "µs")
    } else {
        (1.0, "ns")
    };
    let min = rows
        .iter()
        .map(|e| e.lower_ns)
        .fold(f64::MAX, f64::min)
        .max(1.0);
    // When the bars span more than 50×, a linear axis shows only the tallest:
    // plot log10 of the value instead, and label the axis in real units.
    let log = max / min > 50.0;
    let y = |ns: f64| if log { (ns / div).log10() } else { ns / div };
    let (y_lo, y_hi) = if log {
        ((min / div).log10().floor(), (max / div).log10() + 0.15)
    } else {
        (0.0, (max / div) * 1.15)
    };
    let names: Vec<&str> = rows.iter().map(|e| e.bench.as_str()).collect();
    let caption = if quick {
        format!("{} ({QUICK_MARKER})", spec.id)
    } else {
        format!("{}: median time per operation", spec.id)
    };

    // Many bars, or long names, don't fit side by side: turn the names
    // vertical and make room for them under the axis.
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0) as u32;
    let vertical = names.len() as u32 * (longest * 7 + 12) > 820;
    let label_area = if vertical { longest * 7 + 16 } else { 36 };
    let root = SVGBackend::new(path, (900, 364 + label_area)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption.as_str(), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(label_area)
            .y_label_area_size(64)
            // `0..n-1` segmented gives exactly n bars (0..n would add an empty one).
            .build_cartesian_2d(
                (0..names.len().saturating_sub(1)).into_segmented(),
                y_lo..y_hi,
            )?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_label_formatter(&|v| match v {
                // Vertical names are drawn below, by hand.
                SegmentValue::CenterOf(i) if !vertical => {
                    names.get(*i).map(|s| s.to_string()).unwrap_or_default()
                }
                _ => String::new(),
            })
            .y_label_formatter(&|v| {
                if log {
                    lab::units::nanos(10f64.powf(*v) * div)
                } else {
                    format!("{v:.0}")
                }
            })
            .y_desc(if log {
                "log scale (lower is better)".to_string()
            } else {
                format!("{unit} (lower is better)")
            })
            .label_style(("sans-serif", 13))
            .draw()?;
        if vertical {
            // The mesh centres every label on its tick, which puts a
            // rotated one half inside the plot: anchor each at its start,
            // just under the axis, so it hangs below.
            let style = TextStyle::from(
                ("sans-serif", 13)
                    .into_font()
                    .transform(FontTransform::Rotate90),
            )
            .pos(Pos::new(HPos::Left, VPos::Center));
            for (i, name) in names.iter().enumerate() {
                let (x, y) = chart.backend_coord(&(SegmentValue::CenterOf(i), y_lo));
                root.draw(&Text::new(name.to_string(), (x, y + 8), style.clone()))?;
            }
        }
        let bar = RGBColor(0x3b, 0x6e, 0xa5);
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(bar.filled())
                .margin(28)
                .baseline(y_lo)
                .data(rows.iter().enumerate().map(|(i, e)| (i, y(e.median_ns)))),
        )?;
        chart.draw_series(rows.iter().enumerate().map(|(i, e)| {
            PathElement::new(
                vec![
                    (SegmentValue::CenterOf(i), y(e.lower_ns)),
                    (SegmentValue::CenterOf(i), y(e.upper_ns)),
                ],
                BLACK.stroke_width(2),
            )
        }))?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("Failed to draw {}: {e}", path.display()))
}

/// The first lines of a file rendered from a bench's results in
/// `target/lab-experiments/`: where it came from, and under a quick run the
/// marker CI refuses to let into the book ("not the book's {what}").
pub fn experiment_header(bench: &str, results: &str, what: &str, quick: bool) -> String {
    let mut out = format!(
        "<!-- generated by `just report` from the {bench} bench (target/lab-experiments/{results}); do not edit -->\n"
    );
    if quick {
        let _ = writeln!(
            out,
            "<!-- {QUICK_MARKER} -->\n> **{QUICK_MARKER}**: not the book's {what}.\n"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(bench: &str, median_ns: f64) -> Estimate {
        Estimate {
            bench: bench.into(),
            median_ns,
            lower_ns: median_ns * 0.99,
            upper_ns: median_ns * 1.01,
            modified: std::time::SystemTime::now(),
        }
    }

    #[test]
    fn tables_give_ratios_against_floor_and_baseline() {
        let spec = &GROUPS[0];
        let all = vec![
            est("naive_get_user", 300_000.0),
            est("http_constant", 100_000.0),
            est("sqlx_pk_lookup", 150_000.0),
        ];
        let rows = select(spec, &all).expect("all three");
        let md = table_md(spec, &rows, false);
        assert!(md.contains("| `naive_get_user` |"), "{md}");
        assert!(
            md.contains("300.0 µs | 297.0 µs – 303.0 µs | 3.00× |"),
            "{md}"
        );
        assert!(
            md.contains("`naive_get_user` takes 1.20× the sum of `http_constant` + `sqlx_pk_lookup` (250.0 µs)"),
            "{md}"
        );
        assert!(md.contains("| `http_constant` | axum handler"), "{md}");
        assert!(!md.contains(QUICK_MARKER));
        assert!(table_md(spec, &rows, true).contains(QUICK_MARKER));
    }

    #[test]
    fn speed_ups_are_against_each_rows_own_baseline() {
        let spec = GROUPS
            .iter()
            .find(|g| g.id == "cache_aside")
            .expect("the lesson 2 group");
        let all: Vec<Estimate> = spec
            .benches
            .iter()
            .map(|r| est(r.name, 100_000.0))
            .collect();
        let mut all = all;
        all.iter_mut()
            .find(|e| e.bench == "naive_summary")
            .expect("row")
            .median_ns = 50_000_000.0;
        let rows = select(spec, &all).expect("rows");
        let md = table_md(spec, &rows, false);
        assert!(md.contains("500× vs `naive_summary` |"), "{md}");
        assert!(md.contains("1.00× vs `naive_get_user` |"), "{md}");
    }

    #[test]
    fn a_missing_bench_is_named() {
        let err = select(&GROUPS[0], &[est("http_constant", 1.0)]).expect_err("two are missing");
        assert!(
            err.to_string().contains("lesson_01/sqlx_pk_lookup"),
            "{err}"
        );
    }

    #[test]
    fn charts_are_svg_with_every_bench_named() {
        let spec = &GROUPS[0];
        let all = vec![
            est("naive_get_user", 300_000.0),
            est("http_constant", 100_000.0),
            est("sqlx_pk_lookup", 150_000.0),
        ];
        let rows = select(spec, &all).expect("rows");
        let path = std::env::temp_dir().join(format!("chart-{}.svg", std::process::id()));
        chart_svg(spec, &rows, &path, false).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        std::fs::remove_file(&path).ok();
        assert!(svg.starts_with("<svg"));
        for Row { name, .. } in spec.benches {
            assert!(svg.contains(name), "the chart labels {name}");
        }
    }

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(lab::units::nanos(950.0), "950 ns");
        assert_eq!(lab::units::nanos(113_110.0), "113.1 µs");
        assert_eq!(lab::units::nanos(2_006_300_000.0), "2.01 s");
    }
}
