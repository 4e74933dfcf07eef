//! What the experiments share: a private PostgreSQL that counts its own
//! statements, a Redis key prefix of their own, fleets of instances on
//! them, and the closed-loop clients that load a fleet, all in process
//! (no sockets: what is counted is the cache's behaviour, not loopback
//! HTTP's).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use lab::isolate::RedisPrefix;
use lab::testing::CountingPostgres;
use sqlx::postgres::PgPoolOptions;
use tower::ServiceExt;

use crate::db::Queries;
use crate::metrics;
use crate::{Instance, Settings, Strategy};

/// Users seeded: the jitter experiment's 1,000 keys. Every id above this
/// does not exist (the negative experiment's).
pub const USERS: i64 = 1_000;

/// Connections per instance: a common production pool size, and the cap
/// on how many of one instance's loads run in PostgreSQL at once. Four
/// instances make 40, well under the private server's 100.
pub const POOL: u32 = 10;

/// The timelines' resolution: fine enough to show a herd (a 50 ms load
/// is half a bucket), coarse enough that a bucket holds more than noise.
pub const BUCKET: Duration = Duration::from_millis(100);

/// The servers the experiments run on.
#[derive(Debug)]
pub struct Fixture {
    // Fields drop in order: the private PostgreSQL stops, then the keys
    // are deleted while the Redis they are on is still there.
    pub pg: CountingPostgres,
    pub prefix: RedisPrefix,
    pub redis_url: String,
    /// Runs so far: each gets a key prefix of its own.
    runs: AtomicUsize,
    _redis: lab::Server,
}

impl Fixture {
    /// Spawns PostgreSQL with `pg_stat_statements` and seeds [`USERS`].
    pub async fn new() -> anyhow::Result<Fixture> {
        let pg = CountingPostgres::start(USERS).await.context(
            "lesson 7's experiments count loads with pg_stat_statements on a private \
             PostgreSQL spawned from the local binaries (`just doctor` shows what was found)",
        )?;
        let redis = lab::discover(lab::Kind::Redis).await?;
        Ok(Fixture {
            pg,
            prefix: RedisPrefix::new(redis.url()),
            redis_url: redis.url().to_string(),
            runs: AtomicUsize::new(0),
            _redis: redis,
        })
    }

    /// `strategy`'s settings for one run, under a key prefix no other run
    /// uses (so no run finds another's entries or leases), with the
    /// experiments' bounds: a lease lives, and its waiters wait, as long
    /// as a load may take (5 s), as the service's own settings tie them.
    pub fn settings(&self, strategy: Strategy, name: &str) -> Settings {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{}{name}-{}-{n}:", self.prefix.prefix(), strategy.name());
        let mut s = Settings::for_tests(strategy, &prefix);
        s.db_timeout = Duration::from_secs(5);
        s.lease_ttl = s.db_timeout;
        s.lease_wait = s.db_timeout;
        s.lease_poll = Duration::from_millis(5);
        s.beta = 1.0;
        s.jitter = 0.0;
        // for_tests' 200 ms Redis timeout stays: 64 clients on two cores
        // keep the runtime busy, and a Redis call that times out would be
        // counted as a miss the cache did not really have.
        s
    }

    /// `n` instances with `settings`, each with a pool of its own, all
    /// counting their loads in one `queries` (so that a load on one
    /// instance overlapping a load of the same user on another counts).
    pub async fn fleet(
        &self,
        settings: &Settings,
        n: usize,
        queries: &Arc<Queries>,
    ) -> anyhow::Result<Fleet> {
        let mut instances = Vec::with_capacity(n);
        for _ in 0..n {
            let pool = PgPoolOptions::new()
                .max_connections(POOL)
                .acquire_timeout(Duration::from_secs(10))
                .connect(&self.pg.instance.url())
                .await?;
            // Opened now, not by the first herd: connecting costs a few
            // ms per connection, which would land in the first bucket.
            let conns =
                futures_util::future::try_join_all((0..POOL).map(|_| pool.acquire())).await?;
            drop(conns);
            instances.push(Instance::start(
                pool,
                &self.redis_url,
                settings.clone(),
                queries.clone(),
            )?);
        }
        Ok(Fleet {
            instances,
            queries: queries.clone(),
        })
    }

