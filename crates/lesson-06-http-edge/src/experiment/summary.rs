//! The results as Markdown tables (rendered by `just report`) and the
//! findings: one conclusion per experiment, printed by `just lesson-6`.

use std::fmt::Write;

use super::EdgeResults;
use super::fixture::{counted, tally_text};
use super::revalidate::bytes_not_time;
use super::stale::{StaleRun, policy_label};

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
            let policy = policy_label(&r.use_stale);
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
        let _ = writeln!(md, "\n{}.", s.nginx_500_note());
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
        let _ = writeln!(md, "\nWith background update on, {}.", s.slow_answer_text());
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
        if let [on, off] = &r.rows[..] {
            let _ = writeln!(md, "\n{}.", capitalised(&bytes_not_time(on, off)));
        }
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

    /// Experiments 2–6's conclusions, one sentence each, in order.
    pub fn conclusions(&self) -> [String; 5] {
        [
            self.collapse_conclusion(),
            self.stale_conclusion(),
            self.swr_conclusion(),
            self.revalidate_conclusion(),
            self.purge_conclusion(),
        ]
    }

    /// The conclusions under a heading, numbered by experiment.
    pub fn findings(&self) -> String {
        let mut out = String::from("Findings (experiments 2–6):\n");
        for (n, c) in (2..).zip(self.conclusions()) {
            let _ = writeln!(out, "{n}. {c}");
        }
        out
    }

    fn collapse_conclusion(&self) -> String {
        let find = |prefix: &str| self.collapse.iter().find(|r| r.variant.starts_with(prefix));
        let (Some(on), Some(off), Some(short)) =
            (find("lock on"), find("lock off"), find("lock timeout"))
        else {
            return "not run".into();
        };
        format!(
            "the lock turned {} concurrent cold requests into {} \
             ({} without it; {} when the lock timeout ({}) is shorter than the origin ({}))",
            on.clients,
            counted(on.origin_requests, "origin request"),
            off.origin_requests,
            short.origin_requests,
            ms_or_s(short.lock_timeout_ms.unwrap_or_default()),
            ms_or_s(short.origin_latency_ms),
        )
    }

    fn stale_conclusion(&self) -> String {
        let s = &self.stale;
        let find = |outage: &str, directive: bool| {
            s.runs
                .iter()
                .find(|r| r.outage == outage && (r.use_stale == "Directive") == directive)
        };
        let (Some(d500), Some(dkill), Some(o500), Some(okill)) = (
            find("500", true),
            find("killed", true),
            find("500", false),
            find("killed", false),
        ) else {
            return "not run".into();
        };
        let directive = if d500.window.ok_pct >= 100.0 && dkill.window.ok_pct >= 100.0 {
            format!(
                "nginx's proxy_cache_use_stale hid both outages (every answer a 200, stale from {} s to the end of the {:.0} s watch)",
                opt(d500.window.first_stale),
                s.watched_s
            )
        } else {
            format!(
                "nginx's proxy_cache_use_stale: 500 → {}; killed → {}",
                fate(d500),
                fate(dkill)
            )
        };
        let covered = |r: &StaleRun| r.window.first_stale.is_some();
        let killed = format!(
            "the origin's stale-if-error={} s alone {} a killed origin ({}; s-maxage + stale-if-error = {} s)",
            s.stale_if_error_s,
            if covered(okill) {
                "covered"
            } else {
                "did not cover"
            },
            fate(okill),
            s.s_maxage_s + s.stale_if_error_s,
        );
        let fault = if covered(o500) {
            format!("and a 500 too ({})", fate(o500))
        } else {
            format!(
                "but not a 500 ({}): nginx applies it to connection errors and timeouts only",
                fate(o500)
            )
        };
        format!("{directive}; {killed} {fault}")
    }

    fn swr_conclusion(&self) -> String {
        let rows = &self.swr.rows;
        let (Some(on), Some(none)) = (rows.first(), rows.last()) else {
            return "not run".into();
        };
        format!(
            "with background update, {} refreshed the expired entry while {} answers stayed fast \
             (p99 {:.1} ms) and {} waited: {}; with no stale serving, {} waited ({})",
            counted(on.origin_requests, "origin request"),
            on.answers,
            on.p99_ms,
            on.waited,
            self.swr.slow_answer_cause(),
            counted(none.waited as u64, "answer"),
            counted(none.origin_requests, "origin request")
        )
    }

    fn revalidate_conclusion(&self) -> String {
        let r = &self.revalidate;
        let [on, off] = &r.rows[..] else {
            return "not run".into();
        };
        format!(
            "over {} refreshes, proxy_cache_revalidate got {} of body from the origin ({} × 304) instead of {}; \
             the gain is bytes, not time (a refresh on loopback: {:.0} vs {:.0} ms, within noise); \
             a client's own If-None-Match got {} with {} body bytes from the edge",
            on.refreshes,
            lab::units::kib_or_mib(on.origin_body_bytes),
            on.origin_304,
            lab::units::kib_or_mib(off.origin_body_bytes),
            on.median_refresh_ms,
            off.median_refresh_ms,
            r.client_status,
            r.client_bytes
        )
    }

    fn purge_conclusion(&self) -> String {
        let p = &self.purge;
        let cache = |steps: &[(String, String)], i: usize| {
            steps
                .get(i)
                .and_then(|(_, a)| a.split_whitespace().last())
                .unwrap_or("?")
                .to_string()
        };
        let versioned = format!(
            "a new version (?v=2) was a {} right after ?v=1 was a {}: a versioned URL invalidates with any nginx or CDN",
            cache(&p.versioned, 2),
            cache(&p.versioned, 1)
        );
        match &p.purged {
            Some(steps) => format!(
                "{versioned}; the purge module deleted the entry itself (a {} before the purge, a {} after)",
                cache(steps, 1),
                cache(steps, 3)
            ),
            None => format!("{versioned}; the purge module is not installed here"),
        }
    }
}

