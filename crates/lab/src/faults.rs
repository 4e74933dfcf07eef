//! A fault proxy: a TCP relay on 127.0.0.1 between a service and its server
//! (PostgreSQL, Redis, MariaDB) that makes the network misbehave on demand.
//!
//! Stopping or pausing a server (`lab::spawn`) shows what happens when the
//! *server* fails. Most outages are the *network* between the two: a slow
//! link, a firewall that drops packets, a load balancer that resets
//! connections. This proxy gives a test or an experiment those faults, one
//! [`Fault`] at a time, switched with [`FaultProxy::set`] while traffic flows:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use lab::faults::{Fault, FaultProxy, through};
//! let redis = "redis://127.0.0.1:6379";
//! let proxy = FaultProxy::start("127.0.0.1:6379".parse()?).await?;
//! let url = through(redis, proxy.addr())?; // give this to the service
//! proxy.set(Fault::Blackhole); // ... and watch what its users get
//! # Ok(()) }
//! ```
//!
//! The faults follow [Toxiproxy]'s semantics, the reference tool for this
//! (its `latency`, `timeout` and `reset_peer` toxics, and a disabled proxy).
//! We use a small relay of our own rather than Toxiproxy or its Rust port
//! `noxious`: both are servers driven over an HTTP API, one more process to
//! start and find; the last `noxious` release is from 2021. Here a test
//! owns its proxy as a value, and dropping it cleans everything up.
//!
//! What a client sees, from the friendliest fault to the worst:
//!
//! | fault | the client sees | caught by |
//! |---|---|---|
//! | [`Fault::RefuseNew`] | a new connection fails at once (reset) | any error handling |
//! | [`FaultProxy::reset_all`] | calls in progress fail at once (reset) | any error handling |
//! | [`Fault::Latency`] | every answer, later | only a deadline, if it is shorter |
//! | [`Fault::Blackhole`] | nothing: no answer, no error, ever | only a timeout |

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long the proxy waits for the upstream server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest chunk relayed at once; latency is added per chunk.
const CHUNK: usize = 16 * 1024;

/// What the proxy does to the traffic through it. Each applies to new *and*
/// established connections the moment it is [set](FaultProxy::set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A faithful relay.
    None,
    /// Every chunk of data waits this long before it is passed on, in each
    /// direction, so a request-reply round trip takes at least twice this
    /// longer. (Toxiproxy's `latency` toxic is usually set on one direction,
    /// adding it once.) The client sees slow answers and no error: only a
    /// deadline shorter than the delay turns it into a failure. This is the
    /// fault that tells whether the service's timeouts fit its latency
    /// budget, and whether a slow server piles up work behind it.
    Latency(Duration),
    /// New connections are accepted, then closed at once with a reset
    /// (`SO_LINGER` 0); established connections keep working. The client
    /// sees "connection reset by peer" on its first read or write: an
    /// immediate, explicit error, just as a closed port's "connection
    /// refused" is. This is the easy fault: a pool's reconnect fails fast,
    /// and a circuit breaker counts it at once. It matters because a
    /// service that only connects at start-up, or whose pool has no idle
    /// connections left, stops here while one with warm connections does not.
    RefuseNew,
    /// Nothing passes, in either direction, on new and established
    /// connections: new ones are accepted (the handshake succeeds) and then
    /// silent, and the server does not hear of them until the fault is
    /// cleared. No error, no reset, no close; the bytes wait, as they would
    /// behind a firewall that drops packets, and flow again when the fault
    /// is cleared (TCP would have retransmitted them). This is the worst
    /// fault: the client sees nothing at all, so only a timeout of its own
    /// ends the call. A call without one hangs forever, and holds its
    /// connection, its task and its caller. (Toxiproxy's `timeout` toxic with
    /// a timeout of 0.)
    Blackhole,
}

/// A running proxy. Dropping it stops listening and closes every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

