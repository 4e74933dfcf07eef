//! The HTTP boundary every lesson shares: JSON errors, id parsing, and a
//! server bound to loopback.
//!
//! # Layout
//! - this file: [`ApiError`], the parsers of client input ([`parse_user_id`],
//!   [`json_body`], [`shown`]), [`finish`] for a lesson's router, and the
//!   entry points [`spawn_server`] and [`serve_until_ctrl_c`];
//! - `serve`: the accept loop and its bounds ([`ServerConfig`]): header,
//!   idle and body timeouts, body and head size, connection limit, drain;
//! - `body`: the body-size and body-deadline middleware.
//!
//! Errors follow zero-to-production's shape: a `thiserror` enum maps each
//! failure to a status code, and an internal error reaches the client only as
//! `{"error": "internal error"}` while its cause goes to the log.

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::log::Throttle;

mod body;
mod serve;
mod slots;

pub use body::BodyTimedOut;
pub use serve::{ServerConfig, serve};

// ANCHOR: api_error
/// Every error a lesson's API can answer with. The body is always
/// `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The client sent something we cannot use: 400.
    #[error("{0}")]
    BadRequest(String),
    /// The thing asked for does not exist: 404.
    #[error("{0}")]
    NotFound(String),
    /// A dependency did not answer in time: 503. Later lessons add a cache
    /// that answers instead.
    #[error("{0}")]
    Unavailable(String),
    /// The request body is larger than the server accepts
    /// (`HTTP_MAX_BODY_BYTES`): 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body is not declared as `Content-Type: application/json`: 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body did not arrive within `HTTP_BODY_TIMEOUT_MS`: 408.
    #[error("{0}")]
    RequestTimeout(String),
    /// Our fault. The cause is logged, never sent: 500.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Internal(cause) => {
                tracing::error!("internal error: {cause:#}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}
// ANCHOR_END: api_error

// ANCHOR: shown
/// How many characters of client input an answer or a log line may echo.
const SHOWN_CHARS: usize = 32;

/// Client input as an error message may show it: debug-quoted (so control
/// characters and quotes cannot forge the message), and only its first
/// [`SHOWN_CHARS`] characters, with "…" when it was cut. An error must not
/// send back, or write to the log, the 100 KB the client sent us.
pub fn shown(raw: &str) -> String {
    match raw.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{:?}…", &raw[..cut]),
        None => format!("{raw:?}"),
    }
}
// ANCHOR_END: shown

// ANCHOR: parse_user_id
/// The largest id a client may send: `users.id` is a `bigint`.
const MAX_ID_DIGITS: usize = 19;

/// Parses the `{id}` path segment. Only plain decimal digits are an id:
/// `-1`, `+1`, `1.5`, `1e3`, ` 1` and overflowing numbers are 400s, because
/// "no such user" (404) would tell the client its request made sense.
pub fn parse_user_id(raw: &str) -> Result<i64, ApiError> {
    let bad = || {
        // Echo a bounded prefix only: the input may be kilobytes long.
        ApiError::BadRequest(format!(
            "invalid user id {}: expected a positive integer",
            shown(raw)
        ))
    };
    if raw.is_empty() || raw.len() > MAX_ID_DIGITS || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(bad()),
    }
}

/// Extracts and parses `{id}`; a segment that is not valid UTF-8 is a 400 too.
pub fn user_id_from_path(
    path: Result<axum::extract::Path<String>, PathRejection>,
) -> Result<i64, ApiError> {
    match path {
        Ok(axum::extract::Path(raw)) => parse_user_id(&raw),
        Err(rejection) => Err(ApiError::BadRequest(format!(
            "invalid path: {}",
            rejection.body_text()
        ))),
    }
}
// ANCHOR_END: parse_user_id

// ANCHOR: json_body
/// The longest rejection message a client gets back: serde's messages can
/// quote the offending value, which may be megabytes long.
const MAX_REJECTION_CHARS: usize = 200;

/// Turns axum's `Json` extractor result into the body or the right JSON
/// error. Take the extractor as `Result<Json<T>, JsonRejection>` and call
/// this, instead of letting axum answer with its plain-text rejection:
///
/// - a body over `HTTP_MAX_BODY_BYTES`: 413, not 400, so a client knows that
///   retrying the same body cannot work;
/// - a missing or wrong `Content-Type`: 415, which names the fix;
/// - a body that did not arrive within `HTTP_BODY_TIMEOUT_MS`: 408;
/// - anything else (bad syntax, wrong fields): 400, with axum's message cut
///   to a bounded length.
pub fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    let rejection = match body {
        Ok(Json(value)) => return Ok(value),
        Err(rejection) => rejection,
    };
    Err(match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("the request body is too large".into())
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(
            "expected a body with Content-Type: application/json".into(),
        ),
        _ if body::timed_out(&rejection) => {
            ApiError::RequestTimeout("the request body did not arrive in time".into())
        }
        _ => {
            let text = rejection.body_text();
            ApiError::BadRequest(match text.char_indices().nth(MAX_REJECTION_CHARS) {
                Some((cut, _)) => format!("{}…", &text[..cut]),
                None => text,
            })
        }
    })
}
// ANCHOR_END: json_body