    /// Loads PostgreSQL ran since the last [`CountingPostgres::reset`]:
    /// with latency, every load's SQL has `pg_sleep` in it.
    pub async fn pg_loads(&self) -> anyhow::Result<i64> {
        self.pg.calls("%pg_sleep%").await
    }
}

/// Instances of the service sharing one load counter.
#[derive(Debug)]
pub struct Fleet {
    pub instances: Vec<Instance>,
    pub queries: Arc<Queries>,
}

impl Fleet {
    /// One router per instance: a client keeps its instance's and clones
    /// it per request (an `Arc`), as a connection to it would.
    pub fn routers(&self) -> Vec<Router> {
        self.instances.iter().map(Instance::router).collect()
    }

    /// A counter summed over the fleet, as a dashboard would.
    pub fn sum(&self, name: &str) -> u64 {
        self.instances
            .iter()
            .map(|i| i.state.metrics.value(name))
            .sum()
    }

    /// Closes every pool, so the next run's connections never meet this
    /// one's on the server.
    pub async fn close(self) {
        for i in &self.instances {
            i.state.pool.close().await;
        }
    }

    /// The counters every row reports.
    pub fn counts(&self) -> Counts {
        Counts {
            db_queries: self.queries.total(),
            overlapping: self.queries.overlapping(),
            misses: self.sum(metrics::MISSES),
            hits: self.sum(metrics::HITS),
            coalesced: self.sum(metrics::COALESCED),
            early: self.sum(metrics::EARLY),
            negative_hits: self.sum(metrics::NEGATIVE_HITS),
            lease_timeouts: self.sum(metrics::LEASE_TIMEOUTS),
            redis_errors: self.sum(metrics::REDIS_ERRORS),
        }
    }
}

/// The fleet's counters at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub db_queries: u64,
    pub overlapping: u64,
    pub misses: u64,
    pub hits: u64,
    pub coalesced: u64,
    pub early: u64,
    pub negative_hits: u64,
    pub lease_timeouts: u64,
    pub redis_errors: u64,
}

impl Counts {
    /// What was counted after `before`.
    pub fn since(&self, before: &Counts) -> Counts {
        Counts {
            db_queries: self.db_queries - before.db_queries,
            overlapping: self.overlapping - before.overlapping,
            misses: self.misses - before.misses,
            hits: self.hits - before.hits,
            coalesced: self.coalesced - before.coalesced,
            early: self.early - before.early,
            negative_hits: self.negative_hits - before.negative_hits,
            lease_timeouts: self.lease_timeouts - before.lease_timeouts,
            redis_errors: self.redis_errors - before.redis_errors,
        }
    }
}

/// How one answer came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `X-Cache` said MISS: this request ran a load itself.
    pub loaded: bool,
}

/// `GET /users/{id}` through `router`.
pub async fn get(router: &Router, id: i64) -> Answer {
    let req = Request::get(format!("/users/{id}"))
        .body(Body::empty())
        .expect("a valid request");
    let resp = match router.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let loaded = resp.headers().get("x-cache").is_some_and(|v| v == "MISS");
    Answer {
        status: resp.status().as_u16(),
        loaded,
    }
}

/// What a set of clients saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub requests: u64,
    /// Answers by status: 200, 404, anything else.
    pub ok: u64,
    pub not_found: u64,
    pub other: u64,
    /// Every request's time, client side.
    pub took: Vec<Duration>,
    /// Each answer that ran a load itself (`X-Cache: MISS`): its
    /// instance, when it was sent and when it was answered.
    pub loads: Vec<(usize, Instant, Instant)>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.not_found += other.not_found;
        self.other += other.other;
        self.took.extend(other.took);
        self.loads.extend(other.loads);
    }

    pub fn quantile_ms(&self, q: f64) -> f64 {
        lab::units::quantile_ms(&self.took, q)
    }

    /// Loading requests that were sent while `pool` others of their
    /// instance were already loading: their load found every connection
    /// busy and queued for one. (About: a request's interval is a little
    /// wider than its load's, by a Redis call each side.)
    pub fn queued(&self, pool: usize) -> u64 {
        let mut queued = 0;
        let instances = self.loads.iter().map(|l| l.0 + 1).max().unwrap_or(0);
        for instance in 0..instances {
            let mut mine: Vec<(Instant, Instant)> = self
                .loads
                .iter()
                .filter(|l| l.0 == instance)
                .map(|l| (l.1, l.2))
                .collect();
            mine.sort_unstable();
            // The ends of the loads still running, earliest first.
            let mut running = std::collections::BinaryHeap::new();
            for (start, end) in mine {
                while running
                    .peek()
                    .is_some_and(|&std::cmp::Reverse(e)| e <= start)
                {
                    running.pop();
                }
                if running.len() >= pool {
                    queued += 1;
                }
                running.push(std::cmp::Reverse(end));
            }
        }
        queued
    }
}

