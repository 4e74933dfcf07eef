//! Replica lag: the cache poisoning reproduced, the lag measured, the fixes
//! counted.
//!
//! On a private PostgreSQL primary with a streaming standby, and lesson 2's
//! cache-aside over Redis (keys under a prefix of this run's own):
//!
//! 1. **Poisoning, deterministic.** Replay on the standby is paused, so the
//!    lag is as long as we like. A write (UPDATE on the primary, DEL of the
//!    key) is followed by a read: it misses and fills from wherever the
//!    policy says. Replay is resumed; then [`READS_AFTER`] more reads count
//!    how many answers still carry the old name. With the naive split every
//!    one does, until the TTL; with each fix, none.
//! 2. **Lag, natural.** No pause: a writer updates users at a steady rate
//!    while we sample `pg_stat_replication` and time how long a committed
//!    write takes to become visible on the standby.
//! 3. **The race in the wild.** Under that load, cycles of write → DEL →
//!    immediate read per policy, counting how many cached a stale value and
//!    which database each fill read (the fixes' price: primary reads).
//!
//! On loopback the lag is a fraction of a millisecond, so experiment 3 may
//! catch the naive split rarely or never; experiment 1 is the proof, 3 is
//! the odds on this machine. Across a network, under load, the lag is
//! milliseconds to seconds, and the odds grow with it.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use lab::isolate::RedisPrefix;
use lab::replica::PgReplica;
use lab::units::millis;
use lab::users::User;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

use crate::cache::{Cache, ClientMode, Lookup, Topology, user_key};
use crate::replica::{Db, FillFrom, ReplicaSettings, Source};

pub const SHOWS: &str = "a read replica's lag poisons the cache after a write; three fixes, and what they cost the primary";

/// Users seeded. Experiments 1 and 3 write ids up to [`OWN_IDS`]; the
/// background writer only the ids above, so no one else's write can make
/// one of ours look stale (or fresh).
pub const USERS: i64 = 1_000;
pub const OWN_IDS: i64 = 100;
/// Lesson 2's TTL: how long a poisoned entry lives.
pub const TTL: Duration = Duration::from_secs(60);
/// The read-your-writes window (the service's default).
pub const WINDOW: Duration = Duration::from_secs(2);
/// A window the paused lag outlasts, to show what read-your-writes guesses.
pub const SHORT_WINDOW: Duration = Duration::from_millis(200);
/// Reads counted after the write, in experiment 1.
pub const READS_AFTER: u32 = 20;
/// The background writer's rate: a steady, modest OLTP write load.
pub const WRITES_PER_SEC: u32 = 200;
/// How often `pg_stat_replication` is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(20);
/// No single call of the experiment waits longer than this.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything the three experiments found, as `lag` in the lesson's JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LagResults {
    pub users: i64,
    pub ttl_s: u64,
    pub window_ms: u64,
    pub reads_after: u32,
    pub writes_per_sec: u32,
    /// Experiment 1: one row per policy, and read-your-writes outlasted.
    pub poison: Vec<PoisonRow>,
    /// Experiment 2.
    pub natural: NaturalLag,
    /// Experiment 3: one row per policy.
    pub race: Vec<RaceRow>,
}

/// Experiment 1: one write and the reads after it, replay paused.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PoisonRow {
    pub fill: FillFrom,
    /// The read-your-writes window, when the policy has one.
    pub window_ms: Option<u64>,
    /// Where the read after the write filled from.
    pub filled_from: Source,
    /// That fill cached the old name.
    pub cached_stale: bool,
    /// Of the reads after replay resumed, how many answered the old name.
    pub stale_reads: u32,
    pub reads: u32,
}

/// Experiment 2: the standby's lag under a steady write load.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NaturalLag {
    pub duration_ms: u64,
    /// Background writes committed while the probes ran.
    pub writes: u64,
    /// Probe writes timed from commit to visible on the standby.
    pub probes: u64,
    pub visible_p50_ms: f64,
    pub visible_p99_ms: f64,
    pub visible_max_ms: f64,
    /// `pg_stat_replication.replay_lag`, over the samples where it was set.
    pub replay_lag_samples: u64,
    pub replay_lag_p50_ms: f64,
    pub replay_lag_max_ms: f64,
    /// WAL bytes sent but not replayed, by the same samples.
    pub lag_bytes_p50: i64,
    pub lag_bytes_max: i64,
}

