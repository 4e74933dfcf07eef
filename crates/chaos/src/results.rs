//! The samples summarised per service and phase, `chaos.json`, and the
//! table `just chaos` prints and the book includes.
//!
//! A phase's requests are those *sent* between its start and the next
//! phase's: the fault and then the recovery window. Recovery is measured
//! from the moment the fault was cleared to the first of
//! [`Plan::run_of`] consecutive 2xx (in the order they were sent): one
//! lucky answer between failures is not a recovery.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::load::{Outcome, Sample};
use crate::plan::{PHASES, Plan};
use crate::services::{SERVICES, Target};

/// When one phase ran, in seconds since the load started.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhaseSpan {
    pub phase: String,
    pub start_s: f64,
    /// When the fault was in place (a stop takes a moment).
    pub injected_s: f64,
    /// When it was cleared (a restarted server answers again).
    pub cleared_s: f64,
    pub end_s: f64,
    /// Panics anywhere in the process during the phase.
    pub panics: u64,
}

/// One service in one phase.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Row {
    pub service: String,
    pub phase: String,
    pub requests: usize,
    pub ok: usize,
    /// 2xx that were stale copies (lesson 3's `X-Cache: STALE`).
    pub stale: usize,
    /// 2xx whose body was not the user asked for.
    pub wrong: usize,
    pub client_errors: usize,
    /// 500: the service's own fault, by `lab::http`'s policy.
    pub internal_errors: usize,
    /// Any other 5xx (503: a dependency failed, and the service said so).
    pub unavailable: usize,
    /// Refused, reset or closed without an answer, or not sent because the
    /// client's cap of requests in flight was reached.
    pub no_answer: usize,
    /// Answered, but slower than [`Plan::slow_after`].
    pub slow: usize,
    /// No answer within [`Plan::hung_after`].
    pub hung: usize,
    pub p99_ms: f64,
    /// From the fault cleared to the first of `run_of` consecutive 2xx;
    /// `None` for the baseline, or when no such run came in the window.
    pub recovery_ms: Option<f64>,
    /// Whether the window held such a run at all (false: not recovered).
    pub recovered: bool,
}

/// What one run found: `target/lab-experiments/chaos.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChaosResults {
    pub plan: Plan,
    pub spans: Vec<PhaseSpan>,
    pub rows: Vec<Row>,
    /// Every panic in the process during the run, warm-up included.
    pub panics: u64,
    /// The whole run, from spawning the servers to the last answer.
    pub wall_s: f64,
    /// Where it ran: cores and CPU model.
    pub machine: String,
}

/// `just chaos` writes it; `just report` renders it into the book.
impl lab::results::Results for ChaosResults {
    const FILE: &'static str = "chaos.json";
}

/// Cuts the samples into phases, service by service.
pub fn summarise(
    plan: &Plan,
    names: &[String],
    spans: &[PhaseSpan],
    samples: &[Sample],
    panics: u64,
    wall: Duration,
) -> ChaosResults {
    let mut rows = Vec::new();
    for (service, name) in names.iter().enumerate() {
        for (i, span) in spans.iter().enumerate() {
            let mut mine: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.service == service && in_span(s, span))
                .collect();
            mine.sort_by_key(|s| s.sent);
            let mut row = count(plan, &mine);
            row.service = name.clone();
            row.phase = span.phase.clone();
            if i > 0 {
                row.recovery_ms = recovery(plan, span, &mine);
                row.recovered = row.recovery_ms.is_some();
            }
            rows.push(row);
        }
    }
    ChaosResults {
        plan: plan.clone(),
        spans: spans.to_vec(),
        rows,
        panics,
        wall_s: wall.as_secs_f64(),
        machine: machine(),
    }
}

/// "2 cores, AMD EPYC": the run's figures depend on it.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("model name"))?;
            Some(line.split_once(':')?.1.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{cores} cores, {model}")
}

fn in_span(s: &Sample, span: &PhaseSpan) -> bool {
    let t = s.sent.as_secs_f64();
    t >= span.start_s && t < span.end_s
}

