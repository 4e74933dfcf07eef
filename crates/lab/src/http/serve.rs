//! The server loop every lesson runs: accept, bound, serve, drain.
//!
//! `axum::serve` is the easy way to run a router, and it has no knobs: no
//! timer, so hyper's header-read timeout never fires; no connection limit;
//! and it serves a body as slowly as the client sends it. A thousand
//! connections that each send half a request line stay open forever, and
//! under a low `ulimit -n` `accept` fails until they go. This loop is
//! axum's `serve-with-hyper` example with the bounds a service facing
//! strangers needs, each one configurable from the environment:
//!
//! | env var                    | default | bounds                                       |
//! |----------------------------|---------|----------------------------------------------|
//! | `HTTP_HEADER_TIMEOUT_MS`   | 10000   | reading a request head, and idle keep-alive  |
//! | `HTTP_BODY_TIMEOUT_MS`     | 10000   | reading a whole request body (408 past it)   |
//! | `HTTP_MAX_BODY_BYTES`      | 65536   | a request body (413 past it)                 |
//! | `HTTP_MAX_HEADER_BYTES`    | 65536   | a request head (hyper's 431 past it)         |
//! | `HTTP_MAX_CONNECTIONS`     | 4096    | open connections (fitted under `ulimit -n`)  |
//! | `HTTP_SHUTDOWN_GRACE_SECS` | 10      | draining in-flight requests on shutdown      |
//!
//! The reasons for each default are on [`ServerConfig`]'s fields.
//!
//! What hyper answers by itself: a head over `HTTP_MAX_HEADER_BYTES` gets
//! 431, a URI too long for it 414, an unparsable head 400, each with an
//! empty body and no `Content-Type`. hyper writes those before any service
//! runs and has no hook to change them, so they are the one place our
//! "every error is JSON" rule does not hold.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::HttpBody;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::body::{Arriving, BodyLimits, guard};
use super::slots::{InFlight, Slot, Slots};
use crate::log::Throttle;

// ANCHOR: config
/// The bounds one server applies to every connection. [`ServerConfig::from_env`]
/// reads them; tests build one with short timeouts.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// How long a client may take to send a request head, counted from the
    /// moment the server is ready to read one: after accepting, and after
    /// answering the previous request on a kept-alive connection. So this is
    /// the idle keep-alive timeout too (hyper 1 restarts the same timer when a
    /// connection goes idle; no separate idle timer is needed). 10 s: a client
    /// on loopback sends its head in microseconds, a browser on a slow phone
    /// in well under a second; a half-sent request line holds a connection
    /// and a file descriptor for at most this long. Not 0: every head
    /// would be late.
    pub header_timeout: Duration,
    /// How long a request body may take in total, from the first time the
    /// handler waits for it. 10 s covers 64 KiB over any link a workshop
    /// sees; a body still trickling in then is an attack or a dead client.
    pub body_timeout: Duration,
    /// The largest request body. The lessons' only body is
    /// `{"name": ..., "email": ...}`, a few hundred bytes; 64 KiB is a
    /// hundred times that, and small enough that a thousand of them at once
    /// cost 64 MB, not the gigabytes of axum's default 2 MB each.
    pub max_body_bytes: usize,
    /// The largest request head (request line and headers). hyper's default
    /// is about 400 KB per connection; 64 KiB still admits any real head
    /// (browsers send a few KB; nginx's default limit is 32 KB) and the
    /// 60 KB paths our hostile-input tests send, so that they reach the JSON
    /// 404 rather than hyper's bare 431.
    pub max_header_bytes: usize,
    /// How many connections are held at once. At the limit, the longest-idle
    /// connection is closed to make room, or, when every one has a request
    /// in flight, the newcomer waits for one to finish (see [`serve`]).
    /// 4096, lowered to fit the process's file-descriptor limit with room
    /// for the pools and the log; a value set in `HTTP_MAX_CONNECTIONS` is
    /// lowered the same way, with a warning. At least 1.
    pub max_connections: usize,
    /// On shutdown, how long in-flight requests get to finish before their
    /// connections are closed anyway. 10 s is longer than any lesson's
    /// database timeout, so a request that can finish, does.
    pub shutdown_grace: Duration,
}
// ANCHOR_END: config

