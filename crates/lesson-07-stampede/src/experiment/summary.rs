//! The experiments' tables, as `just report` renders them into the book
//! and `just lesson-7` prints them, and the short findings after them.

use std::fmt::Write;

use super::StampedeResults;
use super::baseline::{self, PUBLISHED};
use super::herd::HerdRow;
use crate::Strategy;
use lab::units::millis;

/// `part` of `whole` as a percentage, or "–" of nothing.
fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

/// A whole number of ms as the setup lines say it: `50 ms`.
fn ms(d: std::time::Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn secs(ms: u64) -> String {
    let s = format!("{:.1}", ms as f64 / 1000.0);
    format!("{} s", s.strip_suffix(".0").unwrap_or(&s))
}

/// "PostgreSQL's count", flagged when it differs from the service's.
fn pg_count(service: u64, pg: i64) -> String {
    if pg as u64 == service {
        pg.to_string()
    } else {
        format!("{pg} (≠)")
    }
}

impl StampedeResults {
    /// Experiment 1's parameters, which its table does not show.
    pub fn herd_setup_md(&self) -> String {
        let Some(r) = self.herd.first() else {
            return String::new();
        };
        let s = &r.shape;
        format!(
            "Setup: {} instances, each with its own pool of {} connections and its own single-flight map; \
             {} clients in a closed loop over {} hot keys; TTL {}, no jitter; every load spends {} in PostgreSQL; \
             {} per strategy, starting with one read of each key (the first fills) before the clients. A perfect cache makes {} loads in that time ({} keys × {} TTLs): \
             \"per refresh\" divides by that.\n",
            s.instances,
            super::fixture::POOL,
            s.clients,
            s.keys,
            secs(s.ttl.as_millis() as u64),
            ms(s.latency),
            secs(s.duration.as_millis() as u64),
            r.ideal_refreshes,
            s.keys,
            r.ideal_refreshes / s.keys.max(1) as u64,
        )
    }

    /// Experiment 1: one row per strategy.
    pub fn herd_md(&self) -> String {
        runs_md(&self.herd)
    }

    /// Experiment 2's parameters; in a short run, that it did not run.
    pub fn baseline_setup_md(&self) -> String {
        let Some(r) = self.baseline.first() else {
            return "The published baseline is a long-run table: `just report` (or `just lesson-7 --long`) runs it.\n"
                .into();
        };
        let s = &r.shape;
        format!(
            "Setup: the Internet Archive's harness (RedisConf 2017: 50 workers, one key, a 20 s TTL, 500 ms \
             recomputes) with its times divided by ten: {} clients on {} instances, one key, TTL {}, {} loads, \
             {} per strategy. Their run length is not published: compare the shares, not the totals. \
             Our counts include the key's first fill (one load, one miss).\n",
            s.clients,
            s.instances,
            secs(s.ttl.as_millis() as u64),
            ms(s.latency),
            secs(s.duration.as_millis() as u64),
        )
    }

    /// Experiment 2: ours beside theirs; empty in a short run.
    pub fn baseline_md(&self) -> String {
        if self.baseline.is_empty() {
            return String::new();
        }
        let mut s = String::from(
            "| ours | theirs | our loads | simultaneous | misses | their recomputes | simultaneous | misses |\n\
             |---|---|---:|---:|---:|---:|---:|---:|\n",
        );
        let opt = |v: Option<u64>| v.map_or("–".to_string(), |v| v.to_string());
        for r in &self.baseline {
            let p = baseline::published(r.strategy);
            let (name, recomputes, simultaneous, misses) = match p {
                Some(p) => (
                    p.name,
                    p.recomputes.to_string(),
                    p.simultaneous.map_or("–".to_string(), |n| {
                        format!("{n} ({})", share(n, p.recomputes))
                    }),
                    opt(p.misses),
                ),
                None => (
                    "none (their workers were separate processes)",
                    "–".into(),
                    "–".into(),
                    "–".into(),
                ),
            };
            let _ = writeln!(
                s,
                "| {} | {name} | {} | {} ({}) | {} | {recomputes} | {simultaneous} | {misses} |",
                r.strategy.name(),
                r.db_queries,
                r.overlapping,
                share(r.overlapping, r.db_queries),
                r.misses
            );
        }
        for p in PUBLISHED.iter().filter(|p| p.ours.is_none()) {
            let _ = writeln!(
                s,
                "| not run | {} | – | – | – | {} | {} | {} |",
                p.name,
                p.recomputes,
                opt(p.simultaneous),
                opt(p.misses)
            );
        }
        s
    }

    /// Experiment 3's parameters.
    pub fn jitter_setup_md(&self) -> String {
        let Some(r) = self.jitter.first() else {
            return String::new();
        };
        format!(
            "Setup: leases (one load per expired key across the instances), {} instances, {} keys, TTL {}, {} ms loads. A warm-up reads every key once \
             ({} clients as fast as their answers come); then {} clients read uniformly spread keys for {}. \
             The counts and the timeline start at the end of the warm-up.\n",
            r.instances,
            r.keys,
            secs(r.ttl_ms),
            r.latency_ms,
            r.clients,
            r.clients,
            secs(r.duration_ms),
        )
    }

    /// Experiment 3: one row per jitter setting.
    pub fn jitter_md(&self) -> String {
        let mut s = String::from(
            "| TTL jitter | warm-up | DB loads after it | PostgreSQL's count | most loads in 100 ms | at | p99 | max |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.jitter {
            let _ = writeln!(
                s,
                "| {} | {} ({} loads) | {} | {} | {} | {:.1} s | {} | {} |",
                if r.jitter == 0.0 {
                    "none".to_string()
                } else {
                    format!("{:.0}% of the TTL", r.jitter * 100.0)
                },
                millis(r.warmup_ms),
                r.warmup_loads,
                r.db_queries,
                pg_count(r.db_queries, r.pg_calls),
                r.peak,
                r.peak_at_s,
                millis(r.p99_ms),
                millis(r.max_ms)
            );
        }
        s
    }

    /// Experiment 4's parameters.
    pub fn negative_setup_md(&self) -> String {
        let Some(r) = self.negative.first() else {
            return String::new();
        };
        format!(
            "Setup: single-flight, {} instances, {} clients in a closed loop over {} ids that do not exist, \
             {} ms loads, {} per setting.\n",
            r.instances,
            r.clients,
            r.ids,
            r.latency_ms,
            secs(r.duration_ms),
        )
    }

    /// Experiment 4: one row per negative TTL.
    pub fn negative_md(&self) -> String {
        let mut s = String::from(
            "| negative TTL | requests | not a 404 | DB loads | PostgreSQL's count | negative hits | p50 | p99 |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.negative {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                if r.negative_ttl_s == 0 {
                    "0 (off)".to_string()
                } else {
                    format!("{} s", r.negative_ttl_s)
                },
                r.requests,
                r.errors,
                r.db_queries,
                pg_count(r.db_queries, r.pg_calls),
                r.negative_hits,
                millis(r.p50_ms),
                millis(r.p99_ms)
            );
        }
        s
    }

    /// The conclusions `just lesson-7` prints, each from a count.
    pub fn findings(&self) -> String {
        let mut s = String::from("What this run found:\n");
        let by = |s: Strategy| self.herd.iter().find(|r| r.strategy == s);
        if let (Some(naive), Some(sf), Some(lease), Some(xf)) = (
            by(Strategy::Naive),
            by(Strategy::SingleFlight),
            by(Strategy::Lease),
            by(Strategy::XFetch),
        ) {
            let _ = writeln!(
                s,
                "- the herd: with no protection, {:.1} DB loads per refresh ({} of {} simultaneous); \
                 single-flight {:.1} (one per instance would be {}); a lease {:.1}; XFetch {:.1}, \
                 {} of them early, with {} requests finding a key missing.",
                naive.per_refresh,
                naive.overlapping,
                naive.db_queries,
                sf.per_refresh,
                sf.shape.instances,
                lease.per_refresh,
                xf.per_refresh,
                xf.early,
                xf.misses
            );
            if naive.queued > 0 {
                let _ = writeln!(
                    s,
                    "- {} of naive's {} loads were sent while all {} connections of their instance were \
                     busy: they queued for one first.",
                    naive.queued,
                    naive.db_queries,
                    super::fixture::POOL
                );
            }
        }
        let ours = |st: Strategy| self.baseline.iter().find(|r| r.strategy == st);
        if let (Some(naive), Some(xf), Some(plain), Some(theirs_xf)) = (
            ours(Strategy::Naive),
            ours(Strategy::XFetch),
            baseline::published(Strategy::Naive),
            baseline::published(Strategy::XFetch),
        ) {
            let theirs = |p: &baseline::Published| share(p.simultaneous.unwrap_or(0), p.recomputes);
            let _ = writeln!(
                s,
                "- the published baseline: {} of naive's loads were simultaneous (theirs, {}: {}); \
                 XFetch's {}, with {} misses (theirs: {}, {} misses).",
                share(naive.overlapping, naive.db_queries),
                plain.name,
                theirs(plain),
                share(xf.overlapping, xf.db_queries),
                xf.misses,
                theirs(theirs_xf),
                theirs_xf.misses.unwrap_or(0)
            );
        }
        if let [off, on, ..] = self.jitter.as_slice() {
            let _ = writeln!(
                s,
                "- mass expiry: without jitter, {} DB loads, at most {} in 100 ms ({:.1} s after the warm-up), \
                 p99 {}; with {:.0}% jitter, {} loads, at most {} in 100 ms, p99 {}.",
                off.db_queries,
                off.peak,
                off.peak_at_s,
                millis(off.p99_ms),
                on.jitter * 100.0,
                on.db_queries,
                on.peak,
                millis(on.p99_ms)
            );
        }
        if let [cached, off, ..] = self.negative.as_slice() {
            let _ = writeln!(
                s,
                "- missing ids: {} DB loads for {} requests with a {} s negative TTL, {} for {} without.",
                cached.db_queries,
                cached.requests,
                cached.negative_ttl_s,
                off.db_queries,
                off.requests
            );
        }
        let rows: Vec<(String, u64, i64)> = self
            .herd
            .iter()
            .chain(&self.baseline)
            .map(|r| (r.strategy.name().to_string(), r.db_queries, r.pg_calls))
            .chain(
                self.jitter
                    .iter()
                    .map(|r| (format!("jitter {}", r.jitter), r.db_queries, r.pg_calls)),
            )
            .chain(self.negative.iter().map(|r| {
                (
                    format!("negative TTL {} s", r.negative_ttl_s),
                    r.db_queries,
                    r.pg_calls,
                )
            }))
            .collect();
        let differ: Vec<String> = rows
            .iter()
            .filter(|(_, app, pg)| *pg as u64 != *app)
            .map(|(name, app, pg)| format!("{name}: {app} vs {pg}"))
            .collect();
        if differ.is_empty() {
            let _ = writeln!(
                s,
                "- PostgreSQL counted exactly the loads the service counted, in all {} runs.",
                rows.len()
            );
        } else {
            let _ = writeln!(
                s,
                "- PostgreSQL's count differs from the service's: {}.",
                differ.join("; ")
            );
        }
        let errors: u64 = self
            .herd
            .iter()
            .chain(&self.baseline)
            .map(|r| r.errors)
            .sum();
        let redis: u64 = self
            .herd
            .iter()
            .chain(&self.baseline)
            .map(|r| r.redis_errors)
            .sum();
        if errors > 0 || redis > 0 {
            let _ = writeln!(
                s,
                "- {errors} answers other than 200 and {redis} Redis errors in the herd runs."
            );
        }
        s
    }
}

/// Experiments 1 and 2's table: one row per strategy's run.
fn runs_md(rows: &[HerdRow]) -> String {
    let mut s = String::from(
        "| strategy | requests | errors | DB loads | PostgreSQL's count | simultaneous | per refresh | misses | coalesced | early | lease timeouts | p50 | p99 | max |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} |",
            r.strategy.name(),
            r.requests,
            r.errors,
            r.db_queries,
            pg_count(r.db_queries, r.pg_calls),
            r.overlapping,
            r.per_refresh,
            r.misses,
            r.coalesced,
            r.early,
            r.lease_timeouts,
            millis(r.p50_ms),
            millis(r.p99_ms),
            millis(r.max_ms)
        );
    }
    s
}
