//! What lesson 8's tests share: a schema and a key prefix of the test's
//! own on the shared servers (or private ones with `LAB_BACKEND=local`),
//! and instances of the service on them, each optionally behind a fault
//! proxy so that a test can cut its connections.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use lab::faults::{FaultProxy, through};
use lab::isolate::{PgSchema, RedisPrefix, schema_pool};
use lab::testing::Reply;
use lesson_08_layers::hooks::Hooks;
use lesson_08_layers::{Instance, Settings};

/// The users each test's schema is seeded with.
pub const USERS: i64 = 100;

#[derive(Debug)]
pub struct Lab {
    // Dropped in order: the schema and keys go while the servers still run.
    pub schema: PgSchema,
    pub prefix: RedisPrefix,
    pub pg_url: String,
    pub redis_url: String,
    _pg: lab::Server,
    _redis: Option<lab::Server>,
}

impl Lab {
    pub async fn new() -> Lab {
        let pg = lab::discover(lab::Kind::Postgres)
            .await
            .expect("PostgreSQL");
        let redis = lab::discover(lab::Kind::Redis).await.expect("Redis");
        let url = redis.url().to_string();
        Lab::on(pg, &url, Some(redis)).await
    }

    /// The same over a Redis of the test's choosing (a private one it stops).
    pub async fn with_redis_url(redis_url: &str) -> Lab {
        let pg = lab::discover(lab::Kind::Postgres)
            .await
            .expect("PostgreSQL");
        Lab::on(pg, redis_url, None).await
    }

    async fn on(pg: lab::Server, redis_url: &str, redis: Option<lab::Server>) -> Lab {
        let schema = PgSchema::create(pg.url()).await.expect("a test schema");
        lab::seed::ensure_users_pg(schema.pool(), USERS)
            .await
            .expect("seeded users");
        let prefix = RedisPrefix::new(redis_url);
        Lab {
            schema,
            prefix,
            pg_url: pg.url().to_string(),
            redis_url: redis_url.to_string(),
            _pg: pg,
            _redis: redis,
        }
    }

    pub fn settings(&self) -> Settings {
        Settings::for_tests(self.prefix.prefix(), self.schema.name())
    }

    /// An instance with its own pool, straight to the servers.
    pub async fn instance(&self, settings: Settings, hooks: Hooks) -> Instance {
        let pool = schema_pool(&self.pg_url, self.schema.name(), 5)
            .await
            .expect("a pool");
        Instance::start(pool, &self.redis_url, settings, hooks)
            .await
            .expect("an instance")
    }

    /// An instance whose every connection (PostgreSQL and Redis) goes
    /// through a fault proxy of its own.
    pub async fn proxied_instance(&self, settings: Settings) -> (Instance, Proxies) {
        let pg = FaultProxy::start(lab::faults::upstream_of(&self.pg_url).expect("pg addr"))
            .await
            .expect("a proxy");
        let redis = FaultProxy::start(lab::faults::upstream_of(&self.redis_url).expect("addr"))
            .await
            .expect("a proxy");
        let pool = schema_pool(
            &through(&self.pg_url, pg.addr()).expect("url"),
            self.schema.name(),
            5,
        )
        .await
        .expect("a pool");
        let redis_url = through(&self.redis_url, redis.addr()).expect("url");
        let instance = Instance::start(pool, &redis_url, settings, Hooks::default())
            .await
            .expect("an instance");
        (instance, Proxies { pg, redis })
    }

    /// A plain connection, to look at Redis directly.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        lab::testing::redis_conn(&self.redis_url)
            .await
            .expect("Redis")
    }

    /// `{v, json}` of user `id`'s entry, as Redis holds it now.
    pub async fn stored(&self, id: i64) -> (Option<i64>, Option<String>) {
        let mut c = self.redis().await;
        redis::cmd("HMGET")
            .arg(self.prefix.key(&format!("user:{id}")))
            .arg("v")
            .arg("json")
            .query_async(&mut c)
            .await
            .expect("HMGET")
    }
}

#[derive(Debug)]
pub struct Proxies {
    pub pg: FaultProxy,
    pub redis: FaultProxy,
}

pub async fn get(instance: &Instance, id: i64) -> Reply {
    lab::testing::call(instance.router(), "GET", &format!("/users/{id}"), None).await
}

pub async fn put(instance: &Instance, id: i64, name: &str) -> Reply {
    let body = serde_json::json!({ "name": name, "email": format!("u{id}@example.com") });
    lab::testing::call(
        instance.router(),
        "PUT",
        &format!("/users/{id}"),
        Some(&body.to_string()),
    )
    .await
}

/// The name in a reply's body.
pub fn name(reply: &Reply) -> String {
    reply.json()["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Polls `check` every 10 ms until it holds, or fails after `limit` with
/// `what`. A deadline for a condition, never a measurement.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