/// Runs one database call under `limit`. A call that does not finish in time
/// is a 503 (a dependency is slow; the client did nothing wrong), and so is
/// a database that cannot be reached ([`unreachable`]); any other error is
/// a 500. Either way the cause goes to the log, never to the client. Without
/// the limit a stuck database would hold the request, and its pool
/// connection, for as long as it likes.
pub async fn db_call<T, E>(
    limit: std::time::Duration,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, ApiError>
where
    E: Into<anyhow::Error>,
{
    // One line per period: a stopped database fails every request the same
    // way, and the log has to stay readable while it does.
    static UNREACHABLE: Throttle = Throttle::new(std::time::Duration::from_secs(5));
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            let e = e.into();
            if unreachable(&e) {
                UNREACHABLE.warn(format_args!("the database is unreachable: {e:#}"));
                Err(ApiError::Unavailable("the database is unavailable".into()))
            } else {
                Err(ApiError::Internal(e))
            }
        }
        Err(_) => Err(ApiError::Unavailable(format!(
            "the database did not answer within {limit:?}"
        ))),
    }
}

/// Whether an error means "the database is not there right now" rather
/// than "this query is wrong": no connection could be made or kept (refused,
/// reset, the pool's wait ran out), or the server said it is shutting down,
/// starting up or out of connections. That is the server's state, not the
/// client's request or our code, so it is a 503 a client may retry, as a
/// timeout is. A stopped PostgreSQL answered 500 before this, which told
/// clients and alerting that the service itself was broken.
pub fn unreachable(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<sqlx::Error>())
        .any(|e| match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            // SQLSTATE class 08 is "connection exception"; 57P01-57P03 are
            // admin shutdown, crash shutdown and "cannot connect now"
            // (starting up); 53300 is too many connections.
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
            }),
            _ => false,
        })
}

/// Routes that match nothing get a JSON 404 too, e.g. `/users/` with an
/// empty id segment.
pub async fn not_found(uri: Uri) -> ApiError {
    // A bounded prefix: the path may be 60 KB long.
    ApiError::NotFound(format!("no route for {}", shown(uri.path())))
}

/// What every lesson's router gets: JSON answers for unknown routes and
/// wrong methods, and a `Server-Timing` header on every response.
pub fn finish(router: Router) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(serde_json::json!({ "error": "method not allowed" })),
            )
        })
        .layer(axum::middleware::from_fn(server_timing))
}

/// `X-Cache`, the lessons' HIT/MISS/STALE header, as a constant: a `&str`
/// name is parsed and checked on every insert.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// Adds `Server-Timing: app;dur=<ms>`, the time spent inside the service.
/// A client's own clock includes its round trip; this header separates the
/// two, so the demo can show what a cache hit costs the server itself.
///
/// The milliseconds are written from whole microseconds with integer
/// formatting: `{:.3}` of an `f64` runs the exact float-to-decimal
/// algorithm on every request, and a profile of the hit path under load
/// showed it (see lesson 2's chapter).
pub async fn server_timing(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    let us = started.elapsed().as_micros();
    let dur = format!("app;dur={}.{:03}", us / 1000, us % 1000);
    if let Ok(v) = HeaderValue::try_from(dur) {
        resp.headers_mut().insert(SERVER_TIMING, v);
    }
    resp
}

/// A lesson's server running in the background on 127.0.0.1.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes in-flight requests (for at most the
    /// configured grace), and returns.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await?;
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Binds `127.0.0.1:port` (0 picks a free port) and serves in the background,
/// with the bounds from the environment ([`ServerConfig::from_env`]).
/// Only loopback: a workshop laptop on conference Wi-Fi must not expose it.
pub async fn spawn_server(router: Router, port: u16) -> anyhow::Result<Running> {
    spawn_server_with(router, port, ServerConfig::from_env()?).await
}

/// [`spawn_server`] with explicit bounds, e.g. a test's short timeouts.
pub async fn spawn_server_with(
    router: Router,
    port: u16,
    config: ServerConfig,
) -> anyhow::Result<Running> {
    let listener = bind(port).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, router, config, async {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// Serves on `127.0.0.1:port` until Ctrl-C, with the bounds from the
/// environment.
pub async fn serve_until_ctrl_c(router: Router, port: u16) -> anyhow::Result<()> {
    let config = ServerConfig::from_env()?;
    let listener = bind(port).await?;
    tracing::info!(
        "listening on http://{} (Ctrl-C stops it)",
        listener.local_addr()?
    );
    tracing::debug!(?config, "server bounds");
    serve(listener, router, config, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C: finishing in-flight requests");
    })
    .await;
    Ok(())
}

async fn bind(port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {e}. Set PORT to another port, or stop what uses this one.")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_positive_decimal_ids_parse() {
        assert_eq!(parse_user_id("123").ok(), Some(123));
        assert_eq!(parse_user_id("9223372036854775807").ok(), Some(i64::MAX));
        for bad in [
            "",
            "abc",
            "-1",
            "+1",
            "0",
            "1.5",
            "1e3",
            " 1",
            "99999999999999999999",
            "9223372036854775808",
            "١٢",
        ] {
            assert!(
                matches!(parse_user_id(bad), Err(ApiError::BadRequest(_))),
                "{bad:?} should be a 400"
            );
        }
        let long = "x".repeat(10_000);
        let msg = parse_user_id(&long).expect_err("must fail").to_string();
        assert!(msg.len() < 100, "the error echoes a bounded prefix: {msg}");
    }

    #[test]
    fn shown_quotes_and_bounds_client_input() {
        assert_eq!(shown("abc"), "\"abc\"");
        assert_eq!(shown("a\"b\nc"), "\"a\\\"b\\nc\"");
        let exactly = "é".repeat(SHOWN_CHARS);
        assert!(!shown(&exactly).ends_with('…'), "not cut at the limit");
        let long = "é".repeat(60_000);
        let s = shown(&long);
        assert!(s.ends_with('…'), "{s}");
        assert_eq!(s.chars().filter(|&c| c == 'é').count(), SHOWN_CHARS);
    }
}
