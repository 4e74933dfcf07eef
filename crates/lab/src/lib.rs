//! The workshop's harness: everything a lesson needs that is not the lesson.
//!
//! - [`kind`] names the three servers, and pings them or asks their version.
//! - [`discover`] finds a PostgreSQL, Redis or MariaDB server, in the order the
//!   book's setup chapter describes: an env URL, the default local port, a
//!   Docker container, then a private instance spawned from local binaries.
//! - [`spawn`] starts private instances with chosen settings, and stops and
//!   restarts them on the same port and data dir (later lessons' outages).
//! - [`cluster`] spawns a real Redis Cluster (3 masters, 3 replicas) from the
//!   local `redis-server`, kills a master and reshards (lesson 9).
//! - [`replica`] spawns a PostgreSQL primary with a streaming read replica,
//!   and pauses its replay (lesson 9).
//! - [`edge`] spawns a private nginx, lesson 6's edge cache, around the
//!   lesson's `http` block.
//! - [`isolate`] gives each test its own schema, database or key prefix on a
//!   shared server, and removes only what it created.
//! - [`metrics`] is a Prometheus registry per service, for `GET /metrics`.
//! - [`pin`] places the bench process and private servers on chosen CPUs.
//! - [`results`] is where experiments leave their results for `just report`.
//! - [`seed`] creates and fills the deterministic `users` table.
//! - [`users`] is the one query every lesson serves, with the simulated
//!   latency spent inside the database.
//! - [`cache`] makes one Redis call under a deadline, a failure a miss.
//! - [`cli`] is the flags every lesson shares, and provisioning its schema.
//! - [`http`] is the JSON error boundary and the loopback server every lesson uses.
//! - [`log`] keeps warnings readable in an outage: one line per period.
//! - [`units`] prints durations and byte sizes the same way everywhere.
//! - [`faults`] is a TCP proxy between a service and its server that adds
//!   latency, refuses new connections, resets them or swallows everything.
//! - [`exercise`] is what the exercises' tests share: a private Redis they
//!   stop, pause and read every key of.
//! - [`testing`] sends requests through a router in the lessons' tests.
//!
//! Run `just doctor` to see what discovery would pick on your machine.

pub mod cache;
pub mod cli;
pub mod cluster;
pub mod demo;
pub mod discover;
pub mod docker;
pub mod edge;
pub mod exercise;
pub mod faults;
pub mod http;
pub mod isolate;
pub mod kind;
pub mod log;
pub mod metrics;
pub mod pin;
pub mod replica;
pub mod results;
pub mod seed;
pub mod spawn;
pub mod testing;
pub mod units;
pub mod users;

pub use discover::{Backend, Origin, Server, discover, discover_with};
pub use kind::Kind;

/// Logs to stderr, filtered by `RUST_LOG` (default: `info` for the workshop's
/// crates, `warn` for everything else). Calling it twice is harmless, so
/// tests and binaries can both call it.
pub fn init_tracing() {
    // sqlx logs every statement at info, and warns about every statement over
    // 1 s, which in the demos is every query, on purpose. The lessons log the
    // queries that matter themselves.
    init_tracing_with(SERVE_FILTER);
}

/// The services' default log filter (`--serve`): `info` for the workshop's
/// crates, quieter for the libraries. Lesson 2's hit-path bench measures what
/// it costs per request against `warn` and `debug`.
pub const SERVE_FILTER: &str = "info,sqlx=error,hyper=warn";

/// The same with another default filter, for a program whose per-request
/// logs would drown its own output (a load test). `RUST_LOG` still wins.
pub fn init_tracing_with(default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colours only on a terminal: CI logs and files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The same format as [`init_tracing`], with `filter` (not `RUST_LOG`),
/// written to `file`, as a [`tracing::Dispatch`] a thread can make its own
/// default (`tracing::dispatcher::set_default`). A load bench runs one
/// server per thread this way, each at its own log level, and the lines go
/// where a service's would (one `write` each, as to stderr), not to the
/// bench's terminal.
pub fn tracing_to_file(filter: &str, file: std::fs::File) -> tracing::Dispatch {
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .finish();
    tracing::Dispatch::new(subscriber)
}