/// What the proxy's handle, its accept loop and its connections share.
#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    fault: watch::Sender<Fault>,
    /// Bumped by [`FaultProxy::reset_all`]: each connection watches it from
    /// its start, so only the connections established before a reset see it.
    resets: watch::Sender<u64>,
    /// Set when the proxy is dropped.
    closed: watch::Sender<bool>,
    established: AtomicUsize,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on 127.0.0.1, on a free port, with no fault.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("Failed to bind the fault proxy to 127.0.0.1")?;
        let addr = listener
            .local_addr()
            .context("Failed to read the fault proxy's address")?;
        let shared = Arc::new(Shared {
            upstream,
            fault: watch::Sender::new(Fault::None),
            resets: watch::Sender::new(0),
            closed: watch::Sender::new(false),
            established: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        tracing::debug!(%addr, %upstream, "fault proxy started");
        Ok(FaultProxy {
            addr,
            shared,
            accept,
        })
    }

    /// Where clients connect: 127.0.0.1 and the proxy's port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Applies `fault` from now on, to new and established connections.
    pub fn set(&self, fault: Fault) {
        tracing::debug!(proxy = %self.addr, ?fault, "fault set");
        self.shared.fault.send_replace(fault);
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        *self.shared.fault.borrow()
    }

    /// Resets every established connection, on both sides: the client and
    /// the server each get a TCP reset (`SO_LINGER` 0), as when a load
    /// balancer or a NAT forgets a connection. The client sees "connection
    /// reset by peer" on its next read or write, at once, not a hang: the
    /// question is whether it reconnects on its own. New connections work.
    pub fn reset_all(&self) {
        tracing::debug!(proxy = %self.addr, "resetting every connection");
        self.shared.resets.send_modify(|n| *n += 1);
    }

    /// How many connections are established through the proxy now.
    pub fn connections(&self) -> usize {
        self.shared.established.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The listener closes when the accept task ends; each connection
        // closes when its task sees `closed`. Both happen on the runtime,
        // promptly but not before `drop` returns.
        self.accept.abort();
        self.shared.closed.send_replace(true);
    }
}

/// `url` with its host and port replaced by the proxy's, e.g. for
/// `DATABASE_URL` or `REDIS_URL`: user, password, path and query stay.
/// A URL without a host (a Unix socket) cannot go through a TCP proxy, and
/// is an error.
pub fn through(url: &str, proxy: SocketAddr) -> anyhow::Result<String> {
    let mut u = reqwest::Url::parse(url).context("Invalid server URL")?;
    if u.host_str().is_none_or(str::is_empty) {
        anyhow::bail!(
            "{} has no host: a TCP proxy cannot stand in for it",
            u.scheme()
        );
    }
    // libpq and sqlx let `?host=` override the URL's host: the proxy would
    // be silently bypassed.
    if u.query_pairs().any(|(k, _)| k == "host" || k == "hostaddr") {
        anyhow::bail!("the URL names its host in the query: a proxy cannot stand in for it");
    }
    u.set_ip_host(proxy.ip())
        .map_err(|()| anyhow::anyhow!("{} URLs cannot take a host", u.scheme()))?;
    u.set_port(Some(proxy.port()))
        .map_err(|()| anyhow::anyhow!("{} URLs cannot take a port", u.scheme()))?;
    Ok(u.into())
}

/// The address a server URL points at, to start a proxy in front of it:
/// its host (resolved, IPv4 first) and port, or the scheme's default port.
pub fn upstream_of(url: &str) -> anyhow::Result<SocketAddr> {
    let u = reqwest::Url::parse(url).context("Invalid server URL")?;
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .with_context(|| format!("{} URL without a host", u.scheme()))?;
    let port = match (u.port(), u.scheme()) {
        (Some(p), _) => p,
        (None, "postgres" | "postgresql") => 5432,
        (None, "redis") => 6379,
        (None, "mysql" | "mariadb") => 3306,
        (None, other) => anyhow::bail!("no port in the URL, and no default for {other}"),
    };
    // An IPv6 host comes bracketed; the resolver wants it bare.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .with_context(|| format!("Failed to resolve {host}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .with_context(|| format!("{host} resolves to no address"))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin, and
                // say so once per period, not ten times a second.
                static ACCEPT_FAILED: crate::log::Throttle =
                    crate::log::Throttle::new(Duration::from_secs(5));
                ACCEPT_FAILED.warn(format_args!("fault proxy: accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if *shared.fault.borrow() == Fault::RefuseNew {
            // A reset rather than a plain close: the client gets an error,
            // not an end of stream it could mistake for a server's goodbye.
            reset(&client);
            continue;
        }
        // Subscribed before the task starts: a reset_all from now on reaches
        // this connection, and an earlier one does not.
        let resets = shared.resets.subscribe();
        tokio::spawn(relay(client, shared.clone(), resets));
    }
}

/// Counts an established connection for as long as it lives.
struct Established(Arc<Shared>);

