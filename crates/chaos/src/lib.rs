//! # What breaks, and what doesn't
//!
//! `just chaos` runs every HTTP lesson (1, 2, and 3 in its three modes) under
//! a bounded open-loop load on loopback while faults are injected in
//! sequence: PostgreSQL stopped, paused and slowed; Redis killed, paused and
//! blackholed; connections reset. Per service and phase it counts requests,
//! 2xx/4xx/5xx, answers that never came, hung requests, the p99, and the
//! time to recover without a restart; panics are counted by a panic hook.
//! `just report` renders the table into the book's chapter "What breaks,
//! and what doesn't".
//!
//! Everything runs on private servers (`lab::spawn`): the run stops, pauses
//! and kills them, which it must never do to the shared ones. Each service
//! reaches PostgreSQL and Redis through a [`lab::faults::FaultProxy`], which
//! adds latency, blackholes or resets connections on command.
//!
//! # Layout
//!
//! - [`plan`]: the run's knobs and its phases, in order.
//! - [`services`]: the private servers, the proxies in front of them, and
//!   the five services under test, each in-process on loopback.
//! - [`inject`]: what each phase does to the servers, and how it undoes it.
//! - [`load`]: the open-loop load generator, one [`load::Sample`] per request.
//! - [`results`]: the samples summarised per service and phase
//!   ([`results::ChaosResults`], `chaos.json`), and the table.
//! - [`run`] (here): connects them.
//!
//! Its tests (`tests/hostile.rs`) throw hostile input at every lesson's
//! router: property-based tests of the parsers, and a corpus of requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

pub mod inject;
pub mod load;
pub mod plan;
pub mod results;
pub mod services;

use plan::{PHASES, Phase, Plan};
use results::{ChaosResults, PhaseSpan};

/// Every panic in the process, counted by the hook [`count_panics`]
/// installs. A panic in a handler does not crash an axum server: the
/// connection's task dies and the client sees its connection closed, which
/// looks like any other reset. The hook is the only place that sees it.
static PANICS: AtomicU64 = AtomicU64::new(0);

/// Installs a panic hook that counts every panic (in any thread or task)
/// and then prints it as usual.
pub fn count_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::Relaxed);
            default(info);
        }));
    });
}

/// Panics so far.
pub fn panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

// ANCHOR: run
/// Runs the whole script: services up and warm, then each phase's fault
/// injected and cleared under a steady load. Progress goes to stderr.
pub async fn run(plan: &Plan) -> anyhow::Result<ChaosResults> {
    count_panics();
    let panics_before_run = panics();
    let wall = Instant::now();
    eprintln!("chaos: spawning a private PostgreSQL and Redis, and proxies in front of them…");
    let mut servers = services::Servers::start(plan).await?;
    let targets = services::serve(plan, &servers).await?;
    let client = load::client(plan)?;
    eprintln!(
        "chaos: warming ids 1..={} in every cache ({} services)…",
        plan.ids,
        targets.len()
    );
    services::warm(&client, &targets, plan.ids).await?;

    let samples = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let stop_at = start + plan.total();
    let mut drivers = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        drivers.push(tokio::spawn(load::drive(
            i,
            t.base.clone(),
            plan.clone(),
            client.clone(),
            samples.clone(),
            start,
            stop_at,
        )));
    }
    eprintln!(
        "chaos: {} req/s to each service, {} s per fault and {} s to recover, {} phases",
        plan.rate,
        plan.fault.as_secs(),
        plan.recover.as_secs(),
        PHASES.len()
    );

    let mut spans = Vec::new();
    let mut due = start;
    for phase in PHASES {
        let span = one_phase(phase, plan, &mut servers, start, due).await?;
        due += plan.span_of(phase);
        let so_far = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
        eprintln!("{}", results::progress_line(&span, &so_far, &targets));
        spans.push(span);
    }

    let mut driver_panics = 0;
    for d in drivers {
        if d.await.is_err() {
            driver_panics += 1;
        }
    }
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let names: Vec<String> = targets.iter().map(|t| t.name.to_string()).collect();
    drop(targets);
    drop(servers);
    Ok(results::summarise(
        plan,
        &names,
        &spans,
        &samples,
        panics() - panics_before_run + driver_panics,
        wall.elapsed(),
    ))
}

/// One phase, due to start at `due`: its fault injected, held, cleared,
/// then the window in which the services must recover by themselves.
/// Returns when each of those happened, in seconds since `start`.
async fn one_phase(
    phase: Phase,
    plan: &Plan,
    servers: &mut services::Servers,
    start: Instant,
    due: Instant,
) -> anyhow::Result<PhaseSpan> {
    let panics_before = panics();
    let now = || start.elapsed().as_secs_f64();
    let start_s = now();
    inject::inject(phase, servers, plan).await?;
    let injected_s = now();
    inject::hold(phase, servers, (due + plan.fault_of(phase)).into()).await;
    inject::clear(phase, servers).await?;
    let cleared_s = now();
    tokio::time::sleep_until((due + plan.span_of(phase)).into()).await;
    Ok(PhaseSpan {
        phase: phase.name().into(),
        start_s,
        injected_s,
        cleared_s,
        end_s: now(),
        panics: panics() - panics_before,
    })
}
// ANCHOR_END: run

/// How long to wait, at most, for anything the harness itself does between
/// phases (a server's restart): far above its usual second.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    /// The panic counter is the whole process's: the test that panics on
    /// purpose must not run while the script's test counts.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// Every phase, one second each, at a low rate: the whole script runs
    /// against the real lessons, and the bar holds. Only counts are
    /// asserted (no panic, no hung request, no wrong user, every request
    /// recorded), never a latency or a recovery time, which two busy cores
    /// could stretch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_whole_script_runs_and_the_bar_holds() {
        use lab::Kind;
        use lab::spawn::can_spawn;
        if !can_spawn(Kind::Postgres, "chaos script") || !can_spawn(Kind::Redis, "chaos script") {
            return;
        }
        let plan = plan::Plan {
            rate: 20,
            fault: Duration::from_secs(1),
            recover: Duration::from_secs(1),
            ..plan::Plan::quick()
        };
        let _alone = ONE_AT_A_TIME.lock().await;
        let r = run(&plan).await.expect("the script runs");
        assert_eq!(r.spans.len(), PHASES.len());
        assert_eq!(r.rows.len(), PHASES.len() * services::SERVICES.len());
        // Every phase of every service got its share of the load.
        assert!(
            r.rows.iter().all(|row| row.requests > 0),
            "{}",
            r.table_md()
        );
        assert!(r.passed(), "{}\n{}", r.table_md(), r.verdict());
    }

    #[test]
    fn a_panic_in_a_task_is_counted() {
        let _alone = ONE_AT_A_TIME.blocking_lock();
        count_panics();
        let before = panics();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let joined = rt
            .block_on(async { tokio::spawn(async { panic!("on purpose, to be counted") }).await });
        assert!(joined.is_err());
        assert!(panics() > before);
    }
}
