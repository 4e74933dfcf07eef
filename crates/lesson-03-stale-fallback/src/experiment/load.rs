//! The load side of the outage experiment: the four variants served on
//! loopback ([`serve_variants`]), their caches warmed ([`warm`]), and the
//! open-loop load generator ([`drive`]) with its deterministic key sequence
//! ([`Rng`]), which records a [`Sample`] per request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::{Plan, Sample};
use crate::breaker::Status;
use crate::metrics::DB_ATTEMPTS;
use crate::{Mode, Settings};

/// A tiny deterministic generator (SplitMix64), so every run sends the same
/// sequence of keys without a dependency.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(super) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

/// One variant being served.
pub(super) struct Target {
    pub(super) base: String,
    /// Lesson 3's state, to read its breaker and counters.
    pub(super) lesson3: Option<crate::AppState>,
    _server: lab::http::Running,
}

pub(super) async fn serve_variants(
    plan: &Plan,
    pg_url: &str,
    redis_url: &str,
) -> anyhow::Result<Vec<Target>> {
    const POOL: u32 = 10;
    let pool = || lab::isolate::schema_pool(pg_url, "public", POOL);
    let mut targets = Vec::new();

    let l1 = lesson_01_naive::AppState {
        pool: pool().await?,
        latency: plan.latency,
        db_timeout: plan.db_timeout,
    };
    targets.push((lesson_01_naive::router(l1), None));

    let l2 = lesson_02_cache_aside::state(
        pool().await?,
        redis_url,
        lesson_02_cache_aside::Settings {
            ttl: plan.soft_ttl,
            redis_timeout: Duration::from_millis(50),
            key_prefix: "l2:".into(),
            latency: plan.latency,
            db_timeout: plan.db_timeout,
        },
    )?;
    targets.push((lesson_02_cache_aside::router(l2), None));

    for (mode, prefix) in [(Mode::Fallback, "l3:"), (Mode::CacheFirst, "cf:")] {
        let settings = Settings {
            soft_ttl: plan.soft_ttl,
            hard_ttl: Duration::from_secs(3600),
            mode,
            breaker: plan.breaker,
            redis_timeout: Duration::from_millis(50),
            db_timeout: plan.db_timeout,
            latency: plan.latency,
            key_prefix: prefix.into(),
            // The service's default, twice the pool. The experiment should
            // not reach it, so it measures what it did before the bound:
            // warming runs about 16 loads at once, and the load's misses and
            // refreshes are a few dozen a second, each done (or refused by
            // the breaker) within the database timeout.
            max_background_loads: 2 * POOL as usize,
        };
        let s = crate::state(pool().await?, redis_url, settings)?;
        targets.push((crate::router(s.clone()), Some(s)));
    }

    let mut out = Vec::new();
    for (router, lesson3) in targets {
        let server = lab::http::spawn_server(router, 0).await?;
        out.push(Target {
            base: server.base_url(),
            lesson3,
            _server: server,
        });
    }
    Ok(out)
}

/// GETs ids `1..=warm` from the service at each of `bases` until each
/// answers 200. `just chaos` warms its services with it too.
pub async fn warm(client: &reqwest::Client, bases: &[String], warm: i64) -> anyhow::Result<()> {
    let gate = Arc::new(Semaphore::new(16));
    let mut tasks = Vec::new();
    for base in bases {
        for id in 1..=warm {
            let (client, url, gate) = (client.clone(), format!("{base}/users/{id}"), gate.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await?;
                // Cache-first answers 503 until its background load lands.
                for _ in 0..100 {
                    if client.get(&url).send().await?.status().is_success() {
                        return anyhow::Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                anyhow::bail!("{url} never answered 200 while warming")
            }));
        }
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Sends `plan.rate` requests per second to one variant until `stop_at`.
/// Open loop: a slow answer does not delay the next request, as with real
/// users; at most 256 are in flight, so a stuck service cannot run away
/// with the client.
#[allow(clippy::too_many_arguments)]
pub(super) async fn drive(
    variant: usize,
    base: String,
    lesson3: Option<crate::AppState>,
    plan: Plan,
    client: reqwest::Client,
    samples: Arc<Mutex<Vec<Sample>>>,
    start: Instant,
    stop_at: Instant,
) {
    // The same key sequence for every variant, so they see the same load.
    let mut rng = Rng(42);
    let gate = Arc::new(Semaphore::new(256));
    let mut tick = ticks(plan.rate);
    let mut inflight = Vec::new();
    loop {
        tick.tick().await;
        if Instant::now() >= stop_at {
            break;
        }
        let warm = rng.unit() >= plan.cold_share;
        let id = if warm {
            rng.range(1, plan.warm)
        } else {
            rng.range(plan.warm + 1, plan.users)
        };
        let breaker_open = lesson3
            .as_ref()
            .is_some_and(|s| s.breaker.status() != Status::Closed);
        let sent = start.elapsed();
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            record(
                &samples,
                Sample {
                    variant,
                    sent,
                    took: Duration::ZERO,
                    status: 0,
                    fresh: false,
                    warm,
                    breaker_open,
                },
            );
            continue;
        };
        let (client, url, samples) = (
            client.clone(),
            format!("{base}/users/{id}"),
            samples.clone(),
        );
        inflight.push(tokio::spawn(async move {
            let _permit = permit;
            let t0 = Instant::now();
            let (status, stale) = get(&client, &url).await;
            let ok = (200..300).contains(&status);
            record(
                &samples,
                Sample {
                    variant,
                    sent,
                    took: t0.elapsed(),
                    status,
                    fresh: ok && !stale,
                    warm,
                    breaker_open,
                },
            );
        }));
    }
    for t in inflight {
        let _ = t.await;
    }
}

/// An open loop's clock: `rate` ticks a second, late ticks not bunched up.
pub(super) fn ticks(rate: u32) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// GETs `url`: the status (0 when no response came) and whether the
/// answer was a stale copy (`X-Cache: STALE`).
pub(super) async fn get(client: &reqwest::Client, url: &str) -> (u16, bool) {
    match client.get(url).send().await {
        Ok(r) => {
            let stale = r.headers().get("x-cache").is_some_and(|v| v == "STALE");
            let status = r.status().as_u16();
            let _ = r.bytes().await;
            (status, stale)
        }
        Err(_) => (0, false),
    }
}

fn record(samples: &Mutex<Vec<Sample>>, s: Sample) {
    samples.lock().unwrap_or_else(|e| e.into_inner()).push(s);
}

pub(super) fn db_attempts(targets: &[Target]) -> Vec<u64> {
    targets
        .iter()
        .map(|t| {
            t.lesson3
                .as_ref()
                .map_or(0, |s| s.metrics.counter(DB_ATTEMPTS))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_sequence_is_deterministic_and_in_range() {
        let (mut a, mut b) = (Rng(42), Rng(42));
        for _ in 0..1000 {
            let x = a.range(501, 10_000);
            assert_eq!(x, b.range(501, 10_000));
            assert!((501..=10_000).contains(&x));
        }
    }
}
