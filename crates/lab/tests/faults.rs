//! The fault proxy against the real shared Redis (`PING`), PostgreSQL and
//! MariaDB (`SELECT 1`), with their real clients: each fault gives the client what
//! its documentation promises (a delay, an error, or silence).
//!
//! Nothing here bounds a duration from above: latency is checked as "at
//! least the added delay", which scheduling noise can only lengthen; errors
//! are checked as "an error arrived before a generous timeout", and a
//! blackhole as "the client's own short timeout fired".

use std::time::{Duration, Instant};

use lab::Kind;
use lab::faults::{Fault, FaultProxy, through, upstream_of};
use sqlx::Connection;

/// Long enough that an error which should come at once never misses it on a
/// loaded machine; short enough that a hang fails the test quickly.
const PATIENCE: Duration = Duration::from_secs(5);
/// The client's timeout in a blackhole: what a careful service would set.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(400);

/// What came of a call: an answer, an error, or nothing before the timeout.
#[derive(Debug, PartialEq)]
enum Outcome {
    Answer,
    Error(String),
    TimedOut,
}

async fn within<T, E: std::fmt::Display>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Outcome {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(_)) => Outcome::Answer,
        Ok(Err(e)) => Outcome::Error(e.to_string()),
        Err(_) => Outcome::TimedOut,
    }
}

fn is_error(o: &Outcome) -> bool {
    matches!(o, Outcome::Error(_))
}

/// A proxy in front of the shared `kind` server, and the URL through it.
async fn proxy_for(kind: Kind) -> (lab::Server, FaultProxy, String) {
    let server = lab::discover(kind)
        .await
        .unwrap_or_else(|e| panic!("{kind}: {e:#}"));
    let upstream = upstream_of(server.url()).expect("the server's address");
    let proxy = FaultProxy::start(upstream).await.expect("the proxy starts");
    let url = through(server.url(), proxy.addr()).expect("a URL through the proxy");
    (server, proxy, url)
}

/// A proxy in front of the shared Redis and one in front of the shared
/// PostgreSQL, each with a connection established (and used) through it.
struct Rig {
    rproxy: FaultProxy,
    rurl: String,
    r: redis::aio::MultiplexedConnection,
    pproxy: FaultProxy,
    purl: String,
    p: sqlx::PgConnection,
    _servers: [lab::Server; 2],
}

async fn rig() -> Rig {
    let (rserver, rproxy, rurl) = proxy_for(Kind::Redis).await;
    let (pserver, pproxy, purl) = proxy_for(Kind::Postgres).await;
    let mut r = redis(&rurl).await.expect("Redis through the proxy");
    let mut p = sqlx::PgConnection::connect(&purl)
        .await
        .expect("PostgreSQL through the proxy");
    assert_eq!(ping(&mut r).await.expect("PING"), "PONG");
    assert_eq!(select_1(&mut p).await.expect("SELECT 1"), 1);
    Rig {
        rproxy,
        rurl,
        r,
        pproxy,
        purl,
        p,
        _servers: [rserver, pserver],
    }
}

impl Rig {
    fn set(&self, fault: Fault) {
        self.rproxy.set(fault);
        self.pproxy.set(fault);
    }
}

/// A Redis connection whose own timeouts are longer than the test's, so
/// what the test sees is the proxy's doing, not the client's default 500 ms.
async fn redis(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(PATIENCE))
        .set_response_timeout(Some(PATIENCE));
    redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

async fn ping(c: &mut redis::aio::MultiplexedConnection) -> redis::RedisResult<String> {
    redis::cmd("PING").query_async(c).await
}

/// A new connection and a `PING` on it.
async fn redis_new_ping(url: &str) -> redis::RedisResult<String> {
    ping(&mut redis(url).await?).await
}

async fn select_1(c: &mut sqlx::PgConnection) -> sqlx::Result<i32> {
    sqlx::query_scalar("SELECT 1").fetch_one(c).await
}

/// A new connection and a `SELECT 1` on it.
async fn pg_new_select(url: &str) -> sqlx::Result<i32> {
    let mut c = sqlx::PgConnection::connect(url).await?;
    select_1(&mut c).await
}

/// Waits (up to [`PATIENCE`]) for the proxy to count `n` connections: a
/// connection's end reaches the counter through the runtime, not at once.
async fn until_connections(proxy: &FaultProxy, n: usize) {
    let start = Instant::now();
    while proxy.connections() != n && start.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(proxy.connections(), n, "connections through the proxy");
}

#[tokio::test]
async fn latency_delays_every_round_trip_by_at_least_twice_the_delay() {
    let delay = Duration::from_millis(150);
    let mut t = rig().await;

    // On established connections: the request waits `delay` on its way
    // in, the reply `delay` on its way out.
    t.set(Fault::Latency(delay));
    let start = Instant::now();
    assert_eq!(ping(&mut t.r).await.expect("PING, slowly"), "PONG");
    let redis_took = start.elapsed();
    let start = Instant::now();
    assert_eq!(select_1(&mut t.p).await.expect("SELECT 1, slowly"), 1);
    let pg_took = start.elapsed();
    assert!(redis_took >= 2 * delay, "PING took {redis_took:?}");
    assert!(pg_took >= 2 * delay, "SELECT 1 took {pg_took:?}");

    // And on a new one, whose handshake is slowed as well.
    let start = Instant::now();
    assert_eq!(redis_new_ping(&t.rurl).await.expect("a new PING"), "PONG");
    assert!(start.elapsed() >= 2 * delay, "{:?}", start.elapsed());

    t.set(Fault::None);
    assert_eq!(ping(&mut t.r).await.expect("PING, cleared"), "PONG");
    // The new connection was dropped: only the first is still counted.
    until_connections(&t.rproxy, 1).await;
}

