//! What the experiments share: PostgreSQL with a schema of their own, a
//! Redis key prefix of their own, and instances of the service on them,
//! called in process (no sockets: the windows measured are the caches',
//! not loopback HTTP's).

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use lab::isolate::{PgSchema, RedisPrefix, schema_pool};
use tower::ServiceExt;

use crate::hooks::Hooks;
use crate::{Instance, Settings};

/// Users seeded: one per trial at most, so no trial inherits another's.
pub const USERS: i64 = 2_000;

/// The servers the experiments run on, and their namespaces.
#[derive(Debug)]
pub struct Fixture {
    pub schema: PgSchema,
    pub prefix: RedisPrefix,
    pub pg_url: String,
    pub redis_url: String,
    _pg: lab::Server,
    _redis: lab::Server,
}

impl Fixture {
    pub async fn new() -> anyhow::Result<Fixture> {
        let pg = lab::discover(lab::Kind::Postgres).await?;
        let redis = lab::discover(lab::Kind::Redis).await?;
        let schema = PgSchema::create(pg.url()).await?;
        lab::seed::ensure_users_pg(schema.pool(), USERS).await?;
        let prefix = RedisPrefix::new(redis.url());
        Ok(Fixture {
            schema,
            prefix,
            pg_url: pg.url().to_string(),
            redis_url: redis.url().to_string(),
            _pg: pg,
            _redis: redis,
        })
    }

    /// The tests' settings under this fixture's namespaces.
    pub fn settings(&self) -> Settings {
        Settings::for_tests(self.prefix.prefix(), self.schema.name())
    }

    /// An instance with a pool of its own.
    pub async fn instance(&self, settings: Settings, hooks: Hooks) -> anyhow::Result<Instance> {
        self.instance_on(&self.redis_url, settings, hooks).await
    }

    /// The same on another Redis (a private one the experiment restarts).
    pub async fn instance_on(
        &self,
        redis_url: &str,
        settings: Settings,
        hooks: Hooks,
    ) -> anyhow::Result<Instance> {
        let pool = schema_pool(&self.pg_url, self.schema.name(), 5).await?;
        Instance::start(pool, redis_url, settings, hooks).await
    }
}

/// `GET /users/{id}` through the router: the status, `X-Cache`, the name.
pub async fn get(instance: &Instance, id: i64) -> (u16, String, String) {
    let req = Request::get(format!("/users/{id}"))
        .body(Body::empty())
        .expect("a valid request");
    answer(instance, req).await
}

/// `PUT /users/{id}` with a new name.
pub async fn put(instance: &Instance, id: i64, name: &str) -> (u16, String, String) {
    let body = serde_json::json!({ "name": name, "email": format!("user{id}@example.com") });
    let req = Request::put(format!("/users/{id}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("a valid request");
    answer(instance, req).await
}

async fn answer(instance: &Instance, req: Request<Body>) -> (u16, String, String) {
    let resp = match instance.router().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status().as_u16();
    let cache = resp
        .headers()
        .get("x-cache")
        .or_else(|| resp.headers().get("x-invalidation"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let name = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["name"].as_str().map(str::to_string))
        .unwrap_or_default();
    (status, cache, name)
}

/// `{v, json}` of user `id`'s entry in Redis (`json` as the name in it).
pub async fn stored(
    redis: &mut redis::aio::MultiplexedConnection,
    prefix: &RedisPrefix,
    id: i64,
) -> anyhow::Result<(Option<i64>, Option<String>)> {
    let (v, json): (Option<i64>, Option<String>) = redis::cmd("HMGET")
        .arg(prefix.key(&format!("user:{id}")))
        .arg("v")
        .arg("json")
        .query_async(redis)
        .await?;
    let name = json.and_then(|j| {
        serde_json::from_str::<serde_json::Value>(&j)
            .ok()
            .and_then(|v| v["name"].as_str().map(str::to_string))
    });
    Ok((v, name))
}

/// A spread of delays over `[0, span)`: the fractional parts of multiples
/// of the golden ratio, evenly spread with no random number generator (so
/// a rerun samples the same points).
pub fn spread(i: usize, span: Duration) -> Duration {
    let frac = (i as f64 * 0.618_033_988_75).fract();
    span.mul_f64(frac)
}