fn count(plan: &Plan, samples: &[&Sample]) -> Row {
    let mut row = Row {
        requests: samples.len(),
        ..Row::default()
    };
    let mut took = Vec::new();
    for s in samples {
        match s.outcome {
            Outcome::Answered {
                status,
                stale,
                wrong,
            } => {
                match status {
                    200..=299 => {
                        row.ok += 1;
                        row.stale += usize::from(stale);
                        row.wrong += usize::from(wrong);
                    }
                    400..=499 => row.client_errors += 1,
                    500 => row.internal_errors += 1,
                    _ => row.unavailable += 1,
                }
                row.slow += usize::from(s.took > plan.slow_after);
            }
            Outcome::NoAnswer | Outcome::Shed => row.no_answer += 1,
            Outcome::Hung => row.hung += 1,
        }
        if s.outcome != Outcome::Shed {
            took.push(s.took);
        }
    }
    row.p99_ms = p99_ms(&mut took);
    row
}

/// The 99th percentile, nearest rank, in ms.
fn p99_ms(took: &mut [Duration]) -> f64 {
    if took.is_empty() {
        return 0.0;
    }
    took.sort_unstable();
    let rank = ((0.99 * took.len() as f64).ceil() as usize).clamp(1, took.len());
    took[rank - 1].as_secs_f64() * 1000.0
}

/// From the fault cleared to the first request of the first run of
/// `plan.run_of` consecutive 2xx sent after it.
fn recovery(plan: &Plan, span: &PhaseSpan, sorted: &[&Sample]) -> Option<f64> {
    let after: Vec<&&Sample> = sorted
        .iter()
        .filter(|s| s.sent.as_secs_f64() >= span.cleared_s)
        .collect();
    let mut run = 0;
    for (i, s) in after.iter().enumerate() {
        run = if s.is_2xx() { run + 1 } else { 0 };
        if run == plan.run_of {
            let first = after[i + 1 - plan.run_of];
            return Some((first.sent.as_secs_f64() - span.cleared_s) * 1000.0);
        }
    }
    None
}

/// The progress line after a phase: each service's share of 2xx in it.
pub fn progress_line(span: &PhaseSpan, samples: &[Sample], targets: &[Target]) -> String {
    let mut line = format!("{:>5.1}s  {:<20}", span.end_s, span.phase);
    for (i, t) in targets.iter().enumerate() {
        let mine: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.service == i && in_span(s, span))
            .collect();
        let ok = mine.iter().filter(|s| s.is_2xx()).count();
        let short = t.name.split(": ").nth(1).unwrap_or(t.name);
        line.push_str(&format!(
            " | {short} {:>3.0}%",
            100.0 * ok as f64 / mine.len().max(1) as f64
        ));
    }
    if span.panics > 0 {
        line.push_str(&format!("  PANICS: {}", span.panics));
    }
    line
}

impl ChaosResults {
    /// Hung requests, all services and phases.
    pub fn hung(&self) -> usize {
        self.rows.iter().map(|r| r.hung).sum()
    }

    /// 2xx answers with another user's data, all services and phases.
    pub fn wrong(&self) -> usize {
        self.rows.iter().map(|r| r.wrong).sum()
    }

    /// Whether the run met the bar: no panic, no hung request, no answer
    /// with the wrong user's data.
    pub fn passed(&self) -> bool {
        self.panics == 0 && self.hung() == 0 && self.wrong() == 0
    }

