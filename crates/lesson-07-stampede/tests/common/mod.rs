//! What the tests share: the servers, instances on them, requests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use lab::isolate::RedisPrefix;
use lab::testing::{CountingPostgres, Reply, SharedServers};
use lesson_07_stampede::db::Queries;
use lesson_07_stampede::{Instance, Settings, Strategy};

/// The shared PostgreSQL (a schema of this test's) and Redis (a prefix).
pub struct Lab {
    pub servers: SharedServers,
}

impl Lab {
    pub async fn new() -> Lab {
        let servers = SharedServers::new(100)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        Lab { servers }
    }

    pub fn settings(&self, strategy: Strategy) -> Settings {
        Settings::for_tests(strategy, self.servers.prefix.prefix())
    }

    pub fn instance(&self, settings: Settings) -> Instance {
        Instance::start(
            self.servers.schema.pool().clone(),
            &self.servers.redis_url,
            settings,
            Arc::new(Queries::new()),
        )
        .unwrap_or_else(|e| panic!("{e:#}"))
    }

    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        lab::testing::redis_conn(&self.servers.redis_url)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    pub fn key(&self, id: i64) -> String {
        lesson_07_stampede::store::key(self.servers.prefix.prefix(), id)
    }
}

/// A private PostgreSQL that counts its statements, and a Redis prefix:
/// for the counts that must be the database's own.
pub struct Counting {
    pub pg: CountingPostgres,
    pub prefix: RedisPrefix,
    pub redis_url: String,
    _redis: lab::Server,
}

impl Counting {
    /// `None` (the test skips, and says so) where no private PostgreSQL
    /// can be spawned.
    pub async fn new(test: &str) -> Option<Counting> {
        if !lab::spawn::can_spawn(lab::Kind::Postgres, test) {
            return None;
        }
        let pg = CountingPostgres::start(100)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let redis = lab::discover(lab::Kind::Redis)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        Some(Counting {
            pg,
            prefix: RedisPrefix::new(redis.url()),
            redis_url: redis.url().to_string(),
            _redis: redis,
        })
    }

    /// `strategy`'s test settings, with each load spending `latency` in
    /// the database (so that concurrent misses really overlap), under a
    /// sub-prefix of its own.
    pub fn settings(&self, strategy: Strategy, latency: Duration) -> Settings {
        let mut s = Settings::for_tests(
            strategy,
            &format!("{}{}:", self.prefix.prefix(), strategy.name()),
        );
        s.latency = latency;
        s.db_timeout = Duration::from_secs(10);
        s
    }

    pub async fn instance(&self, settings: Settings) -> Instance {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&self.pg.instance.url())
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        Instance::start(pool, &self.redis_url, settings, Arc::new(Queries::new()))
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The loads PostgreSQL ran since the last reset (`pg_sleep` is in
    /// every load's SQL when there is latency).
    pub async fn loads(&self) -> i64 {
        self.pg
            .calls("%pg_sleep%")
            .await
            .unwrap_or_else(|e| panic!("{e:#}"))
    }
}

pub async fn get(instance: &Instance, id: i64) -> Reply {
    lab::testing::call(instance.router(), "GET", &format!("/users/{id}"), None).await
}

/// `n` concurrent `GET /users/{id}`, all started before any is answered.
pub async fn herd(instance: &Instance, id: i64, n: usize) -> Vec<Reply> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (instance, barrier) = (instance.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                get(&instance, id).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.expect("no panic"));
    }
    replies
}

/// How many of `replies` had this status and `X-Cache`.
pub fn count(replies: &[Reply], status: u16, cache: &str) -> usize {
    replies
        .iter()
        .filter(|r| r.status == status && r.header("x-cache") == cache)
        .count()
}

/// Waits (bounded) until `check` holds: for a state the test cannot
/// cause directly (a TTL running out), never for a timing it asserts.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let t0 = std::time::Instant::now();
    while !check().await {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
