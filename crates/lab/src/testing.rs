//! Helpers for the lessons' tests: a request through a router, no socket.
//!
//! `tower::ServiceExt::oneshot` drives the router directly, so a test
//! exercises routing, extractors, handlers and error mapping exactly as a
//! real request would, against the real database behind the state.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// A header's value, or "" when it is missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body as JSON; a body that is not JSON fails the test, showing it.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {:?}", self.body))
    }
}

/// Sends `method uri`, with a JSON body when one is given.
pub async fn call(router: Router, method: &str, uri: &str, json: Option<&str>) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if json.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(json.map(|j| Body::from(j.to_string())).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{method} {uri} is not a valid request: {e}"));
    send_request(router, req).await
}

/// Sends `method uri` with these request headers and an empty body: for
/// what a client says about itself (`If-None-Match`, `X-User-Id`, …).
pub async fn call_with_headers(
    router: Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("{method} {uri} {headers:?} is not a valid request: {e}"));
    send_request(router, req).await
}

/// Drives one request through the router and reads the whole answer.
async fn send_request(router: Router, req: Request<Body>) -> Reply {
    let resp = match router.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Sends `method uri` with an empty body; returns the status and body text.
pub async fn send(router: Router, method: &str, uri: &str) -> (StatusCode, String) {
    let r = call(router, method, uri, None).await;
    (r.status, r.body)
}

/// `GET uri`, with the body parsed as JSON; a body that is not JSON fails the
/// test with the body in the message.
pub async fn get_json(router: Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let r = call(router, "GET", uri, None).await;
    (r.status, r.json())
}

/// A private PostgreSQL that counts its own statements (`pg_stat_statements`
/// loaded at start), seeded with users: for tests that prove how many
/// queries a request made by the database's own count, not the app's.
#[derive(Debug)]
pub struct CountingPostgres {
    pub instance: crate::spawn::Instance,
    pub pool: sqlx::PgPool,
}

impl CountingPostgres {
    pub async fn start(users: i64) -> anyhow::Result<CountingPostgres> {
        let opts = crate::spawn::SpawnOptions::with_settings([(
            "shared_preload_libraries",
            "pg_stat_statements",
        )]);
        let instance = crate::spawn::Instance::start_new(crate::Kind::Postgres, opts).await?;
        let pool = sqlx::PgPool::connect(&instance.url()).await?;
        sqlx::query("CREATE EXTENSION pg_stat_statements")
            .execute(&pool)
            .await?;
        crate::seed::ensure_users_pg(&pool, users).await?;
        let pg = CountingPostgres { instance, pool };
        pg.reset().await?;
        Ok(pg)
    }

    /// Forgets everything counted so far (the seeding, say).
    pub async fn reset(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT pg_stat_statements_reset()")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many times statements whose text is `LIKE pattern` ran.
    pub async fn calls(&self, pattern: &str) -> anyhow::Result<i64> {
        let (calls,): (i64,) = sqlx::query_as(
            "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE query LIKE $1",
        )
        .bind(pattern)
        .fetch_one(&self.pool)
        .await?;
        Ok(calls)
    }
}

/// The shared PostgreSQL and Redis (or private ones, with
/// `LAB_BACKEND=local`), with a schema of this test's own, seeded with
/// users, and a Redis key prefix of its own.
#[derive(Debug)]
pub struct SharedServers {
    // Fields drop in order: the schema and the keys are cleaned up while
    // the servers (private ones, with LAB_BACKEND=local) still run.
    pub schema: crate::isolate::PgSchema,
    pub prefix: crate::isolate::RedisPrefix,
    pub redis_url: String,
    _pg: crate::Server,
    _redis: crate::Server,
}

impl SharedServers {
    /// Finds the servers, creates the schema and seeds `users` users.
    pub async fn new(users: i64) -> anyhow::Result<SharedServers> {
        let pg = crate::discover(crate::Kind::Postgres).await?;
        let redis = crate::discover(crate::Kind::Redis).await?;
        let schema = crate::isolate::PgSchema::create(pg.url()).await?;
        crate::seed::ensure_users_pg(schema.pool(), users).await?;
        let prefix = crate::isolate::RedisPrefix::new(redis.url());
        Ok(SharedServers {
            schema,
            prefix,
            redis_url: redis.url().to_string(),
            _pg: pg,
            _redis: redis,
        })
    }
}

/// A plain Redis connection, for a test to look at keys directly.
pub async fn redis_conn(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    Ok(redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?)
}

/// How long a key lives that a test writes itself: longer than any test,
/// short enough that a run killed before its `RedisPrefix` dropped leaves
/// nothing behind for good.
pub const TEST_KEY_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// `SET key value EX 3600`: how a test writes a Redis key itself (a
/// fixture, or an entry it backdates). A plain `SET` has no TTL, and drops
/// the one the code under test gave the key: were the test killed, the key
/// would stay on the shared server forever.
pub async fn set_test_key(
    c: &mut redis::aio::MultiplexedConnection,
    key: &str,
    value: &str,
) -> anyhow::Result<()> {
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("EX")
        .arg(TEST_KEY_TTL.as_secs())
        .query_async(c)
        .await?;
    Ok(())
}