    /// The table, one row per service and phase, grouped by phase.
    pub fn table_md(&self) -> String {
        let mut md = String::from(
            "| phase | service | requests | 2xx | of which stale | wrong user | 4xx | 500 | 503 | no answer | slow | hung | p99 | recovered after |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for span in &self.spans {
            for r in self.rows.iter().filter(|r| r.phase == span.phase) {
                let recovery = match (r.recovery_ms, r.phase == PHASES[0].name()) {
                    (_, true) => "–".to_string(),
                    (Some(ms), _) => lab::units::millis(ms),
                    (None, _) => "**not in the window**".to_string(),
                };
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                    r.phase,
                    r.service,
                    r.requests,
                    pct(r.ok, r.requests),
                    r.stale,
                    r.wrong,
                    r.client_errors,
                    r.internal_errors,
                    r.unavailable,
                    r.no_answer,
                    r.slow,
                    r.hung,
                    lab::units::millis(r.p99_ms),
                    recovery,
                ));
            }
        }
        md
    }

    /// The run's verdict, in one paragraph.
    pub fn verdict(&self) -> String {
        let requests: usize = self.rows.iter().map(|r| r.requests).sum();
        let unrecovered: Vec<String> = self
            .rows
            .iter()
            .filter(|r| r.phase != "baseline" && !r.recovered)
            .map(|r| format!("{} after {}", r.service, r.phase))
            .collect();
        format!(
            "{requests} requests to {} services over {} phases: {} panics, {} hung requests, {} answers with another user's data \
             (the bar is 0, 0 and 0: **{}**). \
             Not recovered within the {} s window: {}. The run took {:.0} s.\n",
            SERVICES.len(),
            self.spans.len(),
            self.panics,
            self.hung(),
            self.wrong(),
            if self.passed() { "met" } else { "not met" },
            self.plan.recover.as_secs(),
            if unrecovered.is_empty() {
                "none".to_string()
            } else {
                unrecovered.join(", ")
            },
            self.wall_s,
        )
    }
}

fn pct(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "–".into();
    }
    format!("{:.1}%", 100.0 * part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(service: usize, sent_ms: u64, outcome: Outcome) -> Sample {
        Sample {
            service,
            sent: Duration::from_millis(sent_ms),
            took: Duration::from_millis(2),
            outcome,
        }
    }

    const OK: Outcome = Outcome::Answered {
        status: 200,
        stale: false,
        wrong: false,
    };
    const DOWN: Outcome = Outcome::Answered {
        status: 503,
        stale: false,
        wrong: false,
    };

    fn span(phase: &str, start: f64, cleared: f64, end: f64) -> PhaseSpan {
        PhaseSpan {
            phase: phase.into(),
            start_s: start,
            injected_s: start,
            cleared_s: cleared,
            end_s: end,
            panics: 0,
        }
    }

    /// A synthetic run: one service fails from 1 s to 3.5 s; the fault is
    /// cleared at 3 s, and 20 2xx in a row start at 3.5 s.
    #[test]
    fn phases_counts_and_recovery_come_from_the_samples() {
        let plan = Plan::standard();
        let mut samples = Vec::new();
        for t in (0..6_000).step_by(10) {
            let down = (1_000..3_500).contains(&t);
            samples.push(sample(0, t, if down { DOWN } else { OK }));
        }
        // A lucky 2xx in the middle of the failures is no recovery.
        samples.push(sample(0, 3_200, OK));
        samples.push(sample(0, 1_500, Outcome::Hung));
        let spans = [span("baseline", 0.0, 0.0, 1.0), span("x", 1.0, 3.0, 6.0)];
        let r = summarise(
            &plan,
            &["svc".to_string()],
            &spans,
            &samples,
            0,
            Duration::from_secs(7),
        );
        let (base, x) = (&r.rows[0], &r.rows[1]);
        assert_eq!((base.requests, base.ok, base.recovery_ms), (100, 100, None));
        assert_eq!(
            (x.requests, x.ok, x.unavailable, x.hung),
            (502, 251, 250, 1)
        );
        assert_eq!(x.recovery_ms.map(|ms| ms.round()), Some(500.0));
        assert_eq!(r.hung(), 1);
        assert!(!r.passed());
        let md = r.table_md();
        assert!(
            md.contains("| x | svc | 502 | 50.0% | 0 | 0 | 0 | 0 | 250 | 0 | 0 | 1 |"),
            "{md}"
        );
        assert!(r.verdict().contains("**not met**"));
    }

    #[test]
    fn no_run_of_2xx_in_the_window_is_no_recovery() {
        let plan = Plan::standard();
        let samples: Vec<Sample> = (0..100).map(|t| sample(0, t * 10, DOWN)).collect();
        let spans = [span("baseline", 0.0, 0.0, 0.0), span("x", 0.0, 0.5, 1.0)];
        let r = summarise(&plan, &["svc".into()], &spans, &samples, 0, Duration::ZERO);
        assert!(!r.rows[1].recovered);
        assert!(r.table_md().contains("not in the window"));
    }
}
