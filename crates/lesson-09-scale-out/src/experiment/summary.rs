//! The experiments' tables, as `just report` renders them into the book
//! and `just lesson-9` prints them, and the short findings after them.
//! (The replica experiment's are its own: [`super::lag`].)

use std::fmt::Write;

use lab::units::millis;

use super::ScaleOutResults;
use super::coverage::yes_no;
use super::failover::FailoverRun;
use super::fixture;
use crate::cache::ClientMode;

/// `part` of `whole` as a percentage, or "–" of nothing.
fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Seconds with one decimal: `4.6 s`.
fn secs(s: f64) -> String {
    format!("{s:.1} s")
}

/// A count with thousands separated: `10,000`.
fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How a client mode is named in the tables, with what it is.
fn mode_label(m: ClientMode) -> &'static str {
    match m {
        ClientMode::Defaults => "defaults (redis-rs as shipped)",
        ClientMode::Bounded => "bounded (500 ms, 3 retries)",
        ClientMode::ReplicaReads => "replica-reads (bounded + GETs from replicas)",
    }
}

/// A span of seconds, `6.6–7.4 s`, or `never`.
fn span(from: Option<f64>, to: Option<f64>) -> String {
    match (from, to) {
        (Some(a), Some(b)) => format!("{a:.1}–{b:.1} s"),
        _ => "never".into(),
    }
}

/// Kill to promotion, as seen by polling `CLUSTER NODES`.
fn promotion(r: &FailoverRun) -> String {
    r.promoted_at_s
        .map_or("not within 30 s".into(), |p| secs(p - r.kill_at_s))
}

impl ScaleOutResults {
    /// Experiment 1: keys per master, and the `MGET`s.
    pub fn slots_md(&self) -> String {
        let r = &self.slots;
        let mut s = format!(
            "Setup: a 3-master cluster (no replicas); {} keys `l9:exp:{{user:ID}}` written through the lesson's cache. \
             \"Keys\" is each master's own `DBSIZE`; \"by CLUSTER KEYSLOT\" counts the keys whose slot (asked of the engine) \
             the master owns.\n\n\
             | master | slots | share of slots | keys | share of keys | by CLUSTER KEYSLOT |\n\
             |---|---|---:|---:|---:|---:|\n",
            count(r.keys as u64)
        );
        let total: u64 = r.masters.iter().map(|m| m.keys).sum();
        for m in &r.masters {
            let _ = writeln!(
                s,
                "| :{} | {} | {} | {} | {} | {} |",
                m.port,
                m.ranges,
                share(m.slots as u64, 16_384),
                count(m.keys),
                share(m.keys, total),
                count(m.keys_by_slot)
            );
        }
        let _ = write!(
            s,
            "\n| command | slots | answer |\n|---|---|---|\n\
             | `MGET {} {}` (to one node) | {}, {} | `{}` |\n\
             | `MGET {} {}` (to one node) | {}, {} | `{}` |\n\
             | `MGET {} {}` (redis-rs cluster client) | {}, {} | `{}` (split into one MGET per slot) |\n",
            r.untagged[0].0,
            r.untagged[1].0,
            r.untagged[0].1,
            r.untagged[1].1,
            r.untagged_mget,
            r.tagged[0].0,
            r.tagged[1].0,
            r.tagged[0].1,
            r.tagged[1].1,
            r.tagged_mget,
            r.untagged[0].0,
            r.untagged[1].0,
            r.untagged[0].1,
            r.untagged[1].1,
            r.client_mget,
        );
        s
    }

