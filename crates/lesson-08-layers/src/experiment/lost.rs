//! Experiment 3: the lost invalidation. A private Redis that keeps an
//! append-only file; a user cached at version 1; Redis stopped; the user
//! written (the PUT answers `X-Invalidation: queued`); Redis started again,
//! with version 1 restored from its file. How long until Redis stops
//! serving version 1: with the outbox relay, and without it?

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Plan;
use super::fixture::{Fixture, get, put, stored};
use crate::hooks::Hooks;

/// The service's default relay period (`OUTBOX_EVERY_MS`), not the tests'.
const RELAY_EVERY: Duration = Duration::from_millis(500);

pub const SHOWS: &str =
    "a write that Redis missed while it was down: how long the old value survives its restart";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LostRow {
    pub relay: bool,
    pub trials: usize,
    /// What the PUT said about the invalidation, per trial.
    pub answered: Vec<String>,
    /// Per trial: ms from Redis answering again to it no longer holding
    /// version 1; `None` when it still held it at the end of the watch.
    pub windows_ms: Vec<Option<f64>>,
    /// How long each trial watched.
    pub watch_ms: f64,
    /// The relay's period.
    pub relay_every_ms: f64,
}

pub async fn run(fx: &Fixture, plan: &Plan, first_id: i64) -> anyhow::Result<Vec<LostRow>> {
    use lab::spawn::{Instance as Server, SpawnOptions};
    lab::spawn::require_spawn(lab::Kind::Redis, "lesson 8's lost invalidation");
    let opts = SpawnOptions::with_settings([("appendonly", "yes"), ("appendfsync", "always")]);
    let mut server = Server::start_new(lab::Kind::Redis, opts).await?;
    let url = server.url();
    let mut rows = Vec::new();
    for (r, relay) in [true, false].into_iter().enumerate() {
        let mut settings = fx.settings();
        settings.relay = relay;
        // The service's default period, not the tests' faster one.
        settings.outbox_every = RELAY_EVERY;
        settings.outbox_grace = Duration::from_secs(1);
        let a = fx.instance_on(&url, settings, Hooks::default()).await?;
        let (mut answered, mut windows) = (Vec::new(), Vec::new());
        for t in 0..plan.lost_trials {
            let id = first_id + (r * plan.lost_trials + t) as i64;
            get(&a, id).await;
            server.stop().await?;
            let (status, said, _) = put(&a, id, "Ada").await;
            anyhow::ensure!(status == 200, "the write answered {status}");
            answered.push(said);
            server.start().await?;
            let back = Instant::now();
            let mut redis = lab::testing::redis_conn(&url).await?;
            let mut window = None;
            while back.elapsed() < plan.lost_watch {
                let (v, _) = stored(&mut redis, &fx.prefix, id).await?;
                if v != Some(1) {
                    window = Some(back.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            windows.push(window);
        }
        let shown: Vec<String> = windows
            .iter()
            .map(|w| {
                w.map_or(format!("> {:.0} s", plan.lost_watch.as_secs_f64()), |ms| {
                    format!("{ms:.0} ms")
                })
            })
            .collect();
        println!(
            "  relay {:<3}  the PUT said {:?}; version 1 served after Redis came back for: {}",
            if relay { "on" } else { "off" },
            answered.first().map(String::as_str).unwrap_or(""),
            shown.join(", ")
        );
        rows.push(LostRow {
            relay,
            trials: plan.lost_trials,
            answered,
            windows_ms: windows,
            watch_ms: plan.lost_watch.as_secs_f64() * 1000.0,
            relay_every_ms: RELAY_EVERY.as_secs_f64() * 1000.0,
        });
    }
    Ok(rows)
}