/// `clients` closed-loop clients, client `i` on instance `i % n`, each
/// sending its next request as soon as the previous one is answered, the
/// `k`-th for user `pick(i, k)`, until `until`. A closed loop, not a fixed
/// rate: a client stuck behind a load sends nothing meanwhile, as a real
/// worker would, so a herd is as big as the callers that can be waiting.
pub async fn closed_loop<F>(
    routers: &[Router],
    clients: usize,
    until: Instant,
    pick: F,
) -> anyhow::Result<Tally>
where
    F: Fn(usize, u64) -> i64 + Clone + Send + Sync + 'static,
{
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let instance = i % routers.len();
            let router = routers[instance].clone();
            let pick = pick.clone();
            tokio::spawn(async move {
                let mut t = Tally::default();
                let mut k = 0u64;
                while Instant::now() < until {
                    let started = Instant::now();
                    let a = get(&router, pick(i, k)).await;
                    let answered = Instant::now();
                    let took = answered - started;
                    t.requests += 1;
                    match a.status {
                        200 => t.ok += 1,
                        404 => t.not_found += 1,
                        _ => t.other += 1,
                    }
                    t.took.push(took);
                    if a.loaded {
                        t.loads.push((instance, started, answered));
                    }
                    k += 1;
                }
                t
            })
        })
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        all.add(task.await?);
    }
    Ok(all)
}

/// The `n`-th point of the golden-ratio sequence over `1..=keys`: evenly
/// spread, with no random number generator, so a rerun asks for the same
/// keys in the same order.
pub fn spread(n: u64, keys: i64) -> i64 {
    let frac = (n as f64 * 0.618_033_988_75).fract();
    1 + ((frac * keys as f64) as i64).min(keys - 1)
}

/// Loads per [`BUCKET`] since `t0`, from the loads' start times; the
/// timeline covers at least `span` (trailing empty buckets included).
pub fn timeline(starts: &[Instant], t0: Instant, span: Duration) -> Vec<u32> {
    let len = span.as_millis().div_ceil(BUCKET.as_millis()) as usize;
    let mut buckets = vec![0u32; len.max(1)];
    for s in starts {
        let i = (s.saturating_duration_since(t0).as_millis() / BUCKET.as_millis()) as usize;
        if i >= buckets.len() {
            buckets.resize(i + 1, 0);
        }
        buckets[i] += 1;
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_covers_every_key_evenly() {
        let mut seen = vec![0u32; 1000];
        for n in 0..100_000 {
            let k = spread(n, 1000);
            assert!((1..=1000).contains(&k));
            seen[(k - 1) as usize] += 1;
        }
        let lo = seen.iter().min().expect("keys");
        let hi = seen.iter().max().expect("keys");
        assert!(*lo >= 90 && *hi <= 110, "{lo}..{hi}");
    }

    #[test]
    fn a_load_queues_when_its_instance_has_pool_loads_running() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let tally = Tally {
            loads: vec![
                (0, at(0), at(50)),
                (0, at(10), at(60)),
                (0, at(20), at(100)), // two running: queued with a pool of 2
                (0, at(60), at(110)), // one running (the third): not
                (1, at(20), at(70)),  // another instance's
            ],
            ..Tally::default()
        };
        assert_eq!(tally.queued(2), 1);
        assert_eq!(tally.queued(1), 3);
    }

    #[test]
    fn loads_land_in_their_bucket() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let t = timeline(
            &[at(0), at(99), at(100), at(450)],
            t0,
            Duration::from_secs(1),
        );
        assert_eq!(t.len(), 10);
        assert_eq!(&t[..5], &[2, 1, 0, 0, 1]);
        let t = timeline(&[at(1_250)], t0, Duration::from_secs(1));
        assert_eq!(t.len(), 13, "a late load extends the timeline");
    }
}