/// Experiment 3: write → DEL → read cycles under the write load.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RaceRow {
    pub fill: FillFrom,
    pub cycles: u64,
    /// Cycles whose read cached the name from before the write.
    pub stale: u64,
    pub primary_fills: u64,
    pub replica_fills: u64,
    /// Cycles that failed (a database or Redis error): not counted above.
    pub errors: u64,
}

/// A private primary with a streaming standby, seeded, and a pool on each.
#[derive(Debug)]
pub struct Replicated {
    pub pg: PgReplica,
    pub primary: PgPool,
    pub replica: PgPool,
}

impl Replicated {
    /// Spawns the pair, seeds `users` on the primary and waits until the
    /// standby has them.
    pub async fn start(users: i64) -> anyhow::Result<Replicated> {
        let pg = PgReplica::start(Vec::<(String, String)>::new())
            .await
            .context(
                "lesson 9's replica experiments spawn a private PostgreSQL primary and standby, \
                 from the local binaries or as containers (`just doctor` shows what was found)",
            )?;
        let primary = pool(&pg.primary_url()).await?;
        lab::seed::ensure_users_pg(&primary, users).await?;
        let replica = pool(&pg.standby_url()).await?;
        let r = Replicated {
            pg,
            primary,
            replica,
        };
        r.caught_up().await?;
        Ok(r)
    }

    /// A [`Db`] over the pair with policy `fill`.
    pub fn db(&self, fill: FillFrom, settings: ReplicaSettings) -> Db {
        Db::new(
            self.primary.clone(),
            Some(self.replica.clone()),
            fill,
            settings,
        )
    }

    /// Waits until the standby has replayed everything committed so far.
    pub async fn caught_up(&self) -> anyhow::Result<Duration> {
        let lsn = self.pg.primary_lsn().await?;
        self.pg.wait_replayed(&lsn, Duration::from_secs(30)).await
    }
}

/// A small pool whose waits are bounded: an experiment must never hang.
pub async fn pool(url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(CALL_TIMEOUT)
        .connect(url)
        .await
        .with_context(|| format!("Failed to connect to {}", lab::discover::redact(url)))
}

/// How a read was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    Hit,
    Filled(Source),
}

/// Lesson 2's read path, with the fill going through the policy: GET; on a
/// miss, read (replica or primary) and SET with the TTL. The user's name,
/// and how it was found. (The service's handler does the same, with HTTP
/// around it.)
pub async fn read_through(
    cache: &Cache,
    db: &Db,
    prefix: &str,
    id: i64,
) -> anyhow::Result<(String, Read)> {
    let key = user_key(prefix, id);
    if let Lookup::Hit(json) = cache.get(&key).await
        && let Ok(user) = serde_json::from_str::<User>(&json)
    {
        return Ok((user.name, Read::Hit));
    }
    let (user, source) = db
        .read_for_fill(id)
        .await?
        .with_context(|| format!("user {id} is not seeded"))?;
    cache.set(&key, &serde_json::to_string(&user)?, TTL).await;
    Ok((user.name, Read::Filled(source)))
}

/// Lesson 2's write path: UPDATE on the primary, then DEL the key.
pub async fn write_through(
    cache: &Cache,
    db: &Db,
    prefix: &str,
    id: i64,
    name: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(db.update_name(id, name).await?, "user {id} is not seeded");
    cache.del(&user_key(prefix, id)).await;
    Ok(())
}

