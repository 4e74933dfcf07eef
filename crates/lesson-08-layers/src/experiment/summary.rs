//! The experiments' tables, as `just report` renders them into the book,
//! and the short findings `just lesson-8` prints.

use std::fmt::Write;

use super::LayersResults;
use crate::Invalidation;

impl LayersResults {
    /// Experiment 1: the staleness windows per design.
    pub fn staleness_md(&self) -> String {
        let mut s = String::from(
            "| design | trials | p50 | p99 | max | B had it before A answered | old answers from B after A's answer |\n\
             |---|---:|---:|---:|---:|---:|---:|\n",
        );
        for w in &self.staleness {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} of {} | {} of {} |",
                design_label(w.design),
                w.trials,
                lab::units::millis(w.p50_ms),
                lab::units::millis(w.p99_ms),
                lab::units::millis(w.max_ms),
                w.before_answer,
                w.trials,
                w.stale_reads,
                w.reads
            );
        }
        s
    }

    /// Experiment 2: the race per fill strategy.
    pub fn race_md(&self) -> String {
        let mut s = String::from(
            "| fill | races replayed | old value left in Redis | fills refused |\n|---|---:|---:|---:|\n",
        );
        for r in &self.race {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                r.fill.name(),
                r.trials,
                r.stale_left,
                r.refused
            );
        }
        s
    }

    /// Experiment 3: the lost invalidation, with and without the relay.
    pub fn lost_md(&self) -> String {
        let mut s = String::from(
            "| outbox relay | trials | the PUT answered | version 1 still served after Redis came back |\n\
             |---|---:|---|---|\n",
        );
        for r in &self.lost {
            let windows: Vec<String> = r
                .windows_ms
                .iter()
                .map(|w| match w {
                    Some(ms) => lab::units::millis(*ms),
                    None => format!("still, after {}", lab::units::millis(r.watch_ms)),
                })
                .collect();
            let mut said = r.answered.clone();
            said.dedup();
            let _ = writeln!(
                s,
                "| {} | {} | `X-Invalidation: {}` | {} |",
                if r.relay {
                    format!("on (every {})", lab::units::millis(r.relay_every_ms))
                } else {
                    "off".to_string()
                },
                r.trials,
                said.join(", "),
                windows.join(", ")
            );
        }
        s
    }

    /// Experiment 4: versioned keys.
    pub fn namespace_md(&self) -> String {
        let n = &self.namespace;
        format!(
            "| keys in the namespace | one `INCR` (all invalidated) | `SCAN` + `DEL` of the same keys | keys after bump and refill | orphans | their memory (`MEMORY USAGE`) |\n\
             |---:|---:|---:|---:|---:|---:|\n\
             | {} | {:.0} µs | {} | {} | {} | {} until their TTL ({} s) |\n",
            n.keys,
            n.bump_us,
            lab::units::millis(n.scan_delete_ms),
            n.keys_after_bump,
            n.orphans,
            lab::units::kib_or_mib(n.orphan_bytes),
            n.ttl_s
        )
    }

    /// The third layer's own cache.
    pub fn pk_lookup_md(&self) -> String {
        let p = &self.pk_lookup;
        format!(
            "| `shared_buffers` | pages from `shared_buffers` | pages from the OS | execution time |\n\
             |---|---:|---:|---:|\n| {} | {} | {} | {:.3} ms |\n",
            p.shared_buffers, p.shared_hit, p.shared_read, p.execution_ms
        )
    }

    /// The conclusions `just lesson-8` prints, each from a count.
    pub fn findings(&self) -> String {
        let mut s = String::from("What this run found:\n");
        let by = |d: Invalidation| self.staleness.iter().find(|w| w.design == d);
        if let (Some(ttl), Some(fastest)) = (
            by(Invalidation::Ttl),
            self.staleness
                .iter()
                .filter(|w| w.design != Invalidation::Ttl)
                .max_by(|a, b| a.max_ms.total_cmp(&b.max_ms)),
        ) {
            let _ = writeln!(
                s,
                "- TTL only: B served the old value for up to {} (L1's TTL is {} ms); \
                 with a message, the slowest design ({}) for at most {}.",
                lab::units::millis(ttl.max_ms),
                self.plan.l1_ttl.as_millis(),
                fastest.design.name(),
                lab::units::millis(fastest.max_ms)
            );
        }
        for r in &self.race {
            let _ = writeln!(
                s,
                "- the race, {} fill: the old value was left in Redis after {} of {} races.",
                r.fill.name(),
                r.stale_left,
                r.trials
            );
        }
        for r in &self.lost {
            let fixed = r.windows_ms.iter().filter(|w| w.is_some()).count();
            let _ = writeln!(
                s,
                "- a write Redis missed, relay {}: fixed in {fixed} of {} trials within the {} watch.",
                if r.relay { "on" } else { "off" },
                r.trials,
                lab::units::millis(r.watch_ms)
            );
        }
        s
    }
}

/// The design as the chapter names it.
pub fn design_label(d: Invalidation) -> &'static str {
    match d {
        Invalidation::Ttl => "TTL only (L1 TTL)",
        Invalidation::PubSub => "Redis pub/sub",
        Invalidation::Notify => "PostgreSQL NOTIFY",
        Invalidation::Tracking => "Redis client tracking",
    }
}
