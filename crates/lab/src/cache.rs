//! One call to Redis, under a deadline, whose failure is a miss.
//!
//! A cache is an optimisation: when Redis is down, paused or slow, a request
//! must go on to the database, not fail and not wait. Every cache call in
//! the lessons goes through [`call`], so that rule is written once: the
//! call gets `timeout` (on top of the client's own connection and response
//! timeouts, which do not cover a connection that is still being set up
//! after a reconnect), and any failure becomes `None` after the caller's
//! `failed` has counted and logged it in the lesson's own words.

use std::fmt;
use std::time::Duration;

/// Why a Redis call gave nothing back.
#[derive(Debug)]
pub enum Failure {
    /// Redis answered with an error, or the connection is gone.
    Error(redis::RedisError),
    /// No answer within the deadline.
    TimedOut(Duration),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => write!(f, "failed: {e}"),
            Failure::TimedOut(t) => write!(f, "timed out after {t:?}"),
        }
    }
}

// ANCHOR: call
/// Runs `call` for at most `timeout`. On success, its value; on an error or
/// a timeout, `failed` is told why (to count it and log it) and the answer
/// is `None`, which the caller treats as a miss or a write that did not
/// happen.
pub async fn call<T>(
    timeout: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
    failed: impl FnOnce(Failure),
) -> Option<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            failed(Failure::Error(e));
            None
        }
        Err(_) => {
            failed(Failure::TimedOut(timeout));
            None
        }
    }
}
// ANCHOR_END: call

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_or_failing_call_is_none_and_reported() {
        let ok = call(Duration::from_secs(1), async { Ok(7) }, |_| {
            panic!("not a failure")
        })
        .await;
        assert_eq!(ok, Some(7));

        let mut why = None;
        let slow = call(
            Duration::from_millis(10),
            std::future::pending::<redis::RedisResult<i32>>(),
            |f| why = Some(f.to_string()),
        )
        .await;
        assert_eq!(slow, None);
        assert_eq!(why.as_deref(), Some("timed out after 10ms"));

        let mut why = None;
        let err = call(
            Duration::from_secs(1),
            async {
                Err::<i32, _>(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "connection refused",
                )))
            },
            |f| why = Some(f.to_string()),
        )
        .await;
        assert_eq!(err, None);
        assert!(why.is_some_and(|w| w.starts_with("failed:")));
    }
}