/// The three experiments; `duration` is experiment 2's load, and sets
/// experiment 3's cycles per policy.
pub async fn run(duration: Duration) -> anyhow::Result<LagResults> {
    let pair = Replicated::start(USERS).await?;
    let redis = lab::discover(lab::Kind::Redis).await?;
    let keys = RedisPrefix::new(redis.url());
    let cache = Cache::connect(
        &Topology::Single(redis.url().to_string()),
        ClientMode::Bounded,
    )
    .await?;
    let base = format!("{}l9:lag:", keys.prefix());

    let poison = poisoning(&pair, &cache, &base).await?;

    // Experiments 2 and 3 run under the background writer.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(background_writer(
        pair.primary.clone(),
        stop.clone(),
        writes.clone(),
    ));
    let sampler = tokio::spawn(sample_lag(pair.pg.primary_url(), stop.clone()));
    let outcome = async {
        let visible = probe_visibility(&pair, duration).await?;
        let load = writes.load(Ordering::Relaxed);
        let cycles = (duration.as_millis() as u64 / 10).clamp(100, 2_000);
        let mut race = Vec::new();
        for fill in FillFrom::ALL {
            race.push(race_one(&pair, &cache, &base, fill, cycles).await?);
        }
        anyhow::Ok((visible, load, race))
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.context("the background writer panicked")?;
    let samples = sampler.await.context("the lag sampler panicked")?;
    let (visible, load, race) = outcome?;

    let lags: Vec<Duration> = samples
        .iter()
        .filter_map(|s| s.0)
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .collect();
    let mut bytes: Vec<i64> = samples.iter().map(|s| s.1).collect();
    bytes.sort_unstable();
    let natural = NaturalLag {
        duration_ms: duration.as_millis() as u64,
        writes: load,
        probes: visible.len() as u64,
        visible_p50_ms: lab::units::quantile_ms(&visible, 0.5),
        visible_p99_ms: lab::units::quantile_ms(&visible, 0.99),
        visible_max_ms: lab::units::quantile_ms(&visible, 1.0),
        replay_lag_samples: lags.len() as u64,
        replay_lag_p50_ms: lab::units::quantile_ms(&lags, 0.5),
        replay_lag_max_ms: lab::units::quantile_ms(&lags, 1.0),
        lag_bytes_p50: bytes.get(bytes.len() / 2).copied().unwrap_or(0),
        lag_bytes_max: bytes.last().copied().unwrap_or(0),
    };
    println!(
        "  natural lag: {} writes in {:.1} s; commit → visible on the standby p50 {}, p99 {}, max {} ({} probes); \
         replay_lag p50 {}, max {}; unreplayed WAL max {} bytes",
        natural.writes,
        duration.as_secs_f64(),
        millis(natural.visible_p50_ms),
        millis(natural.visible_p99_ms),
        millis(natural.visible_max_ms),
        natural.probes,
        millis(natural.replay_lag_p50_ms),
        millis(natural.replay_lag_max_ms),
        natural.lag_bytes_max
    );
    Ok(LagResults {
        users: USERS,
        ttl_s: TTL.as_secs(),
        window_ms: WINDOW.as_millis() as u64,
        reads_after: READS_AFTER,
        writes_per_sec: WRITES_PER_SEC,
        poison,
        natural,
        race,
    })
}

/// Experiment 1: every policy, then read-your-writes with a window the
/// lag outlasts.
async fn poisoning(pair: &Replicated, cache: &Cache, base: &str) -> anyhow::Result<Vec<PoisonRow>> {
    let mut runs: Vec<(FillFrom, Duration)> = FillFrom::ALL.iter().map(|&f| (f, WINDOW)).collect();
    runs.push((FillFrom::ReadYourWrites, SHORT_WINDOW));
    let mut rows = Vec::new();
    for (n, (fill, window)) in runs.into_iter().enumerate() {
        let id = 1 + n as i64;
        let row = poison_one(pair, cache, &format!("{base}poison{n}:"), fill, window, id).await;
        // Whatever happened, the standby must replay again for the next run.
        pair.pg.resume_replay().await?;
        let row = row?;
        println!(
            "  {:<26} the read after the write filled from the {:<7} and cached the {} name; \
             {:>2} of {} reads after replay resumed answered the old name",
            label(row.fill, row.window_ms),
            row.filled_from.name(),
            if row.cached_stale { "OLD" } else { "new" },
            row.stale_reads,
            row.reads
        );
        rows.push(row);
    }
    Ok(rows)
}

fn label(fill: FillFrom, window_ms: Option<u64>) -> String {
    match window_ms {
        Some(ms) => format!("{} ({})", fill.name(), millis(ms as f64)),
        None => fill.name().to_string(),
    }
}