/// How one stale-if-error timeline ended, in words.
fn fate(r: &StaleRun) -> String {
    let w = &r.window;
    match (w.seconds(), w.first_error) {
        (Some(_), None) if w.stale_at_end => {
            format!("stale from {} s to the end", opt(w.first_stale))
        }
        (Some(s), None) => format!("stale for {s:.1} s, no error"),
        (Some(s), Some(e)) => format!("stale for {s:.1} s, errors from {e:.1} s"),
        (None, Some(e)) => format!("never stale, errors from {e:.1} s"),
        (None, None) => "neither stale nor an error".into(),
    }
}

fn opt(t: Option<f64>) -> String {
    t.map_or("?".into(), |t| format!("{t:.1}"))
}

/// 300 → "300 ms", 1000 → "1 s".
fn ms_or_s(ms: u64) -> String {
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Plan;
    use crate::experiment::collapse::CollapseRow;
    use crate::experiment::purge::PurgeResults;
    use crate::experiment::revalidate::{RevalidateResults, RevalidateRow};
    use crate::experiment::stale::{Point, StaleResults, window};
    use crate::experiment::swr::{ConnectionProbe, ProbeAnswer, SlowAnswer, SwrResults, SwrRow};

    fn collapse(variant: &str, lock: Option<u64>, latency: u64, origin: u64) -> CollapseRow {
        CollapseRow {
            variant: variant.into(),
            clients: 20,
            origin_latency_ms: latency,
            lock_timeout_ms: lock,
            origin_requests: origin,
            statuses: Vec::new(),
            errors: 0,
            p50_ms: 1.0,
            max_ms: 1.0,
        }
    }

    /// A timeline: HIT until 2 s, then STALE until `stale_until`, then 502.
    fn stale_run(outage: &str, use_stale: &str, stale_until: f64) -> StaleRun {
        let timeline: Vec<Point> = (0..60)
            .map(|i| {
                let t = f64::from(i) * 0.15;
                let (status, cache) = match t {
                    t if t < 2.0 => (200, "HIT"),
                    t if t < stale_until => (200, "STALE"),
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
            use_stale: use_stale.into(),
            broke_at: 0.5,
            window: window(&timeline),
            timeline,
        }
    }

    fn swr_row(variant: &str, origin: u64, waited: usize, slowest: Option<SlowAnswer>) -> SwrRow {
        SwrRow {
            variant: variant.into(),
            clients: 16,
            seconds: 1.5,
            answers: 9000,
            errors: 0,
            statuses: Vec::new(),
            origin_requests: origin,
            p50_ms: 2.5,
            p99_ms: 5.5,
            max_ms: 350.0,
            waited,
            slowest_status: "HIT".into(),
            miss_ms: 330.0,
            slow_after_stale_same_connection: slowest.as_ref().is_some_and(SlowAnswer::after_stale),
            slowest,
            waited_after_stale: 1,
        }
    }

    fn answers(a: [(&str, f64); 2]) -> Vec<ProbeAnswer> {
        a.map(|(c, ms)| ProbeAnswer {
            cache: c.into(),
            ms,
        })
        .to_vec()
    }

    fn results() -> EdgeResults {
        let slow = SlowAnswer {
            client: 7,
            nth: 120,
            status: "HIT".into(),
            ms: 348.0,
            previous: Some("STALE".into()),
        };
        let refresh = |revalidate: bool, full: u64, ms: f64| RevalidateRow {
            revalidate,
            refreshes: 3,
            statuses: Vec::new(),
            origin_full: full,
            origin_304: 3 - full,
            origin_body_bytes: full << 20,
            median_refresh_ms: ms,
        };
        let steps = |s: &[(&str, &str)]| {
            s.iter()
                .map(|(p, a)| (p.to_string(), a.to_string()))
                .collect::<Vec<_>>()
        };
        EdgeResults {
            plan: Plan::short(),
            wall_s: 30.0,
            nginx: "nginx version: nginx/1.22.1".into(),
            collapse: vec![
                collapse("lock on", Some(5000), 500, 1),
                collapse("lock off", None, 500, 20),
                collapse("lock timeout < origin latency", Some(300), 1000, 20),
            ],
            stale: StaleResults {
                s_maxage_s: 2,
                stale_if_error_s: 5,
                watched_s: 9.0,
                poll_ms: 150,
                runs: vec![
                    stale_run("500", "Directive", 99.0),
                    stale_run("500", "OriginHeaders", 0.0),
                    stale_run("killed", "Directive", 99.0),
                    stale_run("killed", "OriginHeaders", 7.5),
                ],
            },
            swr: SwrResults {
                s_maxage_s: 3,
                stale_while_revalidate_s: 60,
                origin_latency_ms: 300,
                rows: vec![
                    swr_row("background update on (chapter)", 1, 1, Some(slow)),
                    swr_row("no stale serving at all", 16, 16, None),
                ],
                probe: Some(ConnectionProbe {
                    origin_latency_ms: 300,
                    same_connection: answers([("STALE", 3.0), ("HIT", 310.0)]),
                    new_connection: answers([("STALE", 3.0), ("UPDATING", 1.0)]),
                }),
            },
            revalidate: RevalidateResults {
                body_bytes: 1 << 20,
                rows: vec![refresh(true, 0, 22.4), refresh(false, 3, 18.4)],
                client_status: 304,
                client_bytes: 0,
                client_ms: 1.0,
                client_full_bytes: 1 << 20,
                client_full_ms: 2.0,
            },
            purge: PurgeResults {
                versioned: steps(&[
                    ("/users/42?v=1", "200 MISS"),
                    ("/users/42?v=1", "200 HIT"),
                    ("/users/42?v=2", "200 MISS"),
                ]),
                purged: Some(steps(&[
                    ("/users/43", "200 MISS"),
                    ("/users/43", "200 HIT"),
                    ("/purge/users/43", "200 -"),
                    ("/users/43", "200 MISS"),
                ])),
            },
        }
    }

    #[test]
    fn each_experiment_gets_one_conclusion_from_its_own_figures() {
        let r = results();
        let [collapse, stale, swr, revalidate, purge] = r.conclusions();
        assert_eq!(
            collapse,
            "the lock turned 20 concurrent cold requests into 1 origin request \
             (20 without it; 20 when the lock timeout (300 ms) is shorter than the origin (1 s))"
        );
        assert!(
            stale.starts_with("nginx's proxy_cache_use_stale hid both outages"),
            "{stale}"
        );
        assert!(
            stale.contains("alone covered a killed origin (stale for"),
            "{stale}"
        );
        assert!(
            stale.contains("but not a 500 (never stale, errors from 2.1 s)"),
            "{stale}"
        );
        assert!(swr.contains("1 origin request refreshed"), "{swr}");
        assert!(
            swr.contains("the next request on the connection that got the STALE (HIT 348 ms)"),
            "{swr}"
        );
        assert!(
            swr.contains("with no stale serving, 16 answers waited (16 origin requests)"),
            "{swr}"
        );
        assert!(
            revalidate.contains("0 KiB of body from the origin (3 × 304) instead of 3.0 MiB"),
            "{revalidate}"
        );
        assert!(revalidate.contains("not time"), "{revalidate}");
        assert!(
            purge.contains("?v=2) was a MISS right after ?v=1 was a HIT"),
            "{purge}"
        );
        assert!(
            purge.contains("(a HIT before the purge, a MISS after)"),
            "{purge}"
        );
        let findings = r.findings();
        assert!(findings.contains("\n2. the lock") && findings.contains("\n6. a new version"));
    }

    #[test]
    fn conclusions_say_what_was_seen_when_it_is_not_what_was_expected() {
        let mut r = results();
        // A probe where both connections waited does not explain the slow answer.
        if let Some(p) = r.swr.probe.as_mut() {
            p.new_connection = answers([("STALE", 3.0), ("HIT", 305.0)]);
        }
        r.stale.runs[1] = stale_run("500", "OriginHeaders", 5.0);
        r.purge.purged = None;
        let [_, stale, swr, _, purge] = r.conclusions();
        assert!(
            swr.contains("a HIT of 348 ms that came after STALE on its connection"),
            "{swr}"
        );
        assert!(stale.contains("and a 500 too"), "{stale}");
        assert!(
            purge.ends_with("the purge module is not installed here"),
            "{purge}"
        );
        // The tables name the policies in plain words, not Rust's.
        let md = r.stale_md();
        assert!(
            md.contains("nginx's proxy_cache_use_stale") && !md.contains("Directive"),
            "{md}"
        );
    }
}