impl Drop for Established {
    fn drop(&mut self) {
        self.0.established.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How a connection ended, which decides how it is closed.
enum End {
    /// Both directions finished: a plain close.
    Done,
    /// An error on one side, or reset_all: a reset on both.
    Reset,
    /// The proxy was dropped: a plain close.
    Closed,
}

async fn relay(mut client: TcpStream, shared: Arc<Shared>, mut resets: watch::Receiver<u64>) {
    let upstream = shared.upstream;
    let mut closed = shared.closed.subscribe();
    // In a blackhole the server does not hear of a new connection until it
    // clears, as its handshake would be lost on the way: a client retrying
    // in a loop does not use up the server's connection slots.
    let mut fault = shared.fault.subscribe();
    tokio::select! {
        _ = flowing(&mut fault) => {}
        _ = resets.changed() => return reset(&client),
        _ = closed.wait_for(|c| *c) => return,
    }
    let mut server = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return refuse(client, upstream, &e.to_string()),
        Err(_) => return refuse(client, upstream, "timed out"),
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    shared.established.fetch_add(1, Ordering::SeqCst);
    let _count = Established(shared.clone());

    let end = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let both = async {
            tokio::try_join!(
                pump(client_read, server_write, shared.fault.subscribe()),
                pump(server_read, client_write, shared.fault.subscribe()),
            )
        };
        tokio::select! {
            r = both => if r.is_ok() { End::Done } else { End::Reset },
            _ = resets.changed() => End::Reset,
            _ = closed.wait_for(|c| *c) => End::Closed,
        }
    };
    if let End::Reset = end {
        // A reset on one side becomes a reset on the other, as it would
        // without the proxy in between.
        reset(&client);
        reset(&server);
    }
}

/// Closes `client` with a reset when the upstream server cannot be reached.
fn refuse(client: TcpStream, upstream: SocketAddr, why: &str) {
    tracing::warn!(%upstream, "fault proxy: cannot reach the server: {why}");
    reset(&client);
}

/// Makes the socket's close a reset (`SO_LINGER` 0) rather than a goodbye.
fn reset(socket: &TcpStream) {
    let _ = socket.set_zero_linger();
}

/// Copies one direction, chunk by chunk, applying the fault in force.
async fn pump(
    mut from: tokio::net::tcp::ReadHalf<'_>,
    mut to: tokio::net::tcp::WriteHalf<'_>,
    mut fault: watch::Receiver<Fault>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        // In a blackhole nothing is read: the sender's buffers fill and it
        // stalls, as behind a firewall that drops packets.
        flowing(&mut fault).await;
        let n = from.read(&mut buf).await?;
        let delay = match *fault.borrow_and_update() {
            Fault::Latency(d) => Some(d),
            _ => None,
        };
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        // A blackhole set while this chunk was read holds it too.
        flowing(&mut fault).await;
        if n == 0 {
            // The sender closed its side: pass the end of stream on, and
            // keep relaying the other direction.
            to.shutdown().await?;
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
    }
}

/// Waits until the fault is not a blackhole.
async fn flowing(fault: &mut watch::Receiver<Fault>) {
    // An error means the proxy is gone; its connections are closing.
    let _ = fault.wait_for(|f| *f != Fault::Blackhole).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:40000".parse().expect("an address")
    }

    #[test]
    fn through_replaces_only_host_and_port() {
        assert_eq!(
            through(
                "postgres://postgres:p%40ss@db.example:5432/test?sslmode=disable",
                addr()
            )
            .expect("a URL"),
            "postgres://postgres:p%40ss@127.0.0.1:40000/test?sslmode=disable"
        );
        assert_eq!(
            through("redis://127.0.0.1:6379", addr()).expect("a URL"),
            "redis://127.0.0.1:40000"
        );
        assert_eq!(
            through("redis://127.0.0.1", addr()).expect("a URL"),
            "redis://127.0.0.1:40000"
        );
        assert_eq!(
            through("mysql://root@127.0.0.1:3306/test", addr()).expect("a URL"),
            "mysql://root@127.0.0.1:40000/test"
        );
    }

    #[test]
    fn upstream_of_reads_host_and_port_with_defaults() {
        let at = |url: &str| upstream_of(url).expect(url).to_string();
        assert_eq!(at("redis://127.0.0.1:6380"), "127.0.0.1:6380");
        assert_eq!(at("redis://127.0.0.1"), "127.0.0.1:6379");
        assert_eq!(at("postgres://u:p@127.0.0.1/test"), "127.0.0.1:5432");
        assert_eq!(at("mysql://root@localhost/test"), "127.0.0.1:3306");
        assert!(upstream_of("redis+unix:///tmp/redis.sock").is_err());
    }

    #[test]
    fn through_refuses_what_a_tcp_proxy_cannot_stand_in_for() {
        assert!(through("redis+unix:///tmp/redis.sock", addr()).is_err());
        assert!(through("postgres:///test?host=/var/run/postgresql", addr()).is_err());
        assert!(through("postgres://x@127.0.0.1/test?host=/tmp", addr()).is_err());
        assert!(through("not a url", addr()).is_err());
    }
}
