//! How an answer is built: a cached entry as a 200 with `X-Cache` and
//! `Age` ([`respond`]), and what a request can fail with ([`ServeError`],
//! whose 503 always says when to retry; [`DbDown`], why the database could
//! not answer).
//!
//! A 503's message says *what* is unavailable, never the database's own
//! words: `relation "users" does not exist` tells a client about our schema
//! and nothing it can act on. As with `lab::http::ApiError::Internal`, the
//! cause goes to the log (where `load` writes it) and the client gets a
//! generic sentence.

use std::time::{Duration, SystemTime};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lab::http::ApiError;
use lab::users::User;

use crate::breaker::Refused;
use crate::entry::Entry;

/// A cached entry as a response. `Age` is the copy's age in seconds, as
/// HTTP caches send it (RFC 9111 §5.1), so a client can tell how old a
/// STALE answer is.
pub fn respond(id: i64, entry: Entry<User>, cache: &'static str) -> Result<Response, ServeError> {
    let age = entry.age(SystemTime::now()).as_secs();
    let Some(user) = entry.value else {
        return Err(ApiError::NotFound(format!("user {id} not found")).into());
    };
    let mut resp = axum::Json(user).into_response();
    let h = resp.headers_mut();
    h.insert(lab::http::X_CACHE, HeaderValue::from_static(cache));
    h.insert(header::AGE, HeaderValue::from(age));
    Ok(resp)
}

/// What a request can fail with. A 503 here always says when to retry.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// No usable copy and no database.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Duration,
    },
    /// Cache-first had no copy and could not even start loading one: as
    /// many background loads as it allows are already running. Shed, not
    /// queued; the client retries.
    #[error("too many loads in flight, retry")]
    TooManyLoads { retry_after: Duration },
}

/// A 503 with a JSON body and `Retry-After` in whole seconds, rounded up:
/// `Retry-After: 0` invites a client to hammer us.
fn unavailable(message: String, retry_after: Duration) -> Response {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, secs.max(1).to_string())],
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        match self {
            ServeError::Api(e) => e.into_response(),
            ServeError::Unavailable {
                message,
                retry_after,
            } => unavailable(message, retry_after),
            e @ ServeError::TooManyLoads { retry_after } => unavailable(e.to_string(), retry_after),
        }
    }
}

/// Why the database could not answer. Its `Display` is what a client may
/// read: a failure's cause is kept for the log, not shown.
#[derive(Debug, thiserror::Error)]
pub enum DbDown {
    #[error("the circuit breaker is open")]
    BreakerOpen(Refused),
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the database failed")]
    Failed(#[source] anyhow::Error),
}

impl DbDown {
    /// When a client should try again: when the breaker will let a probe
    /// through, or in a second for a database that just failed.
    pub fn retry_after(&self) -> Duration {
        match self {
            DbDown::BreakerOpen(r) => r.retry_in,
            _ => Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let r = ServeError::Unavailable {
            message: "x".into(),
            retry_after: Duration::from_millis(1200),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn a_database_failure_shows_no_cause() {
        let e = DbDown::Failed(anyhow::anyhow!("relation \"users\" does not exist"));
        assert_eq!(e.to_string(), "the database failed");
    }
}