async fn poison_one(
    pair: &Replicated,
    cache: &Cache,
    prefix: &str,
    fill: FillFrom,
    window: Duration,
    id: i64,
) -> anyhow::Result<PoisonRow> {
    let db = pair.db(
        fill,
        ReplicaSettings {
            window,
            ..ReplicaSettings::default()
        },
    );
    let old = format!("before {}", fill.name());
    let new = format!("after {}", fill.name());
    // A known starting point, replayed and cached, written through a Db
    // that remembers nothing, so `db` starts with no recent write.
    let setup = pair.db(FillFrom::Primary, ReplicaSettings::default());
    write_through(cache, &setup, prefix, id, &old).await?;
    pair.caught_up().await?;
    read_through(cache, &db, prefix, id).await?;

    pair.pg.pause_replay().await?;
    write_through(cache, &db, prefix, id, &new).await?;
    if window < WINDOW {
        // Past the window, while the standby is still behind.
        tokio::time::sleep(window + Duration::from_millis(100)).await;
    }
    let (first, how) = read_through(cache, &db, prefix, id).await?;
    let Read::Filled(filled_from) = how else {
        anyhow::bail!("the read after the DEL was a hit: the DEL did not happen");
    };
    pair.pg.resume_replay().await?;
    pair.caught_up().await?;
    let mut stale_reads = 0;
    for _ in 0..READS_AFTER {
        let (name, _) = read_through(cache, &db, prefix, id).await?;
        if name == old {
            stale_reads += 1;
        }
    }
    cache.del(&user_key(prefix, id)).await;
    Ok(PoisonRow {
        fill,
        window_ms: (fill == FillFrom::ReadYourWrites).then_some(window.as_millis() as u64),
        filled_from,
        cached_stale: first == old,
        stale_reads,
        reads: READS_AFTER,
    })
}

