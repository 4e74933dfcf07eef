//! The private servers, the proxies in front of them, and the services
//! under test: lesson 1, lesson 2, and lesson 3 in each of its modes, each
//! served in-process on loopback by its own `router(state)`.
//!
//! Each service reaches PostgreSQL and Redis only through a fault proxy, so
//! a phase can slow, blackhole or reset its connections without touching
//! the servers. The harness itself (seeding, stopping, pausing) talks to
//! the servers directly.

use std::time::Duration;

use anyhow::Context;
use lab::Kind;
use lab::faults::{FaultProxy, through};
use lab::spawn::{Instance, SpawnOptions};
use lesson_03_stale_fallback::Mode;

use crate::plan::Plan;

/// The private PostgreSQL and Redis, and a proxy in front of each.
#[derive(Debug)]
pub struct Servers {
    pub pg: Instance,
    pub redis: Instance,
    pub pg_proxy: FaultProxy,
    pub redis_proxy: FaultProxy,
}

impl Servers {
    /// Spawns both servers, seeds `users`, and starts the proxies.
    pub async fn start(plan: &Plan) -> anyhow::Result<Servers> {
        // Five services with a pool of ten each, and the harness's own.
        let pg = Instance::start_new(
            Kind::Postgres,
            SpawnOptions::with_settings([("max_connections", "200")]),
        )
        .await
        .context("chaos needs a private PostgreSQL (the local initdb and postgres, or Docker)")?;
        let redis = Instance::start_new(Kind::Redis, SpawnOptions::plain())
            .await
            .context("chaos needs a private Redis (redis-server on PATH)")?;
        let pool = sqlx::PgPool::connect(&pg.url()).await?;
        lab::seed::ensure_users_pg(&pool, plan.ids).await?;
        pool.close().await;
        let pg_proxy = FaultProxy::start(addr_of(pg.port())).await?;
        let redis_proxy = FaultProxy::start(addr_of(redis.port())).await?;
        Ok(Servers {
            pg,
            redis,
            pg_proxy,
            redis_proxy,
        })
    }

    /// PostgreSQL's URL through its proxy: what the services connect to.
    pub fn pg_url(&self) -> anyhow::Result<String> {
        through(&self.pg.url(), self.pg_proxy.addr())
    }

    /// Redis's URL through its proxy.
    pub fn redis_url(&self) -> anyhow::Result<String> {
        through(&self.redis.url(), self.redis_proxy.addr())
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        crate::inject::resume_all(self);
    }
}

fn addr_of(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// One service being served.
#[derive(Debug)]
pub struct Target {
    pub name: &'static str,
    pub base: String,
    /// Whether it caches (and so must be warmed).
    pub caches: bool,
    _server: lab::http::Running,
}

/// The services under test, in the table's order.
pub const SERVICES: [&str; 5] = [
    "lesson 1: no cache",
    "lesson 2: cache-aside",
    "lesson 3: fallback",
    "lesson 3: swr",
    "lesson 3: cache-first",
];

/// Serves every service on a free loopback port.
pub async fn serve(plan: &Plan, servers: &Servers) -> anyhow::Result<Vec<Target>> {
    let (pg_url, redis_url) = (servers.pg_url()?, servers.redis_url()?);
    // Each service's pool: the lessons' default size.
    const POOL: u32 = 10;
    let pool = || lab::isolate::schema_pool(&pg_url, "public", POOL);
    let mut routers = Vec::new();

    routers.push(lesson_01_naive::router(lesson_01_naive::AppState {
        pool: pool().await?,
        latency: plan.latency,
        db_timeout: plan.db_timeout,
    }));

    let l2 = lesson_02_cache_aside::Settings {
        ttl: plan.soft_ttl,
        redis_timeout: plan.redis_timeout,
        latency: plan.latency,
        db_timeout: plan.db_timeout,
        ..lesson_02_cache_aside::Settings::for_tests("l2:")
    };
    routers.push(lesson_02_cache_aside::router(lesson_02_cache_aside::state(
        pool().await?,
        &redis_url,
        l2,
    )?));

    for (mode, prefix) in [
        (Mode::Fallback, "fb:"),
        (Mode::Swr, "swr:"),
        (Mode::CacheFirst, "cf:"),
    ] {
        let settings = lesson_03_stale_fallback::Settings {
            soft_ttl: plan.soft_ttl,
            hard_ttl: Duration::from_secs(3600),
            redis_timeout: plan.redis_timeout,
            db_timeout: plan.db_timeout,
            latency: plan.latency,
            // The service's default (`--max-background-loads`): twice the pool.
            max_background_loads: 2 * POOL as usize,
            ..lesson_03_stale_fallback::Settings::for_tests(prefix, mode)
        };
        let state = lesson_03_stale_fallback::state(pool().await?, &redis_url, settings)?;
        routers.push(lesson_03_stale_fallback::router(state));
    }

    let mut targets = Vec::new();
    for (i, router) in routers.into_iter().enumerate() {
        let server = lab::http::spawn_server(router, 0).await?;
        targets.push(Target {
            name: SERVICES[i],
            base: server.base_url(),
            caches: i > 0,
            _server: server,
        });
    }
    Ok(targets)
}

/// GETs ids `1..=ids` from every caching service until each answers 200,
/// with lesson 3's experiment's warm-up.
pub async fn warm(client: &reqwest::Client, targets: &[Target], ids: i64) -> anyhow::Result<()> {
    let caching: Vec<String> = targets
        .iter()
        .filter(|t| t.caches)
        .map(|t| t.base.clone())
        .collect();
    lesson_03_stale_fallback::experiment::warm(client, &caching, ids).await
}