const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_BODY_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
const DEFAULT_MAX_CONNECTIONS: usize = 4096;
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;
/// File descriptors kept for everything but client connections: the
/// database and Redis pools, a private server's pipes, the log, and the one
/// `accept` needs to take a connection off the queue.
const FDS_RESERVED: usize = 128;
/// hyper's smallest allowed read buffer; `max_buf_size` panics below it.
const MIN_HEADER_BYTES: usize = 8192;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_timeout: Duration::from_millis(DEFAULT_HEADER_TIMEOUT_MS),
            body_timeout: Duration::from_millis(DEFAULT_BODY_TIMEOUT_MS),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_connections: fit_fd_limit(DEFAULT_MAX_CONNECTIONS),
            shutdown_grace: Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECS),
        }
    }
}

impl ServerConfig {
    /// The defaults, overridden by any `HTTP_*` variable that is set. A set
    /// but unparsable value is an error, not silently the default, and so
    /// is one that would leave the server unable to serve (see
    /// [`ServerConfig::from_vars`]).
    pub fn from_env() -> anyhow::Result<ServerConfig> {
        ServerConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// [`ServerConfig::from_env`], with the variables read by `var`: tests
    /// use it to try values without touching the process's environment,
    /// which every test thread shares.
    ///
    /// Refused as well as unparsable values: `HTTP_MAX_CONNECTIONS=0` (no
    /// connection could ever be served) and `HTTP_HEADER_TIMEOUT_MS=0`
    /// (every request head would be late). An explicit
    /// `HTTP_MAX_CONNECTIONS` above what the file-descriptor limit allows
    /// is lowered to fit, with a warning, like the default.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<ServerConfig> {
        let d = ServerConfig::default();
        let num = |name| env_num::<u64>(name, &var);
        let ms = |name, default: Duration| -> anyhow::Result<Duration> {
            Ok(num(name)?.map_or(default, Duration::from_millis))
        };
        let size = |name| env_num::<usize>(name, &var);
        let config = ServerConfig {
            header_timeout: ms("HTTP_HEADER_TIMEOUT_MS", d.header_timeout)?,
            body_timeout: ms("HTTP_BODY_TIMEOUT_MS", d.body_timeout)?,
            max_body_bytes: size("HTTP_MAX_BODY_BYTES")?.unwrap_or(d.max_body_bytes),
            max_header_bytes: size("HTTP_MAX_HEADER_BYTES")?.unwrap_or(d.max_header_bytes),
            max_connections: match size("HTTP_MAX_CONNECTIONS")? {
                Some(wanted) => fit_explicit_limit(wanted),
                None => d.max_connections,
            },
            shutdown_grace: num("HTTP_SHUTDOWN_GRACE_SECS")?
                .map_or(d.shutdown_grace, Duration::from_secs),
        };
        if config.max_connections == 0 {
            anyhow::bail!(
                "HTTP_MAX_CONNECTIONS=0 would serve no connection at all: \
                 set it to 1 or more, or unset it for the default ({DEFAULT_MAX_CONNECTIONS})"
            );
        }
        if config.header_timeout.is_zero() {
            anyhow::bail!(
                "HTTP_HEADER_TIMEOUT_MS=0 would time out every request head: \
                 set it to 1 or more, or unset it for the default ({DEFAULT_HEADER_TIMEOUT_MS})"
            );
        }
        Ok(config)
    }
}

fn env_num<T: std::str::FromStr>(
    name: &str,
    var: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match var(name) {
        Some(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("{name}={v:?} is not a number")),
        _ => Ok(None),
    }
}

