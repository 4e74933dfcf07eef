//! What each phase does to the servers, and how it undoes it.
//!
//! Three kinds of fault, because each fails differently for a client:
//!
//! - a **stopped** server closes its connections and refuses new ones: the
//!   client learns at once;
//! - a **paused** one (SIGSTOP) keeps every connection open and answers
//!   nothing: only the client's own timeout ends the wait. The kernel still
//!   completes new TCP handshakes into the listen backlog, so even a
//!   connection attempt "succeeds";
//! - the **proxy's** faults sit between the two and the service: latency,
//!   a blackhole (connections open, nothing delivered), and resets.
//!
//! Signals are sent with `kill(1)` to process ids the harness started
//! itself (the private instances and PostgreSQL's own children), never
//! by name.

use std::process::Command;

use anyhow::{Context, bail};
use lab::faults::Fault;

use crate::STEP_TIMEOUT;
use crate::plan::{Phase, Plan};
use crate::services::Servers;

// ANCHOR: inject
/// Turns `phase`'s fault on.
pub async fn inject(phase: Phase, s: &mut Servers, plan: &Plan) -> anyhow::Result<()> {
    match phase {
        Phase::Baseline => {}
        Phase::PgStopped => bounded(s.pg.stop()).await?,
        Phase::PgPaused => signal_tree(pid(&s.pg)?, "STOP")?,
        Phase::PgSlow => s.pg_proxy.set(Fault::Latency(plan.slow_by)),
        Phase::Resets => {
            s.pg_proxy.reset_all();
            s.redis_proxy.reset_all();
        }
        Phase::RedisKilled => {
            signal(pid(&s.redis)?, "KILL")?;
        }
        Phase::RedisPaused => signal(pid(&s.redis)?, "STOP")?,
        Phase::RedisBlackholed => s.redis_proxy.set(Fault::Blackhole),
    }
    Ok(())
}

/// Turns it off again. Nothing is restarted but the server that was
/// stopped or killed: the services must recover by themselves.
pub async fn clear(phase: Phase, s: &mut Servers) -> anyhow::Result<()> {
    match phase {
        Phase::Baseline => {}
        Phase::PgStopped => bounded(s.pg.start()).await?,
        Phase::PgPaused => signal_tree(pid(&s.pg)?, "CONT")?,
        Phase::PgSlow => s.pg_proxy.set(Fault::None),
        Phase::Resets => {}
        // `start` sees the killed process has exited and starts a new one.
        Phase::RedisKilled => bounded(s.redis.start()).await?,
        Phase::RedisPaused => signal(pid(&s.redis)?, "CONT")?,
        Phase::RedisBlackholed => s.redis_proxy.set(Fault::None),
    }
    Ok(())
}
// ANCHOR_END: inject

/// Wakes every paused server. [`Servers`] calls it when dropped, so a run
/// that fails or is interrupted in a pause never leaves a stopped
/// PostgreSQL or Redis behind: a stopped process cannot act on the stop
/// signal its `Instance` sends next.
pub fn resume_all(s: &Servers) {
    if let Some(pid) = s.pg.pid() {
        let _ = signal_tree(pid, "CONT");
    }
    if let Some(pid) = s.redis.pid() {
        let _ = signal(pid, "CONT");
    }
}

/// Holds `phase`'s fault until `until`. Resets are not a state but an
/// event, so the resets phase repeats them every half second: connections
/// opened since the last one are reset too.
pub async fn hold(phase: Phase, s: &Servers, until: tokio::time::Instant) {
    if phase != Phase::Resets {
        return tokio::time::sleep_until(until).await;
    }
    let mut tick = tokio::time::interval(RESET_EVERY);
    tick.tick().await;
    while tokio::time::Instant::now() + RESET_EVERY < until {
        tick.tick().await;
        s.pg_proxy.reset_all();
        s.redis_proxy.reset_all();
    }
    tokio::time::sleep_until(until).await;
}

const RESET_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

async fn bounded(step: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::time::timeout(STEP_TIMEOUT, step)
        .await
        .with_context(|| format!("a server did not stop or start within {STEP_TIMEOUT:?}"))?
}

fn pid(i: &lab::spawn::Instance) -> anyhow::Result<u32> {
    i.pid()
        .with_context(|| format!("the private {} is not running", i.kind()))
}

/// Signals a process and every process it started: PostgreSQL serves each
/// connection from a child of the postmaster, so pausing the postmaster
/// alone would pause nothing a connected client notices. A child may exit
/// between the listing and the signal (a backend whose client hung up):
/// only the root must be there.
fn signal_tree(root: u32, sig: &str) -> anyhow::Result<()> {
    signal(root, sig)?;
    for child in children(root) {
        let _ = kill(child, sig)
            .stderr(std::process::Stdio::null())
            .status();
    }
    Ok(())
}

/// The processes whose parent is `parent`, from `/proc/*/stat`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid …`; comm may hold spaces, so split after `)`.
        let after = stat.rsplit_once(')')?.1;
        let ppid: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent).then_some(pid)
    })
    .collect()
}

fn signal(pid: u32, sig: &str) -> anyhow::Result<()> {
    let status = kill(pid, sig).status().context("Failed to run kill")?;
    if !status.success() {
        bail!("kill -{sig} {pid} failed ({status})");
    }
    Ok(())
}

fn kill(pid: u32, sig: &str) -> Command {
    let mut cmd = Command::new("kill");
    cmd.arg(format!("-{sig}")).arg(pid.to_string());
    cmd
}
