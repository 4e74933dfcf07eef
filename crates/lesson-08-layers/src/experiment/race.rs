//! Experiment 2: the stale-set race, replayed `plan.race_trials` times per
//! fill strategy, in order (a pause point holds the reader between its
//! database read and its fill while the writer commits and invalidates):
//! how often does Redis end up with the old value?

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Plan;
use super::fixture::{Fixture, get, put, stored};
use crate::Fill;
use crate::hooks::{Hooks, Pause};

pub const SHOWS: &str =
    "a read that loaded before a write and fills after it: does the old value land in Redis?";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RaceRow {
    pub fill: Fill,
    pub trials: usize,
    /// Trials that left the old value in Redis (for the whole TTL).
    pub stale_left: usize,
    /// Fills Redis refused (the fix at work).
    pub refused: u64,
}

pub async fn run(fx: &Fixture, plan: &Plan, first_id: i64) -> anyhow::Result<Vec<RaceRow>> {
    let mut redis = lab::testing::redis_conn(&fx.redis_url).await?;
    let mut rows = Vec::new();
    for (f, fill) in Fill::ALL.into_iter().enumerate() {
        let mut settings = fx.settings();
        settings.fill = fill;
        let writer = fx.instance(settings.clone(), Hooks::default()).await?;
        let mut stale_left = 0;
        let mut refused = 0;
        for t in 0..plan.race_trials {
            let id = first_id + (f * plan.race_trials + t) as i64;
            let pause = Pause::new();
            let hooks = Hooks {
                before_fill: Some(pause.clone()),
                ..Hooks::default()
            };
            let reader = std::sync::Arc::new(fx.instance(settings.clone(), hooks).await?);
            let read = {
                let reader = reader.clone();
                tokio::spawn(async move { get(&reader, id).await })
            };
            tokio::time::timeout(Duration::from_secs(20), pause.reached()).await?;
            let (status, _, _) = put(&writer, id, "Ada").await;
            anyhow::ensure!(status == 200, "the write answered {status}");
            pause.release();
            read.await?;
            let (_, name) = stored(&mut redis, &fx.prefix, id).await?;
            if name.is_some_and(|n| n != "Ada") {
                stale_left += 1;
            }
            refused += reader.state.metrics.value(crate::metrics::FILLS_REFUSED);
        }
        println!(
            "  {:<9} the old value left in Redis after {stale_left} of {} races ({refused} fills refused)",
            fill.name(),
            plan.race_trials
        );
        rows.push(RaceRow {
            fill,
            trials: plan.race_trials,
            stale_left,
            refused,
        });
    }
    Ok(rows)
}