/// An explicit `HTTP_MAX_CONNECTIONS`, lowered as the default is if the
/// file-descriptor limit is lower, and a warning saying so: past the limit
/// `accept` would fail, which serves nobody.
fn fit_explicit_limit(wanted: usize) -> usize {
    let fitted = fit_fd_limit(wanted);
    if fitted < wanted {
        tracing::warn!(
            "HTTP_MAX_CONNECTIONS={wanted} is more than the file-descriptor limit allows: \
             using {fitted}; raise `ulimit -n` for more"
        );
    }
    fitted
}

/// `wanted`, or fewer if the process may not open that many files. Past the
/// limit `accept` fails with EMFILE; below it, connections over the limit
/// wait in the listen queue, which costs no descriptor.
fn fit_fd_limit(wanted: usize) -> usize {
    match raised_fd_limit() {
        Some(limit) => wanted.min(limit.saturating_sub(FDS_RESERVED).max(16)),
        None => wanted,
    }
}

/// What we ask the soft limit to be raised to, at most: enough for the
/// default connection limit many times over. (macOS refuses more than its
/// `kern.maxfilesperproc`, and an unlimited hard limit is common there.)
const FD_LIMIT_WANTED: libc::rlim_t = 65_536;

/// The soft `RLIMIT_NOFILE`, first raised towards the hard limit, as the Go
/// runtime does for every program since Go 1.19. The soft limit is often
/// far below the hard one (256 on macOS, 1024 in many shells) for the sake
/// of old programs that use `select(2)`; a Tokio server has no such need.
/// `None` when the limit cannot be read.
#[allow(unsafe_code)]
fn raised_fd_limit() -> Option<usize> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write only the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        let wanted = lim.rlim_max.min(FD_LIMIT_WANTED);
        if lim.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: lim.rlim_max,
            };
            // If the system refuses, the old soft limit stands.
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = wanted;
            }
        }
    }
    Some(usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX))
}

/// One warning per second at most: under EMFILE, `accept` fails as fast as
/// we retry it, and a line per failure would fill the disk.
static ACCEPT_FAILED: Throttle = Throttle::new(Duration::from_secs(1));
/// How long to wait after a failed `accept` before trying again. Long
/// enough not to spin a core, short enough that a freed descriptor is used
/// at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

// ANCHOR: serve
/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting, lets in-flight requests finish for up to
/// `config.shutdown_grace`, and closes what is left.
///
/// At `config.max_connections`, a newcomer is not refused. The connection
/// that has been idle (or sending half a head) longest is closed to make
/// room for it: under a flood of half-open connections a real request is
/// served at once instead of queueing behind the flood's header timeouts.
/// A request still waiting for its body counts as idle here, so a flood of
/// half-sent bodies cannot hold the slots either (why: see `slots.rs`).
/// When every connection has a request in flight, the newcomer waits until
/// one finishes its request (and is closed to make room) or closes; the
/// loop takes no other connection meanwhile, and those behind it wait in
/// the kernel's listen queue. Refusing the newcomer instead would need a
/// descriptor to answer with (the very thing we are short of) and would
/// fail a client that only hit a burst. That wait is bounded: requests are
/// bounded by the body timeout and the handlers' database timeouts.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let router = router
        .layer(axum::middleware::from_fn_with_state(
            BodyLimits {
                max_bytes: config.max_body_bytes,
                timeout: config.body_timeout,
            },
            guard,
        ))
        // axum's extractors apply their own limit (2 MB by default); make it
        // ours, so that `Json` and `Bytes` agree with the guard.
        .layer(DefaultBodyLimit::max(config.max_body_bytes));
    let mut http = hyper::server::conn::http1::Builder::new();
    // Without a timer hyper cannot time anything, and `header_read_timeout`
    // is silently ignored: the bug `axum::serve` has.
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        // The head limit itself; hyper answers 431 past it.
        .max_header_size(config.max_header_bytes)
        // And the read buffer: without this it may grow to ~400 KB per
        // connection (a read may fill it past the head limit before the
        // parser looks).
        .max_buf_size(config.max_header_bytes.max(MIN_HEADER_BYTES));
    let slots = Slots::new(config.max_connections);
    // `true` once shutdown starts; every connection task watches it.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        let Some((stream, slot)) = accepted else {
            continue;
        };
        let service = counted(router.clone(), slot.in_flight());
        let conn = http.serve_connection(TokioIo::new(stream), service);
        connections.spawn(run_connection(conn, slot, stop_rx.clone()));
    }

    drop(listener); // new connections are refused from here on
    let _ = stop_tx.send(true);
    drain(connections, config.shutdown_grace).await;
}
// ANCHOR_END: serve

