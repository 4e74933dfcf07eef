//! The results as Markdown tables (printed by `just lesson-6`, rendered by
//! `just report`) and the findings in a few sentences.

use std::fmt::Write;

use super::EdgeResults;
use super::fixture::tally_text;

fn opt_s(t: Option<f64>) -> String {
    t.map_or("—".into(), |t| format!("{t:.1}"))
}

impl EdgeResults {
    /// Experiment 2: origin requests per variant.
    pub fn collapse_md(&self) -> String {
        let mut md = String::from(
            "| edge | clients | origin latency | origin requests | cache statuses | errors | p50 | slowest |\n\
             |---|--:|--:|--:|---|--:|--:|--:|\n",
        );
        for r in &self.collapse {
            let lock = r
                .lock_timeout_ms
                .map_or("lock off".into(), |t| format!("lock on, timeout {t} ms"));
            let _ = writeln!(
                md,
                "| {lock} | {} | {} ms | **{}** | {} | {} | {:.0} ms | {:.0} ms |",
                r.clients,
                r.origin_latency_ms,
                r.origin_requests,
                tally_text(&r.statuses),
                r.errors,
                r.p50_ms,
                r.max_ms
            );
        }
        md
    }

    /// Experiment 3: each timeline's window.
    pub fn stale_md(&self) -> String {
        let s = &self.stale;
        let mut md = format!(
            "Origin: `s-maxage={}, stale-if-error={}`; it broke {:.1} s after the fill; a client asked every {} ms for {:.0} s. \
             Times in seconds since the fill.\n\n\
             | origin | edge serves stale | first STALE | last STALE | first error | stale window | 200s |\n\
             |---|---|--:|--:|--:|--:|--:|\n",
            s.s_maxage_s,
            s.stale_if_error_s,
            s.runs.first().map_or(0.0, |r| r.broke_at),
            s.poll_ms,
            s.watched_s
        );
        for r in &s.runs {
            let w = &r.window;
            let policy = match r.use_stale.as_str() {
                "Directive" => "`proxy_cache_use_stale error … http_500`",
                _ => "origin's `stale-if-error` only",
            };
            let window = match (w.seconds(), w.stale_at_end) {
                (Some(s), true) => format!("≥ {s:.1} s (to the end)"),
                (Some(s), false) => format!("{s:.1} s"),
                (None, _) => "none".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {policy} | {} | {} | {} | {window} | {:.0}% |",
                if r.outage == "500" {
                    "answers 500"
                } else {
                    "killed"
                },
                opt_s(w.first_stale),
                opt_s(w.last_stale),
                opt_s(w.first_error),
                w.ok_pct
            );
        }
        md
    }

    /// Experiment 4: latency of the answers while the entry refreshed.
    pub fn swr_md(&self) -> String {
        let s = &self.swr;
        let mut md = format!(
            "Origin: `s-maxage={}, stale-while-revalidate={}`, {} ms per query; load on the key just after it expired.\n\n\
             | edge | clients × s | answers | cache statuses | origin requests | answers that waited | p50 | p99 | slowest | a MISS (for scale) |\n\
             |---|--:|--:|---|--:|--:|--:|--:|--:|--:|\n",
            s.s_maxage_s, s.stale_while_revalidate_s, s.origin_latency_ms
        );
        for r in &s.rows {
            let _ = writeln!(
                md,
                "| {} | {} × {:.1} | {} | {} | **{}** | {} | {:.1} ms | {:.1} ms | {:.0} ms ({}) | {:.0} ms |",
                r.variant,
                r.clients,
                r.seconds,
                r.answers,
                tally_text(&r.statuses),
                r.origin_requests,
                r.waited,
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.slowest_status,
                r.miss_ms
            );
        }
        md
    }

