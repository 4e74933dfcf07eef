//! The sick-database experiment: the breaker's two rules against a
//! database that is neither up nor down.
//!
//! An outage fails every call, and K failures in a row open the breaker
//! within K timeouts. A *sick* database fails most calls and answers the
//! rest, and every answer resets a consecutive count. Here three of every
//! four queries are slower than the service's database timeout (PostgreSQL
//! itself makes them so: each service reads `users` through a view that
//! sleeps in three calls of every four, evenly spread, while the experiment
//! says so), and three copies of lesson 3's stale fallback take the same
//! load side by side:
//! without a breaker, with the consecutive rule only, and with both rules.
//! Every key is cached and goes stale within a second, so nearly every
//! request asks the database, and falls back to its stale copy when that
//! fails. What differs is how long the request waits first, and how many
//! calls the sick database gets.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use lab::Kind;
use lab::spawn::{Instance, SpawnOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::load::{Rng, get, ticks, warm};
use crate::breaker::{BreakerConfig, FailureRate, Status};
use crate::metrics::{DB_ATTEMPTS, DB_FAILURES};
use crate::{Mode, Settings};

/// The experiment's parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SickPlan {
    /// How long the database is sick, with the load on.
    pub sick_for: Duration,
    /// Requests per second to each service.
    pub rate: u32,
    /// Keys cached before the load, and requested during it.
    pub warm: i64,
    /// Share of queries that are slow, in percent, evenly spread (at 75%,
    /// three of every four, never four in a row).
    pub sick_percent: u32,
    /// How long a slow query takes: longer than `db_timeout`, so it fails,
    /// and not much longer, so its connection is free again soon.
    pub sick_delay: Duration,
    pub latency: Duration,
    pub db_timeout: Duration,
    pub soft_ttl: Duration,
    pub open_for: Duration,
}

impl SickPlan {
    /// The book's run: 30 s of a database that fails three calls in four.
    pub fn long() -> SickPlan {
        SickPlan {
            sick_for: Duration::from_secs(30),
            rate: 20,
            warm: 1_000,
            sick_percent: 75,
            sick_delay: Duration::from_millis(300),
            latency: Duration::from_millis(20),
            db_timeout: Duration::from_millis(250),
            soft_ttl: Duration::from_secs(1),
            open_for: Duration::from_secs(5),
        }
    }

    /// `LAB_QUICK=1`: a third of it.
    pub fn short() -> SickPlan {
        SickPlan {
            sick_for: Duration::from_secs(10),
            warm: 300,
            ..SickPlan::long()
        }
    }