#[tokio::test]
async fn refuse_new_fails_new_connections_and_keeps_established_ones() {
    let mut t = rig().await;
    until_connections(&t.rproxy, 1).await;

    t.set(Fault::RefuseNew);
    // An error, and at once: not a hang.
    let new_redis = within(PATIENCE, redis_new_ping(&t.rurl)).await;
    assert!(
        is_error(&new_redis),
        "a new Redis connection: {new_redis:?}"
    );
    let new_pg = within(PATIENCE, pg_new_select(&t.purl)).await;
    assert!(is_error(&new_pg), "a new PostgreSQL connection: {new_pg:?}");
    // The established connections do not notice.
    assert_eq!(ping(&mut t.r).await.expect("established PING"), "PONG");
    assert_eq!(select_1(&mut t.p).await.expect("established SELECT 1"), 1);
    assert_eq!(t.rproxy.connections(), 1, "the refused one is not counted");

    t.set(Fault::None);
    assert_eq!(redis_new_ping(&t.rurl).await.expect("a new PING"), "PONG");
    assert_eq!(pg_new_select(&t.purl).await.expect("a new SELECT 1"), 1);
}

#[tokio::test]
async fn reset_all_breaks_established_connections_with_an_error_not_a_hang() {
    let mut t = rig().await;
    until_connections(&t.rproxy, 1).await;
    until_connections(&t.pproxy, 1).await;

    t.rproxy.reset_all();
    t.pproxy.reset_all();
    until_connections(&t.rproxy, 0).await;
    until_connections(&t.pproxy, 0).await;
    let redis_call = within(PATIENCE, ping(&mut t.r)).await;
    assert!(is_error(&redis_call), "PING after a reset: {redis_call:?}");
    let pg_call = within(PATIENCE, select_1(&mut t.p)).await;
    assert!(is_error(&pg_call), "SELECT 1 after a reset: {pg_call:?}");

    // Nothing else is broken: a new connection works.
    assert_eq!(redis_new_ping(&t.rurl).await.expect("a new PING"), "PONG");
    assert_eq!(pg_new_select(&t.purl).await.expect("a new SELECT 1"), 1);
}

#[tokio::test]
async fn a_blackhole_is_silence_that_only_a_timeout_ends() {
    let mut t = rig().await;

    t.set(Fault::Blackhole);
    // No answer and no error, on established connections and new ones:
    // only the client's timeout ends the wait.
    let timed_out = Outcome::TimedOut;
    assert_eq!(within(CLIENT_TIMEOUT, ping(&mut t.r)).await, timed_out);
    assert_eq!(within(CLIENT_TIMEOUT, select_1(&mut t.p)).await, timed_out);
    let new_redis = within(CLIENT_TIMEOUT, redis_new_ping(&t.rurl)).await;
    assert_eq!(new_redis, timed_out);
    let new_pg = within(CLIENT_TIMEOUT, pg_new_select(&t.purl)).await;
    assert_eq!(new_pg, timed_out);
    // The servers never heard of the new ones: a client retrying in a loop
    // does not use up their connection slots.
    assert_eq!(t.rproxy.connections(), 1, "Redis connections");
    assert_eq!(t.pproxy.connections(), 1, "PostgreSQL connections");

    // Cleared, a new connection is served. (The established ones had a
    // call cut off half way: a careful client discards them.)
    t.set(Fault::None);
    let new_redis = within(PATIENCE, redis_new_ping(&t.rurl)).await;
    assert_eq!(new_redis, Outcome::Answer);
    let new_pg = within(PATIENCE, pg_new_select(&t.purl)).await;
    assert_eq!(new_pg, Outcome::Answer);
}

#[tokio::test]
async fn dropping_the_proxy_closes_every_connection_and_the_port() {
    let Rig {
        rproxy,
        mut r,
        pproxy,
        mut p,
        _servers,
        ..
    } = rig().await;
    let addr = rproxy.addr();

    drop(rproxy);
    drop(pproxy);
    let redis_call = within(PATIENCE, ping(&mut r)).await;
    assert!(is_error(&redis_call), "PING after drop: {redis_call:?}");
    let pg_call = within(PATIENCE, select_1(&mut p)).await;
    assert!(is_error(&pg_call), "SELECT 1 after drop: {pg_call:?}");

    // The listener closes on the runtime, shortly after the drop.
    let start = Instant::now();
    let refused = loop {
        match tokio::net::TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break true,
            _ if start.elapsed() > PATIENCE => break false,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    assert!(refused, "{addr} still accepts connections after the drop");
}

/// MariaDB's protocol starts with the server speaking first: it works
/// through the proxy too, and a reset reaches its client as an error.
#[tokio::test]
async fn mariadb_works_through_the_proxy_and_sees_a_reset_as_an_error() {
    let (_server, proxy, url) = proxy_for(Kind::MySql).await;
    let mut c = sqlx::MySqlConnection::connect(&url)
        .await
        .expect("MariaDB through the proxy");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut c)
        .await
        .expect("SELECT 1");
    assert_eq!(one, 1);
    until_connections(&proxy, 1).await;
    proxy.reset_all();
    let after = within(
        PATIENCE,
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&mut c),
    )
    .await;
    assert!(is_error(&after), "SELECT 1 after a reset: {after:?}");
}