/// One connection, to its end: closed by the client or a timeout, evicted
/// to make room, or finished gracefully when the server stops. The slot is
/// given back when this returns, however it returns.
async fn run_connection<S>(
    conn: hyper::server::conn::http1::Connection<TokioIo<TcpStream>, S>,
    slot: Slot,
    mut stop: watch::Receiver<bool>,
) where
    S: hyper::service::HttpService<Incoming>,
    S::ResBody: 'static,
    <S::ResBody as axum::body::HttpBody>::Error: Into<axum::BoxError>,
{
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => return log_conn_end(result),
        () = slot.evicted() => {
            // Dropping the connection closes it: a half-sent head has
            // nothing to answer, an idle one nothing to finish, and a body
            // still trickling in no answer yet. But the victim was chosen
            // a moment ago, and a request may have started since: that one
            // is finished, as on shutdown, not cut off. (No request can
            // start while we look: the connection is not being polled.)
            if slot.may_drop() {
                return;
            }
        }
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
    // Finish the request in flight, if any, then close.
    conn.as_mut().graceful_shutdown();
    log_conn_end(conn.await);
}

/// Waits up to `grace` for every connection to finish, then closes the rest.
async fn drain(mut connections: JoinSet<()>, grace: Duration) {
    let in_flight = connections.len();
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "{} of {in_flight} connection(s) still busy after {grace:?}: closing them",
            connections.len(),
        );
        connections.shutdown().await;
    }
}

/// The router as hyper's service, marking each request in flight on its
/// connection while it runs, so that the connection is not evicted.
fn counted(
    router: Router,
    in_flight: InFlight,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Future<Output = Result<axum::response::Response, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |req: Request<Incoming>| {
        let busy = in_flight.begin();
        // Until its body is in, the request does no work: see `slots.rs`.
        let req = req.map(|body| {
            let reading = (!body.is_end_stream()).then(|| busy.reading());
            Arriving { body, reading }
        });
        let router = router.clone();
        async move {
            let resp = router.oneshot(req).await;
            drop(busy);
            resp
        }
    })
}

/// The next connection and its slot. `None` when `accept` failed: the
/// caller loops, after a pause if the failure was ours.
async fn accept(listener: &TcpListener, slots: &Arc<Slots>) -> Option<(TcpStream, Slot)> {
    match listener.accept().await {
        Ok((stream, _peer)) => {
            // Responses are written whole; Nagle would only delay them.
            let _ = stream.set_nodelay(true);
            let slot = slots.acquire(&stream).await;
            Some((stream, slot))
        }
        // The client gave up before we took its connection: nothing to do.
        Err(e) if is_connection_error(&e) => None,
        // EMFILE, ENFILE, ENOBUFS: ours. Retrying at once would fail again and
        // spin a core; a pause lets a connection close and free a descriptor.
        Err(e) => {
            ACCEPT_FAILED.warn(format_args!(
                "accept failed: {e}; pausing {ACCEPT_BACKOFF:?} before the next try"
            ));
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            None
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// A connection ending in an error is the client's business (it hung up,
/// sent garbage, or was too slow), not ours: DEBUG, or a slow-loris attack
/// writes a line per connection.
fn log_conn_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!("connection closed: {e}");
    }
}
