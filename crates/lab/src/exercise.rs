//! What the exercises' tests share (the lessons' tests use [`crate::testing`]): a private Redis that a test can stop,
//! pause and read every key of, so it checks what an attendee's handler did
//! to Redis, and never touches the shared one.
//!
//! Why private: a wrong answer may write outside its key prefix, and on a
//! shared Redis that key is another attendee's (`user:42` is everybody's
//! user 42). Why a pause: a *stopped* Redis refuses connections at once, so
//! only a *paused* one (`CLIENT PAUSE`) shows whether a handler bounds its
//! Redis calls with a timeout.

use std::time::Duration;

use crate::Kind;
use crate::spawn::{Instance, SpawnOptions};
use crate::testing::call;
use axum::Router;
use axum::http::StatusCode;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};

/// The key prefix the tests give the handler: an attendee's namespace on a
/// shared Redis.
pub const PREFIX: &str = "attendee-7:";

/// A private Redis, stopped and removed when dropped.
#[derive(Debug)]
pub struct PrivateRedis {
    instance: Instance,
}

impl PrivateRedis {
    /// Spawns one; without the Redis binaries the test fails, naming the
    /// package to install (an exercise must never pass without running).
    pub async fn start(test: &str) -> PrivateRedis {
        crate::spawn::require_spawn(Kind::Redis, test);
        let instance = Instance::start_new(Kind::Redis, SpawnOptions::plain())
            .await
            .unwrap_or_else(|e| {
                panic!("the tests could not start a private Redis (not your code): {e:#}")
            });
        PrivateRedis { instance }
    }

    pub fn url(&self) -> String {
        self.instance.url()
    }

    /// A connection manager with no response timeout of its own. The
    /// lessons' manager gives up after `redis_timeout` by itself, which
    /// would hide a handler that forgot its own timeout; in production that
    /// safety net is not always there (redis-rs's default is 500 ms, and
    /// other clients have none), so the tests check the handler's.
    pub fn manager_without_timeout(&self) -> ConnectionManager {
        let client = redis::Client::open(self.url()).expect("a valid Redis URL");
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_number_of_retries(1);
        ConnectionManager::new_lazy_with_config(client, config).expect("a lazy connection manager")
    }

    /// A plain connection, for the test to look at keys directly.
    pub async fn conn(&self) -> MultiplexedConnection {
        crate::testing::redis_conn(&self.url())
            .await
            .expect("a connection to the private Redis")
    }

    /// Every command from every client waits for `how_long` (`CLIENT PAUSE
    /// ALL`): a Redis that is up but does not answer. Long, so a handler
    /// without a timeout is still stuck when the test gives up on it; the
    /// server is dropped (SIGTERM works while paused) at the end of the test.
    pub async fn pause(&self, how_long: Duration) {
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(how_long.as_millis() as u64)
            .arg("ALL")
            .query_async(&mut self.conn().await)
            .await
            .expect("CLIENT PAUSE");
    }

    /// Stops it: connections are refused, as in an outage.
    pub async fn stop(&mut self) {
        self.instance.stop().await.expect("stop the private Redis");
    }

    /// A key's value, if it exists.
    pub async fn get(&self, key: &str) -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn().await)
            .await
            .expect("GET")
    }

    /// A key's TTL in seconds: -2 when it does not exist, -1 when it never
    /// expires.
    pub async fn ttl(&self, key: &str) -> i64 {
        redis::cmd("TTL")
            .arg(key)
            .query_async(&mut self.conn().await)
            .await
            .expect("TTL")
    }

    /// Every key. A private Redis holds a handful, so `KEYS` is fine here
    /// (on a shared server it would block everybody: use `SCAN` there).
    pub async fn keys(&self) -> Vec<String> {
        redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut self.conn().await)
            .await
            .expect("KEYS")
    }

    /// Fails the test when the handler wrote a key outside [`PREFIX`].
    pub async fn assert_every_key_is_under_the_prefix(&self) {
        let outside: Vec<String> = self
            .keys()
            .await
            .into_iter()
            .filter(|k| !k.starts_with(PREFIX))
            .collect();
        assert!(
            outside.is_empty(),
            "your handler wrote {outside:?}, outside this service's key prefix {PREFIX:?}. On a \
             shared Redis such a key belongs to everybody: another attendee's first read would \
             find your copy. Build every key with `state.settings.key(id)`, which adds the prefix."
        );
    }
}

/// Checks that `GET /users/9` through `app` is answered from the
/// database while Redis is paused. The app first reads a user while Redis
/// answers, so its connection is up, as a running service's would be; then
/// Redis is paused for two minutes, and the read must come back within
/// 10 s: 25 times the two 200 ms Redis calls a miss makes, which two busy
/// cores cannot flip.
pub async fn assert_reads_survive_a_paused_redis(redis: &PrivateRedis, app: Router) {
    let warm = call(app.clone(), "GET", "/users/1", None).await;
    assert_eq!(
        warm.status,
        StatusCode::OK,
        "GET /users/1 should answer 200 while Redis is up: {}",
        warm.body
    );
    redis.pause(Duration::from_secs(120)).await;
    let r = within(
        Duration::from_secs(10),
        "with Redis paused, GET /users/9 never answered: wrap each Redis call (the GET and the \
         SET) in `tokio::time::timeout(state.settings.redis_timeout, ...)`",
        call(app, "GET", "/users/9", None),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "with Redis paused, GET /users/9 should answer 200 from the database, not {} ({}): \
         a Redis timeout is a miss",
        r.status,
        r.body
    );
}

/// Creates user `id` in the tests' `users` table, as another service
/// would: for the checks that a 404 was not cached.
pub async fn create_user(pool: &sqlx::PgPool, id: i64) {
    sqlx::query(
        "INSERT INTO users (id, name, email, created_at) VALUES ($1, 'New User', 'new@example.org', now())",
    )
    .bind(id)
    .execute(pool)
    .await
    .unwrap_or_else(|e| panic!("the tests could not insert user {id} (not your code): {e}"));
}

/// Awaits `request`, failing the test with `stuck` if it takes longer than
/// `limit`. The limits are generous multiples of the handler's own timeouts,
/// so two busy cores cannot flip the verdict; a handler without a timeout
/// waits for the whole pause, far longer.
pub async fn within<T>(limit: Duration, stuck: &str, request: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, request).await {
        Ok(reply) => reply,
        Err(_) => panic!("{stuck} (the request was still waiting after {limit:?})"),
    }
}
