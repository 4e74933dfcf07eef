//! The database side: lesson 1's query, counted.
//!
//! The herd is only visible if each query is counted where it happens.
//! [`Queries`] counts every load this instance sends, and how many of them
//! *overlapped* another load of the same user still in flight (running,
//! or waiting for a pool connection to run on): the
//! simultaneous recomputations the stampede literature counts (the same
//! value computed twice at once is pure waste). Instances of one process
//! can share a `Queries`, so a fleet's overlaps are counted together.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lab::users::User;
use sqlx::PgPool;

/// Counts of the loads sent to the database.
#[derive(Debug, Default)]
pub struct Queries {
    /// Loads in flight now (running, or waiting for a connection), per user.
    running: Mutex<HashMap<i64, u32>>,
    total: AtomicU64,
    overlapping: AtomicU64,
    /// When each load started, if [`Queries::recording`]: the experiments'
    /// queries-per-second timeline.
    log: Option<Mutex<Vec<Instant>>>,
}

impl Queries {
    /// Counts only.
    pub fn new() -> Queries {
        Queries::default()
    }

    /// Counts, and keeps each load's start time (the experiments').
    pub fn recording() -> Queries {
        Queries {
            log: Some(Mutex::default()),
            ..Queries::default()
        }
    }

    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn overlapping(&self) -> u64 {
        self.overlapping.load(Ordering::Relaxed)
    }

    /// The recorded start times, and clears them.
    pub fn take_log(&self) -> Vec<Instant> {
        self.log
            .as_ref()
            .map(|l| std::mem::take(&mut *l.lock().unwrap_or_else(|e| e.into_inner())))
            .unwrap_or_default()
    }

    fn start(&self, id: i64) -> Running<'_> {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let n = running.entry(id).or_insert(0);
        if *n > 0 {
            self.overlapping.fetch_add(1, Ordering::Relaxed);
        }
        *n += 1;
        drop(running);
        if let Some(log) = &self.log {
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Instant::now());
        }
        Running { queries: self, id }
    }
}

/// One load running; dropping it (however the load ends) says it is over.
struct Running<'a> {
    queries: &'a Queries,
    id: i64,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut running = self
            .queries
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = running.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.id);
            }
        }
    }
}

/// Loads user `id` (lesson 1's query, `latency` spent inside PostgreSQL),
/// counted in `queries`; also how long it took, the Δ XFetch needs.
pub async fn load(
    pool: &PgPool,
    queries: &Queries,
    id: i64,
    latency: Duration,
) -> anyhow::Result<(Option<User>, Duration)> {
    let _running = queries.start(id);
    let t0 = Instant::now();
    let user = lab::users::fetch_user(pool, id, latency).await?;
    Ok((user, t0.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_are_loads_of_a_user_already_loading() {
        let q = Queries::recording();
        let a = q.start(1);
        let b = q.start(1); // overlaps a
        let c = q.start(2); // another user: no overlap
        drop((a, b));
        let d = q.start(1); // nothing of user 1 runs now
        drop((c, d));
        assert_eq!((q.total(), q.overlapping()), (4, 1));
        assert_eq!(q.take_log().len(), 4);
        assert!(q.take_log().is_empty());
    }
}