/// Updates users above [`OWN_IDS`] at [`WRITES_PER_SEC`] until `stop`.
async fn background_writer(primary: PgPool, stop: Arc<AtomicBool>, writes: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / WRITES_PER_SEC);
    // A slow write delays the next tick instead of bursting to catch up: a
    // steady rate, not a make-up flood after a hiccup.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        n += 1;
        let id = OWN_IDS + 1 + (n as i64 * 7919) % (USERS - OWN_IDS);
        let update = sqlx::query(
            "UPDATE users SET name = 'User ' || $1::bigint || ' #' || $2::bigint WHERE id = $1",
        )
        .bind(id)
        .bind(n as i64)
        .execute(&primary);
        if let Ok(Ok(_)) = tokio::time::timeout(CALL_TIMEOUT, update).await {
            writes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `pg_stat_replication` every [`SAMPLE_EVERY`] until `stop`: replay_lag
/// in ms (NULL when the standby has been idle) and unreplayed WAL bytes.
async fn sample_lag(primary_url: String, stop: Arc<AtomicBool>) -> Vec<(Option<f64>, i64)> {
    let mut samples = Vec::new();
    let Ok(Ok(mut conn)) =
        tokio::time::timeout(CALL_TIMEOUT, sqlx::PgConnection::connect(&primary_url)).await
    else {
        tracing::warn!("the lag sampler could not connect to the primary");
        return samples;
    };
    while !stop.load(Ordering::Relaxed) {
        let q = sqlx::query_as::<_, (Option<f64>, i64)>(
            "SELECT (max(EXTRACT(epoch FROM replay_lag)) * 1000)::float8, \
                    COALESCE(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::bigint \
             FROM pg_stat_replication",
        )
        .fetch_one(&mut conn);
        match tokio::time::timeout(CALL_TIMEOUT, q).await {
            Ok(Ok(s)) => samples.push(s),
            _ => tracing::warn!("a pg_stat_replication sample failed"),
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let _ = conn.close().await;
    samples
}

/// Commit → visible on the standby, for one write after another until
/// `duration` has passed: the primary's UPDATE returns (committed), then
/// the standby is polled, as fast as it answers, until it shows the value.
async fn probe_visibility(pair: &Replicated, duration: Duration) -> anyhow::Result<Vec<Duration>> {
    let mut primary = sqlx::PgConnection::connect(&pair.pg.primary_url()).await?;
    let mut standby = sqlx::PgConnection::connect(&pair.pg.standby_url()).await?;
    let mut took = Vec::new();
    let until = Instant::now() + duration;
    let mut n: i64 = 0;
    while Instant::now() < until {
        n += 1;
        let id = 1 + n % OWN_IDS;
        let name = format!("probe {n}");
        let update = sqlx::query("UPDATE users SET name = $2 WHERE id = $1")
            .bind(id)
            .bind(&name)
            .execute(&mut primary);
        tokio::time::timeout(CALL_TIMEOUT, update)
            .await
            .context("a probe write timed out")??;
        let committed = Instant::now();
        loop {
            let seen = sqlx::query_scalar::<_, bool>("SELECT name = $2 FROM users WHERE id = $1")
                .bind(id)
                .bind(&name)
                .fetch_one(&mut standby);
            if tokio::time::timeout(CALL_TIMEOUT, seen)
                .await
                .context("a standby poll timed out")??
            {
                break;
            }
            anyhow::ensure!(
                committed.elapsed() < CALL_TIMEOUT,
                "the standby did not show a write within {CALL_TIMEOUT:?}"
            );
        }
        took.push(committed.elapsed());
    }
    let _ = primary.close().await;
    let _ = standby.close().await;
    Ok(took)
}

/// Experiment 3 for one policy: `cycles` of write → DEL → read at once.
async fn race_one(
    pair: &Replicated,
    cache: &Cache,
    base: &str,
    fill: FillFrom,
    cycles: u64,
) -> anyhow::Result<RaceRow> {
    let db = pair.db(fill, ReplicaSettings::default());
    let prefix = format!("{base}race-{}:", fill.name());
    let mut row = RaceRow {
        fill,
        cycles: 0,
        stale: 0,
        primary_fills: 0,
        replica_fills: 0,
        errors: 0,
    };
    for k in 0..cycles {
        let id = 1 + (k as i64 * 37) % OWN_IDS;
        let name = format!("{} {k}", fill.name());
        let cycle = async {
            write_through(cache, &db, &prefix, id, &name).await?;
            read_through(cache, &db, &prefix, id).await
        };
        match cycle.await {
            Ok((seen, how)) => {
                row.cycles += 1;
                if seen != name {
                    row.stale += 1;
                }
                match how {
                    Read::Filled(Source::Primary) => row.primary_fills += 1,
                    Read::Filled(Source::Replica) => row.replica_fills += 1,
                    Read::Hit => {}
                }
            }
            Err(e) => {
                tracing::warn!("race cycle failed: {e:#}");
                row.errors += 1;
            }
        }
    }
    println!(
        "  {:<18} {:>5} cycles: {:>4} cached a stale name; fills from the primary {:>5}, from the replica {:>5}{}",
        fill.name(),
        row.cycles,
        row.stale,
        row.primary_fills,
        row.replica_fills,
        if row.errors > 0 {
            format!(" ({} errors)", row.errors)
        } else {
            String::new()
        }
    );
    Ok(row)
}

impl LagResults {
    /// The experiments' parameters, which the tables do not show.
    pub fn setup_md(&self) -> String {
        format!(
            "Setup: a private PostgreSQL primary and one streaming standby (asynchronous, the default) on \
             loopback, {} users; lesson 2's cache-aside on Redis, TTL {} s; read-your-writes' window {}. \
             Poisoning: standby replay paused, one write (UPDATE on the primary, then DEL), one read, replay \
             resumed, then {} reads. Natural lag: a writer updating {} users a second on the primary, \
             `pg_stat_replication` sampled every {} ms, and probe writes timed from commit until the standby \
             shows them (each poll is a round trip, so a figure includes up to one). The race: write → DEL → \
             read at once, under the same load, per policy.\n",
            self.users,
            self.ttl_s,
            millis(self.window_ms as f64),
            self.reads_after,
            self.writes_per_sec,
            SAMPLE_EVERY.as_millis(),
        )
    }

    /// The three experiments' tables, each under a one-line caption (the
    /// book can include [`poison_md`](Self::poison_md),
    /// [`lag_md`](Self::lag_md) and [`race_md`](Self::race_md) one by one).
    pub fn table_md(&self) -> String {
        format!(
            "Replay paused: the read after a write.\n\n{}\nNatural lag under {} writes a second.\n\n{}\n\
             Write → DEL → read at once, under that load.\n\n{}",
            self.poison_md(),
            self.writes_per_sec,
            self.lag_md(),
            self.race_md()
        )
    }

    /// Experiment 1: one row per policy.
    pub fn poison_md(&self) -> String {
        let mut s = String::from(
            "| fill from | the read after the write filled from | it cached | old name in the reads after |\n\
             |---|---|---|---:|\n",
        );
        for r in &self.poison {
            let _ = writeln!(
                s,
                "| {} | the {} | the {} name | {} of {} |",
                label(r.fill, r.window_ms),
                r.filled_from.name(),
                if r.cached_stale { "**old**" } else { "new" },
                r.stale_reads,
                r.reads
            );
        }
        s
    }

    /// Experiment 2: one row.
    pub fn lag_md(&self) -> String {
        let n = &self.natural;
        format!(
            "| writes | commit → visible p50 | p99 | max | probes | `replay_lag` p50 | max | unreplayed WAL p50 | max |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
             | {} in {:.0} s | {} | {} | {} | {} | {} | {} | {} B | {} B |\n",
            n.writes,
            n.duration_ms as f64 / 1000.0,
            millis(n.visible_p50_ms),
            millis(n.visible_p99_ms),
            millis(n.visible_max_ms),
            n.probes,
            if n.replay_lag_samples == 0 {
                "–".into()
            } else {
                millis(n.replay_lag_p50_ms)
            },
            if n.replay_lag_samples == 0 {
                "–".into()
            } else {
                millis(n.replay_lag_max_ms)
            },
            n.lag_bytes_p50,
            n.lag_bytes_max,
        )
    }

    /// Experiment 3: one row per policy.
    pub fn race_md(&self) -> String {
        let mut s = String::from(
            "| fill from | cycles | cached a stale name | fills from the primary | from the replica | errors |\n\
             |---|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.race {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                r.fill.name(),
                r.cycles,
                r.stale,
                r.primary_fills,
                r.replica_fills,
                r.errors
            );
        }
        s
    }

    /// The conclusions, one `- ` line each, from the counts.
    pub fn findings(&self) -> String {
        let mut s = String::new();
        let poisoned = |f: FillFrom| {
            self.poison
                .iter()
                .find(|r| r.fill == f && r.window_ms.is_none_or(|w| w == self.window_ms))
        };
        if let Some(naive) = poisoned(FillFrom::Replica) {
            let fixed: Vec<&PoisonRow> =
                [FillFrom::Primary, FillFrom::ReadYourWrites, FillFrom::Lsn]
                    .into_iter()
                    .filter_map(poisoned)
                    .collect();
            let clean = fixed.iter().all(|r| !r.cached_stale && r.stale_reads == 0);
            let _ = writeln!(
                s,
                "- with replay paused, the naive split cached the old name, and {} of {} reads after the \
                 standby caught up still answered it (it stays until the {} s TTL); {}.",
                naive.stale_reads,
                naive.reads,
                self.ttl_s,
                if clean {
                    "filling from the primary, read-your-writes and the LSN check each cached the new name: 0 stale reads"
                        .to_string()
                } else {
                    format!(
                        "the fixes: {}",
                        fixed
                            .iter()
                            .map(|r| format!("{} {} stale", r.fill.name(), r.stale_reads))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            );
        }
        if let Some(short) = self
            .poison
            .iter()
            .find(|r| r.window_ms.is_some_and(|w| w != self.window_ms))
        {
            let _ = writeln!(
                s,
                "- read-your-writes is a guess by the clock: with a {} window and a longer lag, its fill read \
                 the {} and cached the {} name ({} of {} reads after were stale). The LSN check does not guess.",
                millis(short.window_ms.unwrap_or(0) as f64),
                short.filled_from.name(),
                if short.cached_stale { "old" } else { "new" },
                short.stale_reads,
                short.reads
            );
        }
        let n = &self.natural;
        let _ = writeln!(
            s,
            "- natural lag on loopback under {} writes a second: a commit became visible on the standby in {} \
             (p50), {} (p99), {} at worst, over {} probes.",
            self.writes_per_sec,
            millis(n.visible_p50_ms),
            millis(n.visible_p99_ms),
            millis(n.visible_max_ms),
            n.probes
        );
        if let Some(naive) = self.race.iter().find(|r| r.fill == FillFrom::Replica) {
            let _ = writeln!(
                s,
                "- the race in the wild: the naive split cached a stale name in {} of {} write → read cycles{}.",
                naive.stale,
                naive.cycles,
                if naive.stale == 0 {
                    " (the lag here is shorter than a DEL and a GET; across a network it is not)"
                } else {
                    ""
                }
            );
        }
        let others: Vec<String> = self
            .race
            .iter()
            .filter(|r| r.fill != FillFrom::Replica)
            .map(|r| {
                format!(
                    "{} {} stale, {} of {} fills from the primary",
                    r.fill.name(),
                    r.stale,
                    r.primary_fills,
                    r.primary_fills + r.replica_fills
                )
            })
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                s,
                "- the fixes in the same race: {}. Filling from the primary and read-your-writes read the \
                 primary after every write; the LSN check only while the replica had not replayed it yet.",
                others.join("; ")
            );
        }
        s
    }
}