    /// The three services' breakers: none, K in a row, K in a row or R% of
    /// the last N. K, R and N are the service's defaults.
    pub fn rules(&self) -> [(&'static str, BreakerConfig); 3] {
        let k = |failures, rate| BreakerConfig {
            failures,
            open_for: self.open_for,
            rate,
        };
        [
            ("no breaker", k(u32::MAX, None)),
            // No " in " in a name: the book's claims read it as a range.
            ("5 consecutive", k(5, None)),
            (
                "5 consecutive or 50% of 20",
                k(5, Some(FailureRate::DEFAULT)),
            ),
        ]
    }
}

/// One service's figures over the sick period.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SickRow {
    pub rule: String,
    pub requests: usize,
    /// Answered 2xx (fresh or stale), in percent.
    pub ok_pct: f64,
    pub stale_pct: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    /// Requests that took at least the database timeout: each waited for a
    /// call that failed before it got its stale copy.
    pub waited: usize,
    pub db_calls: u64,
    pub db_failures: u64,
    pub times_opened: u64,
    /// Share of requests sent while the breaker was open or probing.
    pub sent_open_pct: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SickResults {
    pub plan: SickPlan,
    pub rows: Vec<SickRow>,
}

/// Written to `target/lab-experiments/sick.json` by the `outage` bench.
impl lab::results::Results for SickResults {
    const FILE: &'static str = "sick.json";
}

struct Sample {
    rule: usize,
    took: Duration,
    status: u16,
    stale: bool,
    open: bool,
}

/// Runs the experiment. `progress` prints what it is doing.
pub async fn run_sick(plan: &SickPlan, progress: bool) -> anyhow::Result<SickResults> {
    let say = |s: &str| {
        if progress {
            println!("{s}");
        }
    };
    say("sick database: spawning a private PostgreSQL and Redis…");
    let pg = Instance::start_new(Kind::Postgres, SpawnOptions::plain())
        .await
        .context("the sick-database experiment needs a private PostgreSQL (the local initdb and postgres, or Docker)")?;
    let redis = Instance::start_new(Kind::Redis, SpawnOptions::plain())
        .await
        .context(
            "the sick-database experiment needs a private Redis (redis-server on PATH, or Docker)",
        )?;
    let admin = sqlx::PgPool::connect(&pg.url()).await?;
    lab::seed::ensure_users_pg(&admin, plan.warm).await?;
    let mut services = Vec::new();
    for (i, (_, breaker)) in plan.rules().into_iter().enumerate() {
        let settings = Settings {
            soft_ttl: plan.soft_ttl,
            hard_ttl: Duration::from_secs(3600),
            mode: Mode::Fallback,
            breaker,
            redis_timeout: Duration::from_millis(50),
            db_timeout: plan.db_timeout,
            latency: plan.latency,
            key_prefix: format!("sick{i}:"),
            max_background_loads: 20,
        };
        // A schema per service, so each counts its own queries and gets
        // exactly its share of slow ones.
        let schema = format!("sick{i}");
        sickly_users(&admin, &schema).await?;
        let pool = lab::isolate::schema_pool(&pg.url(), &schema, 10).await?;
        let state = crate::state(pool, &redis.url(), settings)?;
        let server = lab::http::spawn_server(crate::router(state.clone()), 0).await?;
        services.push((state, server));
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(64)
        .build()?;
    say(&format!("warming ids 1..={} in each service…", plan.warm));
    let bases: Vec<String> = services.iter().map(|(_, s)| s.base_url()).collect();
    warm(&client, &bases, plan.warm).await?;
    // Every copy is stale from here on (older than the soft TTL), so a
    // request asks the database first.
    tokio::time::sleep(plan.soft_ttl).await;

    let before: Vec<(u64, u64, u64)> = services.iter().map(|(s, _)| counts(s)).collect();
    for i in 0..services.len() {
        set_sick(&admin, i, plan.sick_percent, plan.sick_delay).await?;
    }
    say(&format!(
        "the database is sick for {:?}: {}% of queries take {:?} (the timeout is {:?}); {} req/s to each service",
        plan.sick_for, plan.sick_percent, plan.sick_delay, plan.db_timeout, plan.rate
    ));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let stop_at = Instant::now() + plan.sick_for;
    let mut load = Vec::new();
    for (rule, (state, _)) in services.iter().enumerate() {
        load.push(tokio::spawn(drive(
            rule,
            bases[rule].clone(),
            state.clone(),
            plan.clone(),
            client.clone(),
            samples.clone(),
            stop_at,
        )));
    }
    for l in load {
        l.await?;
    }
    for i in 0..services.len() {
        set_sick(&admin, i, 0, plan.sick_delay).await?;
    }
    admin.close().await;
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|e| e.into_inner()));
    let rows = plan
        .rules()
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let (calls, failures, opened) = counts(&services[i].0);
            let (c0, f0, o0) = before[i];
            summarise(
                name,
                plan,
                samples.iter().filter(|s| s.rule == i),
                (calls - c0, failures - f0, opened - o0),
            )
        })
        .collect();
    Ok(SickResults {
        plan: plan.clone(),
        rows,
    })
}

/// Creates `schema` with a `users` view over `public.users` that sleeps in
/// `percent` of the queries through it (evenly spread, by a sequence), as
/// `schema.settings` says: 0% until [`set_sick`] changes it. The view's
/// condition runs once per row read, and a query here reads one row.
async fn sickly_users(pool: &sqlx::PgPool, schema: &str) -> anyhow::Result<()> {
    let sql = format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.settings (percent int NOT NULL, delay_s float8 NOT NULL);
         INSERT INTO {schema}.settings VALUES (0, 0);
         CREATE SEQUENCE {schema}.queries;
         CREATE FUNCTION {schema}.sick() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
         DECLARE
           n bigint := nextval('{schema}.queries');
           s record;
         BEGIN
           SELECT * INTO s FROM {schema}.settings;
           -- Slow when the count of slow queries so far, n * percent / 100,
           -- steps up at n: exactly percent of every 100, evenly spread.
           IF n * s.percent / 100 > (n - 1) * s.percent / 100 THEN
             PERFORM pg_sleep(s.delay_s);
           END IF;
           RETURN true;
         END $$;
         CREATE VIEW {schema}.users AS SELECT * FROM public.users WHERE {schema}.sick();"
    );
    sqlx::raw_sql(&sql)
        .execute(pool)
        .await
        .with_context(|| format!("Failed to create the sick view in {schema}"))?;
    Ok(())
}

async fn set_sick(
    pool: &sqlx::PgPool,
    i: usize,
    percent: u32,
    delay: Duration,
) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "UPDATE sick{i}.settings SET percent = $1, delay_s = $2"
    ))
    .bind(i32::try_from(percent).unwrap_or(100))
    .bind(delay.as_secs_f64())
    .execute(pool)
    .await
    .context("Failed to make the database sick (or well)")?;
    Ok(())
}

fn counts(state: &crate::AppState) -> (u64, u64, u64) {
    (
        state.metrics.counter(DB_ATTEMPTS),
        state.metrics.counter(DB_FAILURES),
        state.breaker.times_opened(),
    )
}

