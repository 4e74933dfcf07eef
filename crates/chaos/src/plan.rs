//! The run's knobs, and the faults in the order they are injected.
//!
//! Time is scaled down as in lesson 3's outage experiment: a soft TTL (and
//! lesson 2's TTL) of two seconds instead of sixty, so that cached keys go
//! stale inside a five-second fault, as they would in a long outage at
//! production TTLs, and the database is really asked during every phase.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The run's parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// A smoke run (`--quick`): not the book's figures.
    pub quick: bool,
    /// Requests per second sent to each service, open loop.
    pub rate: u32,
    /// Users in the table; every request asks for one of ids `1..=ids`,
    /// all of them cached before the load starts.
    pub ids: i64,
    /// How long each fault lasts.
    pub fault: Duration,
    /// How long the load goes on after a fault is cleared: the window in
    /// which the service must recover by itself.
    pub recover: Duration,
    /// The client gives up after this long; a request still unanswered
    /// then is *hung*.
    pub hung_after: Duration,
    /// An answered request slower than this counts as slow.
    pub slow_after: Duration,
    /// Recovered: the first run of this many consecutive 2xx after the fault
    /// is cleared.
    pub run_of: usize,
    /// Simulated query latency (pg_sleep).
    pub latency: Duration,
    /// Every lesson's database timeout.
    pub db_timeout: Duration,
    /// Every lesson's Redis timeout.
    pub redis_timeout: Duration,
    /// Lesson 3's soft TTL and lesson 2's TTL.
    pub soft_ttl: Duration,
    /// How slow the slowed PostgreSQL is: the proxy's added latency.
    pub slow_by: Duration,
}

impl Plan {
    /// `just chaos`: 75 s of load.
    pub fn standard() -> Plan {
        Plan {
            quick: false,
            rate: 100,
            ids: 200,
            fault: Duration::from_secs(5),
            recover: Duration::from_secs(5),
            hung_after: Duration::from_secs(5),
            slow_after: Duration::from_secs(1),
            run_of: 20,
            latency: Duration::from_millis(5),
            db_timeout: Duration::from_millis(250),
            redis_timeout: Duration::from_millis(50),
            soft_ttl: Duration::from_secs(2),
            slow_by: Duration::from_millis(500),
        }
    }

    /// A smoke run (`--quick`): every phase, shorter.
    pub fn quick() -> Plan {
        Plan {
            quick: true,
            rate: 50,
            fault: Duration::from_secs(3),
            recover: Duration::from_secs(3),
            ..Plan::standard()
        }
    }

    /// How long `phase`'s fault stays on (none for the baseline).
    pub fn fault_of(&self, phase: Phase) -> Duration {
        match phase {
            Phase::Baseline => Duration::ZERO,
            _ => self.fault,
        }
    }

    /// The phase's whole span: its fault, then the recovery window.
    pub fn span_of(&self, phase: Phase) -> Duration {
        self.fault_of(phase) + self.recover
    }

    /// The load's length: every phase end to end.
    pub fn total(&self) -> Duration {
        PHASES.iter().map(|&p| self.span_of(p)).sum()
    }
}

/// One step of the script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No fault: what normal looks like.
    Baseline,
    /// PostgreSQL shut down cleanly (connections closed, new ones refused),
    /// then started again on the same port and data.
    PgStopped,
    /// Every PostgreSQL process stopped with SIGSTOP, then SIGCONT:
    /// connections stay open and nothing answers.
    PgPaused,
    /// The proxy delays every chunk to and from PostgreSQL.
    PgSlow,
    /// Every established connection through both proxies reset, again and
    /// again; new ones still go through.
    Resets,
    /// Redis killed with SIGKILL and started again: empty, as after a crash
    /// without persistence.
    RedisKilled,
    /// Redis stopped with SIGSTOP, then SIGCONT.
    RedisPaused,
    /// The proxy swallows everything to and from Redis.
    RedisBlackholed,
}

/// The script, in order. PostgreSQL's faults first, then Redis's: a Redis
/// killed early would empty the caches that the later PostgreSQL phases
/// are meant to show serving.
pub const PHASES: [Phase; 8] = [
    Phase::Baseline,
    Phase::PgStopped,
    Phase::PgPaused,
    Phase::PgSlow,
    Phase::Resets,
    Phase::RedisKilled,
    Phase::RedisPaused,
    Phase::RedisBlackholed,
];

impl Phase {
    /// The name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Baseline => "baseline",
            Phase::PgStopped => "PostgreSQL stopped",
            Phase::PgPaused => "PostgreSQL paused",
            Phase::PgSlow => "PostgreSQL slow",
            Phase::Resets => "connections reset",
            Phase::RedisKilled => "Redis killed",
            Phase::RedisPaused => "Redis paused",
            Phase::RedisBlackholed => "Redis blackholed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plans_fit_the_budget_and_make_keys_go_stale_in_a_fault() {
        for p in [Plan::standard(), Plan::quick()] {
            // Three minutes in all, with time to spawn, warm and build.
            assert!(p.total() <= Duration::from_secs(100), "{p:?}");
            assert!(p.fault > p.soft_ttl, "{p:?}");
            // The slowed database is slower than the services allow.
            assert!(p.slow_by > p.db_timeout, "{p:?}");
            // A hung request is told apart from one the service timed out.
            assert!(p.hung_after > p.db_timeout * 4, "{p:?}");
        }
    }
}
