//! The summary side of the outage experiment: the samples cut into phases
//! (before, during, after the outage) and time buckets, nearest-rank
//! quantiles, and the results rendered as Markdown tables, sentences and
//! CSV (and as the demo's ticker line).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{OutageResults, Plan, Sample, VARIANTS};

/// One variant in one phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhaseRow {
    pub variant: String,
    pub phase: String,
    pub requests: usize,
    /// Share of 2xx answers, in percent.
    pub ok_pct: f64,
    /// The same, for warm keys only (cached before the load started).
    pub ok_warm_pct: f64,
    /// Share of answers that were stale copies.
    pub stale_pct: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One variant in one time bucket: a point of the timeline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bucket {
    pub variant: String,
    /// The bucket's start, in seconds since the load started.
    pub t: f64,
    pub requests: usize,
    pub ok_pct: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One variant's samples sent in `from..to`.
fn sent_between(samples: &[Sample], variant: usize, from: Duration, to: Duration) -> Vec<&Sample> {
    samples
        .iter()
        .filter(|s| s.variant == variant && s.sent >= from && s.sent < to)
        .collect()
}

/// The demo's ticker line: each variant's share of 2xx among the requests
/// sent in `from..to`.
pub(super) fn ticker_line(samples: &[Sample], from: Duration, to: Duration) -> String {
    let mut line = format!("{:>5.1}s ", to.as_secs_f64());
    for (v, name) in VARIANTS.iter().enumerate() {
        let s = sent_between(samples, v, from, to);
        line.push_str(&format!(" | {}: {:>3.0}% ok", short_name(name), ok_pct(&s)));
    }
    line
}

fn short_name(variant: &str) -> &str {
    variant.split(": ").nth(1).unwrap_or(variant)
}

fn is_ok(s: &Sample) -> bool {
    (200..300).contains(&s.status)
}

fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The share of 2xx among `samples`, in percent.
fn ok_pct(samples: &[&Sample]) -> f64 {
    pct(samples.iter().filter(|s| is_ok(s)).count(), samples.len())
}

/// The median and the 99th percentile of the samples' latencies, in ms.
fn p50_p99(samples: &[&Sample]) -> (f64, f64) {
    let mut took: Vec<Duration> = samples.iter().map(|s| s.took).collect();
    (quantile(&mut took, 0.50), quantile(&mut took, 0.99))
}

/// The q-th quantile (0..=1) of latencies in ms, nearest rank.
fn quantile(took: &mut [Duration], q: f64) -> f64 {
    lab::units::quantile_ms(took, q)
}

/// What the run found: each variant per phase, its recovery after the
/// outage, its latency while the breaker was open, and the timeline.
pub(super) fn summarise(
    plan: &Plan,
    samples: &[Sample],
    outage_start: Duration,
    outage_end: Duration,
    attempts_during: &[u64],
) -> OutageResults {
    let phase_of = |s: &Sample| {
        if s.sent < outage_start {
            "before"
        } else if s.sent < outage_end {
            "during"
        } else {
            "after"
        }
    };
    let mut phases = Vec::new();
    let mut recovery_ms = Vec::new();
    let mut breaker_open_p99_ms = Vec::new();
    let mut outage_db_attempts = Vec::new();
    for (v, name) in VARIANTS.iter().enumerate() {
        let mine: Vec<&Sample> = samples.iter().filter(|s| s.variant == v).collect();
        for phase in ["before", "during", "after"] {
            let p: Vec<&Sample> = mine
                .iter()
                .copied()
                .filter(|s| phase_of(s) == phase)
                .collect();
            let warm: Vec<&Sample> = p.iter().copied().filter(|s| s.warm).collect();
            let (p50_ms, p99_ms) = p50_p99(&p);
            phases.push(PhaseRow {
                variant: name.to_string(),
                phase: phase.into(),
                requests: p.len(),
                ok_pct: ok_pct(&p),
                ok_warm_pct: ok_pct(&warm),
                stale_pct: pct(p.iter().filter(|s| is_ok(s) && !s.fresh).count(), p.len()),
                p50_ms,
                p99_ms,
            });
        }
        let first_fresh = mine
            .iter()
            .filter(|s| s.sent >= outage_end && s.fresh)
            .map(|s| (s.sent + s.took).saturating_sub(outage_end))
            .min();
        recovery_ms.push((
            name.to_string(),
            first_fresh.map(|d| d.as_secs_f64() * 1000.0),
        ));
        if v >= 2 {
            let mut open: Vec<Duration> = mine
                .iter()
                .filter(|s| phase_of(s) == "during" && s.breaker_open)
                .map(|s| s.took)
                .collect();
            let p99 = (!open.is_empty()).then(|| quantile(&mut open, 0.99));
            breaker_open_p99_ms.push((name.to_string(), p99));
            outage_db_attempts.push((name.to_string(), attempts_during[v]));
        }
    }

    OutageResults {
        plan: plan.clone(),
        outage_start: outage_start.as_secs_f64(),
        outage_end: outage_end.as_secs_f64(),
        phases,
        timeline: timeline(plan, samples),
        recovery_ms,
        breaker_open_p99_ms,
        outage_db_attempts,
    }
}

/// Each variant, bucket by bucket: the points of the timeline.
fn timeline(plan: &Plan, samples: &[Sample]) -> Vec<Bucket> {
    let mut timeline = Vec::new();
    let total = plan.before + plan.outage + plan.after;
    let n = (total.as_secs_f64() / plan.bucket.as_secs_f64()).ceil() as u32;
    for (v, name) in VARIANTS.iter().enumerate() {
        for b in 0..n {
            let from = plan.bucket * b;
            let to = from + plan.bucket;
            let s = sent_between(samples, v, from, to);
            let (p50_ms, p99_ms) = p50_p99(&s);
            timeline.push(Bucket {
                variant: name.to_string(),
                t: from.as_secs_f64(),
                requests: s.len(),
                ok_pct: ok_pct(&s),
                p50_ms,
                p99_ms,
            });
        }
    }
    timeline
}

impl OutageResults {
    /// The results as Markdown tables: the chapter includes them, and the
    /// demo prints them (they read fine in a terminal too).
    pub fn table_md(&self) -> String {
        let mut md = String::new();
        md.push_str(
            "| variant | phase | requests | 2xx | 2xx, warm keys | stale answers | p50 | p99 |\n",
        );
        md.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
        for r in &self.phases {
            md.push_str(&format!(
                "| {} | {} | {} | {:.1}% | {:.1}% | {:.1}% | {} | {} |\n",
                r.variant,
                r.phase,
                r.requests,
                r.ok_pct,
                r.ok_warm_pct,
                r.stale_pct,
                lab::units::millis(r.p50_ms),
                lab::units::millis(r.p99_ms)
            ));
        }
        md.push_str("\n| variant | fresh data again after PostgreSQL answers | p99 during the outage, breaker open | database calls during the outage |\n");
        md.push_str("|---|---:|---:|---:|\n");
        for (name, rec) in &self.recovery_ms {
            let open = self
                .breaker_open_p99_ms
                .iter()
                .find(|(n, _)| n == name)
                .map_or("–".to_string(), |(_, p)| {
                    p.map_or("never open".into(), lab::units::millis)
                });
            let calls = self
                .outage_db_attempts
                .iter()
                .find(|(n, _)| n == name)
                .map_or("–".to_string(), |(_, c)| c.to_string());
            md.push_str(&format!(
                "| {name} | {} | {open} | {calls} |\n",
                rec.map_or("not within the run".into(), lab::units::millis)
            ));
        }
        md
    }

    /// What the run shows, in sentences, against the lesson's bar: during
    /// the outage the stale-fallback service answers every request for a
    /// key it has cached, with a p99 under 10 ms once the breaker is open.
    pub fn findings(&self) -> String {
        let during = |v: usize| self.row(v, "during");
        let warm = |v: usize| during(v).map_or(0.0, |r| r.ok_warm_pct);
        let open_p99 = self
            .breaker_open_p99_ms
            .iter()
            .find(|(n, _)| n == VARIANTS[2])
            .and_then(|(_, p)| *p);
        let met = warm(2) >= 100.0 && open_p99.is_some_and(|p| p < 10.0);
        let recovery = |v: usize| {
            self.recovery_ms
                .get(v)
                .and_then(|(_, r)| *r)
                .map_or("not within the run".to_string(), lab::units::millis)
        };
        format!(
            "During the outage, requests for warm keys got a 2xx from {:.1}% (no cache), {:.1}% (cache-aside), \
             {:.1}% (stale fallback) and {:.1}% (cache-first). The stale-fallback service's p99 while its breaker \
             was open was {}. The bar (100% of warm keys, p99 under 10 ms with the breaker open) was **{}** in this run. \
             Fresh data came back {} (no cache), {} (cache-aside), {} (stale fallback) and {} (cache-first) \
             after PostgreSQL answered again.\n",
            warm(0),
            warm(1),
            warm(2),
            warm(3),
            open_p99.map_or(
                "not measured (the breaker never opened)".to_string(),
                lab::units::millis
            ),
            if met { "met" } else { "not met" },
            recovery(0),
            recovery(1),
            recovery(2),
            recovery(3),
        )
    }

    /// The timeline as CSV, one row per variant and bucket.
    pub fn timeline_csv(&self) -> String {
        let mut csv = String::from("variant,t_s,requests,ok_pct,p50_ms,p99_ms\n");
        for b in &self.timeline {
            csv.push_str(&format!(
                "{},{:.1},{},{:.1},{:.3},{:.3}\n",
                b.variant, b.t, b.requests, b.ok_pct, b.p50_ms, b.p99_ms
            ));
        }
        csv
    }

    /// A phase row, for the demo's summary and the tests.
    pub fn row(&self, variant: usize, phase: &str) -> Option<&PhaseRow> {
        self.phases
            .iter()
            .find(|r| r.variant == VARIANTS[variant] && r.phase == phase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&mut v, 0.5), 50.0);
        assert_eq!(quantile(&mut v, 0.99), 99.0);
        assert_eq!(quantile(&mut [], 0.99), 0.0);
    }

    fn sample(
        variant: usize,
        sent_ms: u64,
        status: u16,
        fresh: bool,
        breaker_open: bool,
    ) -> Sample {
        Sample {
            variant,
            sent: Duration::from_millis(sent_ms),
            took: Duration::from_millis(if fresh || status != 200 { 250 } else { 2 }),
            status,
            fresh,
            warm: true,
            breaker_open,
        }
    }

    /// A synthetic run: the outage from 5 s to 13 s; lesson 1 fails during
    /// it, lesson 3 answers stale, then fresh again from 14 s.
    fn synthetic() -> OutageResults {
        let mut samples = Vec::new();
        for t in (0..20_000).step_by(100) {
            let down = (5_000..13_000).contains(&t);
            samples.push(sample(0, t, if down { 503 } else { 200 }, !down, false));
            samples.push(sample(1, t, if down { 503 } else { 200 }, !down, false));
            let stale = (5_000..14_000).contains(&t);
            samples.push(sample(2, t, 200, !stale, down && t >= 5_500));
            samples.push(sample(3, t, 200, !stale, down && t >= 5_500));
        }
        summarise(
            &Plan::short(),
            &samples,
            Duration::from_secs(5),
            Duration::from_secs(13),
            &[0, 0, 5, 4],
        )
    }

    #[test]
    fn phases_recovery_and_the_bar_are_computed_from_the_samples() {
        let r = synthetic();
        let during = r.row(0, "during").expect("row");
        assert_eq!((during.requests, during.ok_pct), (80, 0.0));
        assert_eq!(r.row(0, "before").expect("row").ok_pct, 100.0);
        let stale = r.row(2, "during").expect("row");
        assert_eq!((stale.ok_warm_pct, stale.stale_pct), (100.0, 100.0));
        assert_eq!(stale.p99_ms, 2.0);
        // Lesson 1's first fresh answer after 13 s was sent at 13.0 s and took 250 ms.
        assert_eq!(r.recovery_ms[0].1, Some(250.0));
        assert_eq!(r.recovery_ms[2].1, Some(1250.0));
        assert_eq!(r.outage_db_attempts[0], (VARIANTS[2].to_string(), 5));
        let text = r.findings();
        assert!(text.contains("**met**"), "{text}");
        let md = r.table_md();
        assert!(md.contains("| lesson 3: stale fallback | during | 80 | 100.0% | 100.0% | 100.0% | 2.0 ms | 2.0 ms |"), "{md}");
        let csv = r.timeline_csv();
        assert!(
            csv.starts_with("variant,t_s,requests,ok_pct,p50_ms,p99_ms\n"),
            "{csv}"
        );
        assert_eq!(
            csv.lines().count(),
            1 + 4 * 40,
            "4 variants × 40 half-second buckets"
        );
    }
}