    /// Experiment 5: what a refresh of 1 MiB costs, with and without a 304.
    pub fn revalidate_md(&self) -> String {
        let r = &self.revalidate;
        let mut md = String::from(
            "| `proxy_cache_revalidate` | refreshes | edge statuses | origin 200s | origin 304s | body bytes from the origin | median refresh |\n\
             |---|--:|---|--:|--:|--:|--:|\n",
        );
        for row in &r.rows {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {:.1} ms |",
                if row.revalidate { "on" } else { "off" },
                row.refreshes,
                tally_text(&row.statuses),
                row.origin_full,
                row.origin_304,
                lab::units::kib_or_mib(row.origin_body_bytes),
                row.median_refresh_ms
            );
        }
        let _ = writeln!(
            md,
            "\nA client's `If-None-Match` to the edge: **{}**, {} body bytes, median {:.1} ms (of 5); without it, {} in {:.1} ms.",
            r.client_status,
            r.client_bytes,
            r.client_ms,
            lab::units::kib_or_mib(r.client_full_bytes),
            r.client_full_ms
        );
        md
    }

    /// Experiment 6: the statuses, step by step.
    pub fn purge_md(&self) -> String {
        let mut md =
            String::from("| step | request | answer (status, X-Cache-Status) |\n|--:|---|---|\n");
        let mut n = 0;
        for (path, answer) in &self.purge.versioned {
            n += 1;
            let _ = writeln!(md, "| {n} | `GET {path}` | {answer} |");
        }
        match &self.purge.purged {
            Some(steps) => {
                for (path, answer) in steps {
                    n += 1;
                    let _ = writeln!(md, "| {n} | `GET {path}` | {answer} |");
                }
            }
            None => {
                let _ = writeln!(md, "| — | purge | the purge module is not installed |");
            }
        }
        md
    }

    /// Every table, under a heading each.
    pub fn table_md(&self) -> String {
        format!(
            "### Request collapsing\n\n{}\n### stale-if-error\n\n{}\n### stale-while-revalidate\n\n{}\n### Revalidation\n\n{}\n### Versioned URL and purge\n\n{}",
            self.collapse_md(),
            self.stale_md(),
            self.swr_md(),
            self.revalidate_md(),
            self.purge_md()
        )
    }

    /// The verdicts in a few lines: counts and windows.
    pub fn findings(&self) -> String {
        let mut out = String::from("Findings:\n");
        let count = |prefix: &str| {
            self.collapse
                .iter()
                .find(|r| r.variant.starts_with(prefix))
                .map_or("?".into(), |r| {
                    format!("{}/{}", r.origin_requests, r.clients)
                })
        };
        let _ = writeln!(
            out,
            "- collapsing: origin requests with the lock {}, without it {}, with a lock timeout shorter than the origin {}",
            count("lock on"),
            count("lock off"),
            count("lock timeout")
        );
        for r in &self.stale.runs {
            let w = &r.window;
            let _ = writeln!(
                out,
                "- stale-if-error, origin {} / {}: stale {}{}; {}",
                r.outage,
                r.use_stale,
                w.seconds()
                    .map_or("never".into(), |s| format!("for {s:.1} s")),
                if w.stale_at_end {
                    " (still at the end)"
                } else {
                    ""
                },
                w.first_error
                    .map_or("no error".into(), |t| format!("first error at {t:.1} s")),
            );
        }
        for r in &self.swr.rows {
            let _ = writeln!(
                out,
                "- swr, {}: {} origin request(s) for {} answers, {} waited for the origin, p99 {:.1} ms (a MISS: {:.0} ms)",
                r.variant, r.origin_requests, r.answers, r.waited, r.p99_ms, r.miss_ms
            );
        }
        for r in &self.revalidate.rows {
            let _ = writeln!(
                out,
                "- revalidate {}: {} of body from the origin over {} refreshes ({} × 304), median {:.1} ms",
                if r.revalidate { "on" } else { "off" },
                lab::units::kib_or_mib(r.origin_body_bytes),
                r.refreshes,
                r.origin_304,
                r.median_refresh_ms
            );
        }
        let _ = write!(
            out,
            "- client If-None-Match at the edge: {} with {} bytes",
            self.revalidate.client_status, self.revalidate.client_bytes
        );
        out
    }
}