/// Open loop, as the outage experiment's load: `plan.rate` requests a
/// second to warm keys, whatever the answers' latency; at most 256 in flight.
async fn drive(
    rule: usize,
    base: String,
    state: crate::AppState,
    plan: SickPlan,
    client: reqwest::Client,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop_at: Instant,
) {
    let mut rng = Rng(7);
    let gate = Arc::new(Semaphore::new(256));
    let mut tick = ticks(plan.rate);
    let mut inflight = Vec::new();
    loop {
        tick.tick().await;
        if Instant::now() >= stop_at {
            break;
        }
        let url = format!("{base}/users/{}", rng.range(1, plan.warm));
        let open = state.breaker.status() != Status::Closed;
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            continue;
        };
        let (client, samples) = (client.clone(), samples.clone());
        inflight.push(tokio::spawn(async move {
            let _permit = permit;
            let t0 = Instant::now();
            let (status, stale) = get(&client, &url).await;
            let sample = Sample {
                rule,
                took: t0.elapsed(),
                status,
                stale,
                open,
            };
            samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(sample);
        }));
    }
    for t in inflight {
        let _ = t.await;
    }
}

fn summarise<'a>(
    name: &str,
    plan: &SickPlan,
    samples: impl Iterator<Item = &'a Sample>,
    (db_calls, db_failures, times_opened): (u64, u64, u64),
) -> SickRow {
    let samples: Vec<&Sample> = samples.collect();
    let n = samples.len();
    let pct = |k: usize| {
        if n == 0 {
            0.0
        } else {
            100.0 * k as f64 / n as f64
        }
    };
    let mut took: Vec<Duration> = samples.iter().map(|s| s.took).collect();
    took.sort();
    let at = |q: f64| {
        // Nearest rank, as the outage experiment's summary.
        let rank = ((q * took.len() as f64).ceil() as usize).clamp(1, took.len().max(1));
        took.get(rank - 1).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let mean_ms = if n == 0 {
        0.0
    } else {
        took.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / n as f64
    };
    SickRow {
        rule: name.to_string(),
        requests: n,
        ok_pct: pct(samples
            .iter()
            .filter(|s| (200..300).contains(&s.status))
            .count()),
        stale_pct: pct(samples.iter().filter(|s| s.stale).count()),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        mean_ms,
        waited: took.iter().filter(|t| **t >= plan.db_timeout).count(),
        db_calls,
        db_failures,
        times_opened,
        sent_open_pct: pct(samples.iter().filter(|s| s.open).count()),
    }
}

impl SickResults {
    /// The table the bench prints and the chapter includes.
    pub fn table_md(&self) -> String {
        let mut t = String::from(
            "| breaker | requests | answered | stale | p50 | p99 | mean | waited the timeout | database calls | failed | opened | sent while open |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.rows {
            let failed_pct = if r.db_calls == 0 {
                0.0
            } else {
                100.0 * r.db_failures as f64 / r.db_calls as f64
            };
            t.push_str(&format!(
                "| {} | {} | {:.1}% | {:.1}% | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} | {:.0}% | {} | {:.1}% |\n",
                r.rule,
                r.requests,
                r.ok_pct,
                r.stale_pct,
                r.p50_ms,
                r.p99_ms,
                r.mean_ms,
                r.waited,
                r.db_calls,
                failed_pct,
                r.times_opened,
                r.sent_open_pct,
            ));
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_call_fails_and_the_rules_are_the_service_defaults() {
        for p in [SickPlan::short(), SickPlan::long()] {
            assert!(p.sick_delay > p.db_timeout, "{p:?}");
            assert!(p.db_timeout > p.latency * 5, "{p:?}");
            let [none, k, both] = p.rules();
            assert_eq!(none.1.rate, None);
            assert_eq!((k.1.failures, k.1.rate), (5, None));
            assert_eq!(both.1.rate, Some(FailureRate::DEFAULT));
        }
    }

    #[test]
    fn the_summary_counts_what_waited_and_what_was_sent_open() {
        let plan = SickPlan::short();
        let s = |ms, stale, open| Sample {
            rule: 0,
            took: Duration::from_millis(ms),
            status: 200,
            stale,
            open,
        };
        let samples = [
            s(2, true, true),
            s(260, true, false),
            s(25, false, false),
            s(251, true, false),
        ];
        let row = summarise("x", &plan, samples.iter(), (3, 2, 1));
        assert_eq!(row.requests, 4);
        assert_eq!(row.waited, 2, "two took at least the 250 ms timeout");
        assert!((row.stale_pct - 75.0).abs() < 1e-9);
        assert!((row.sent_open_pct - 25.0).abs() < 1e-9);
        assert!((row.p50_ms - 25.0).abs() < 1e-9, "nearest rank");
        assert_eq!((row.db_calls, row.db_failures, row.times_opened), (3, 2, 1));
    }
}