    /// Experiment 2: one row per client mode.
    pub fn failover_md(&self) -> String {
        let Some(first) = self.failover.first() else {
            return String::new();
        };
        let mut s = format!(
            "Setup: per client configuration, a fresh 6-node cluster (3 masters, 1 replica each, \
             `cluster-node-timeout` {} ms); {} keys warmed; {} closed-loop clients reading them through the \
             service's `read_user` (a miss or a failed cache call reads PostgreSQL, {} ms a query); after {}, \
             `kill -9` of the master owning `{{user:{}}}`'s slot ({} of the {} keys); the clients stop {} after a \
             replica is seen serving its slots. \"Disrupted\": from the start of the first request that met a failed \
             cache call, went unanswered or took over 1 s, to the end of the last. \"Answered/s\": requests answered \
             per second in the second before the kill, and between the kill and the promotion. \"Victim hits\": the \
             share of hits among the requests for the dead master's keys that started between the kill and the \
             promotion. \"Errors\": requests not answered at all.\n\n\
             | client | kill → promoted | requests | errors | cache failures | disrupted | longest request | over 1 s | answered/s before → during | victim hits | other shards' p99 | DB reads |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            first.node_timeout_ms,
            count(first.keys as u64),
            first.clients,
            fixture::LATENCY.as_millis(),
            secs(first.kill_at_s),
            super::failover::VICTIM_USER,
            count(first.victim_keys as u64),
            count(first.keys as u64),
            secs(self.plan.failover.after.as_secs_f64()),
        );
        for r in &self.failover {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {}{} | {} | {} → {} | {} | {} | {} |",
                mode_label(r.mode),
                promotion(r),
                count(r.requests),
                count(r.errors),
                count(r.cache_failures),
                if r.failure_window_s > 0.0 {
                    secs(r.failure_window_s)
                } else {
                    "none".into()
                },
                millis(r.longest_ms),
                if r.longest_on_victim {
                    ""
                } else {
                    " (another shard)"
                },
                count(r.over_1s),
                count(r.answered_per_s_before.round() as u64),
                count(r.answered_per_s_in_window.round() as u64),
                r.victim_hit_ratio.map_or("–".into(), |h| format!(
                    "{:.0}% of {}",
                    h * 100.0,
                    count(r.victim_requests_in_window)
                )),
                millis(r.other_p99_ms_in_window),
                count(r.db_reads.max(0) as u64),
            );
        }
        let spans: Vec<String> = self
            .failover
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r.mode.name(),
                    span(r.cluster_down_from_s, r.cluster_down_to_s)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "\nA surviving master's `cluster_state:fail` (asked every 50 ms; seconds since the clients started, \
             kill at {}): {}.",
            secs(first.kill_at_s),
            spans.join("; ")
        );
        s
    }

    /// Experiment 2 second by second: per client mode, the requests that
    /// started in that second, how many of them met a failed cache call or
    /// went unanswered, and the slowest of them.
    pub fn failover_timeline_md(&self) -> String {
        if self.failover.is_empty() {
            return String::new();
        }
        let mut s = String::from("| second |");
        let mut rule = String::from("|---:|");
        for r in &self.failover {
            let _ = write!(s, " {} |", r.mode.name());
            rule.push_str("---|");
        }
        s.push('\n');
        s.push_str(&rule);
        s.push('\n');
        let seconds = self
            .failover
            .iter()
            .map(|r| {
                let per = (1000 / r.bucket_ms.max(1)) as usize;
                r.timeline.len().div_ceil(per.max(1))
            })
            .max()
            .unwrap_or(0);
        for sec in 0..seconds {
            let (mut marks, mut kills, mut promotions) = (Vec::new(), Vec::new(), Vec::new());
            let mut cells = Vec::new();
            for r in &self.failover {
                let per = (1000 / r.bucket_ms.max(1)) as usize;
                let (mut req, mut failed, mut max) = (0u64, 0u64, 0f64);
                for x in r.timeline.iter().skip(sec * per).take(per) {
                    req += x.requests;
                    failed += x.cache_failures + x.errors;
                    max = max.max(x.max_ms);
                }
                cells.push(if req == 0 {
                    "none started".to_string()
                } else {
                    format!(
                        "{} started, {} failed, slowest {}",
                        count(req),
                        count(failed),
                        millis(max)
                    )
                });
                let t = sec as f64;
                if (t..t + 1.0).contains(&r.kill_at_s) {
                    kills.push(r.mode.name());
                }
                if r.promoted_at_s.is_some_and(|p| (t..t + 1.0).contains(&p)) {
                    promotions.push(r.mode.name());
                }
            }
            let n = self.failover.len();
            for (event, modes) in [("kill", &kills), ("promoted", &promotions)] {
                if modes.len() == n {
                    marks.push(event.to_string());
                } else if !modes.is_empty() {
                    marks.push(format!("{event} ({})", modes.join(", ")));
                }
            }
            let _ = writeln!(
                s,
                "| {sec}{} | {} |",
                if marks.is_empty() {
                    String::new()
                } else {
                    format!(" ← {}", marks.join(", "))
                },
                cells.join(" | ")
            );
        }
        s
    }

    /// Experiment 3: before and during the reshard.
    pub fn reshard_md(&self) -> String {
        let r = &self.reshard;
        let mut s = format!(
            "Setup: a 6-node cluster (3 masters, 1 replica each), {} keys warmed, {} closed-loop clients reading them \
             through the service's `read_user` ({} client); then `redis-cli --cluster reshard` moves {} slots from one \
             master to another (`--cluster-pipeline 100`). It took {} and moved {} keys (the target's `DBSIZE` went \
             from {} to {}; the source's from {} to {}); the masters now own {} and {} slots.\n\n\
             | phase | seconds | requests | hits | misses | cache failures | errors | p50 | p99 | max |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            count(r.keys as u64),
            r.clients,
            r.mode.name(),
            count(r.slots as u64),
            secs(r.reshard_s),
            count(r.keys_moved()),
            count(r.to_keys.0),
            count(r.to_keys.1),
            count(r.from_keys.0),
            count(r.from_keys.1),
            count(r.from_slots_after as u64),
            count(r.to_slots_after as u64),
        );
        for p in &r.phases {
            let _ = writeln!(
                s,
                "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} |",
                p.phase,
                p.seconds,
                count(p.requests),
                count(p.hits),
                count(p.misses),
                count(p.cache_failures),
                count(p.errors),
                millis(p.p50_ms),
                millis(p.p99_ms),
                millis(p.max_ms)
            );
        }
        s
    }

    /// Experiment 4: one row per `cluster-require-full-coverage`.
    pub fn coverage_md(&self) -> String {
        let Some(first) = self.coverage.first() else {
            return String::new();
        };
        let mut s = format!(
            "Setup: a 3-master cluster with no replicas, `cluster-node-timeout` {} ms; {} keys written; `kill -9` of \
             one master ({} of the keys); once every surviving master flags it `fail`, every key is read three \
             ways: its `GET` sent by us straight to the master owning its slot (the engine's verdict), then all \
             at once through the lesson's cache (the redis-rs cluster client, bounded: 500 ms a call), and again \
             through it 1 s later. \"A live master answers\": `GET` of one of its own keys, sent to it directly.\n\n\
             | require-full-coverage | cluster_state | a live master answers | sent to each key's master | through the cluster client | 1 s later |\n\
             |---|---|---|---:|---:|---:|\n",
            super::coverage::NODE_TIMEOUT.as_millis(),
            first.keys,
            first.dead_keys,
        );
        let cell = |a: &super::coverage::Answered, r: &super::coverage::CoverageRow| {
            format!(
                "{} of {} ({}; dead shard {}), slowest {}",
                a.total(),
                r.keys,
                share(a.total(), r.keys as u64),
                a.dead,
                millis(a.slowest_ms)
            )
        };
        for r in &self.coverage {
            let _ = writeln!(
                s,
                "| {} | {} | `{}` | {} | {} | {} |",
                yes_no(r.require_full_coverage),
                r.cluster_state,
                r.live_master_answer,
                cell(&r.direct, r),
                cell(&r.client_first, r),
                cell(&r.client_later, r),
            );
        }
        s
    }

    /// Experiment 5: one row per run.
    pub fn throughput_md(&self) -> String {
        let Some(first) = self.throughput.first() else {
            return String::new();
        };
        let mut s = format!(
            "Setup: {} tasks sharing one cache (one multiplexed connection per node, as the service's handlers \
             share theirs), each reading one of {} keys (64-byte values) as soon as its previous read is \
             answered, through the service's `Cache::get` (bounded client), for {} per run; one private Redis \
             and a 3-master cluster (no replicas), alternately. Every process shares this machine's cores: the \
             client, and one or three `redis-server`s. \"Per node\": reads per second each master served, by its \
             keys' slots.\n\n\
             | topology | round | reads/s | p50 | p99 | not hits | per node (reads/s) |\n\
             |---|---:|---:|---:|---:|---:|---|\n",
            super::throughput::TASKS,
            count(super::throughput::KEYS as u64),
            secs(first.seconds),
        );
        for r in &self.throughput {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.topology,
                r.round,
                count(r.ops_per_s.round() as u64),
                millis(r.p50_ms),
                millis(r.p99_ms),
                count(r.not_hits),
                r.per_node
                    .iter()
                    .map(|(port, ops)| format!(":{port} {}", count(ops.round() as u64)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        s
    }

    /// The conclusions `just lesson-9` prints, each from a measurement.
    pub fn findings(&self) -> String {
        let mut s = String::from("What this run found:\n");
        let m = &self.slots.masters;
        if let (Some(lo), Some(hi)) = (
            m.iter().map(|m| m.keys).min(),
            m.iter().map(|m| m.keys).max(),
        ) {
            let agree = m.iter().all(|m| m.keys == m.keys_by_slot);
            let _ = writeln!(
                s,
                "- slots: {} keys spread {}–{} per master ({}); the engine refused the untagged MGET (`{}`) \
                 and served the tagged one.",
                count(self.slots.keys as u64),
                count(lo),
                count(hi),
                if agree {
                    "DBSIZE and CLUSTER KEYSLOT agree exactly"
                } else {
                    "DBSIZE and CLUSTER KEYSLOT differ"
                },
                self.slots
                    .untagged_mget
                    .split_whitespace()
                    .next()
                    .unwrap_or("?")
            );
        }
        for r in &self.failover {
            let _ = writeln!(
                s,
                "- failover, {}: kill → promoted {}; {} errors, {} cache failures ({} off the dead shard), disrupted for {}; \
                 longest request {}, {} over 1 s; answered {}/s before the kill, {}/s until the promotion; {} hits on the \
                 dead shard's keys meanwhile.",
                r.mode.name(),
                promotion(r),
                count(r.errors),
                count(r.cache_failures),
                count(r.failures_elsewhere),
                if r.failure_window_s > 0.0 {
                    secs(r.failure_window_s)
                } else {
                    "no time".into()
                },
                millis(r.longest_ms),
                count(r.over_1s),
                count(r.answered_per_s_before.round() as u64),
                count(r.answered_per_s_in_window.round() as u64),
                r.victim_hit_ratio
                    .map_or("–".into(), |h| format!("{:.0}%", h * 100.0)),
            );
        }
        for r in self.failover.iter().filter(|r| r.failures_elsewhere > 0) {
            let _ = writeln!(
                s,
                "- failover, {}: the {} failures off the dead shard fell in {}; a surviving master reported \
                 `cluster_state:fail` {} (promotion seen at {}){}.",
                r.mode.name(),
                count(r.failures_elsewhere),
                span(r.elsewhere_from_s, r.elsewhere_to_s),
                if r.cluster_down_from_s.is_some() {
                    span(r.cluster_down_from_s, r.cluster_down_to_s)
                } else {
                    "at no time".into()
                },
                r.promoted_at_s.map_or("never".into(), secs),
                if r.cluster_down_from_s.is_some() {
                    ": with require-full-coverage yes, the whole cluster refuses every key from the dead \
                     master's `fail` flag until its replica's promotion"
                } else {
                    ""
                },
            );
        }
        let r = &self.reshard;
        if let Some(during) = r.phases.iter().find(|p| p.phase == "during") {
            let _ = writeln!(
                s,
                "- reshard: {} slots ({} keys) moved in {} under load; {} errors, {} cache failures, {} misses; \
                 p99 {}, max {} during it.",
                count(r.slots as u64),
                count(r.keys_moved()),
                secs(r.reshard_s),
                count(during.errors),
                count(during.cache_failures),
                count(during.misses),
                millis(during.p99_ms),
                millis(during.max_ms)
            );
        }
        for c in &self.coverage {
            let _ = writeln!(
                s,
                "- require-full-coverage {} (state `{}`), one of three masters dead: {} of {} keys answered by their \
                 masters; through the cluster client {}, and {} a second later.",
                yes_no(c.require_full_coverage),
                c.cluster_state,
                share(c.direct.total(), c.keys as u64),
                c.keys,
                share(c.client_first.total(), c.keys as u64),
                share(c.client_later.total(), c.keys as u64),
            );
        }
        let mean = |name: &str| {
            let runs: Vec<f64> = self
                .throughput
                .iter()
                .filter(|r| r.topology == name)
                .map(|r| r.ops_per_s)
                .collect();
            (!runs.is_empty()).then(|| runs.iter().sum::<f64>() / runs.len() as f64)
        };
        if let (Some(one), Some(cluster)) = (mean("one Redis"), mean("cluster (3 masters)")) {
            let _ = writeln!(
                s,
                "- throughput on this machine: one Redis {} reads/s, the 3-master cluster {} ({:.2}×): \
                 the nodes share the same cores.",
                count(one.round() as u64),
                count(cluster.round() as u64),
                cluster / one.max(1.0)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
