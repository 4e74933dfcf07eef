//! Bounds on a request body: how many bytes, and how long it may take.
//!
//! hyper reads a body only as fast as the client sends it, and only when the
//! handler asks for it. Without bounds, a client that declares
//! `Content-Length: 100` and sends ten bytes holds its connection (and, once
//! the handler waits on the body, a task) for as long as it likes, and one
//! that sends a gigabyte makes `Json` buffer a gigabyte. [`guard`] wraps
//! every request body so that both end in a JSON error instead.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use http_body_util::Limited;
use tokio::time::Sleep;

use super::ApiError;
use super::slots::Reading;

/// The error a body yields when it did not arrive in time. [`super::json_body`]
/// finds it in a rejection's source chain and answers 408.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(Duration);

/// Whether `err`, or anything in its source chain, is a [`BodyTimedOut`].
pub(crate) fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(err), |e| e.source()).any(|e| e.is::<BodyTimedOut>())
}

/// The per-server bounds [`guard`] applies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

// ANCHOR: guard
/// Middleware: a declared `Content-Length` over the limit is a 413 before a
/// byte of the body is read; otherwise the body is wrapped so that reading
/// more than the limit (a chunked body has no length to check up front)
/// fails as too large, and the whole body must arrive within the timeout.
pub(crate) async fn guard(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return ApiError::PayloadTooLarge(format!(
            "the request body is larger than {} bytes",
            limits.max_bytes
        ))
        .into_response();
    }
    // `Limited` is http-body-util's, and axum's extractors already turn its
    // error into a 413 rejection; the deadline is ours (see `Deadline`).
    let req = req.map(|body| {
        Body::new(Limited::new(
            Deadline {
                body,
                limit: limits.timeout,
                sleep: None,
            },
            limits.max_bytes,
        ))
    });
    next.run(req).await
}
// ANCHOR_END: guard

/// A body that must be read to its end within `limit` of its first read.
///
/// Not tower-http's `RequestBodyTimeoutLayer`: its timer restarts with every
/// frame, so a client trickling one byte a second never trips it. The whole
/// body gets one deadline here. The clock starts the first time the handler
/// has to wait for the body rather than at the request's arrival, so a
/// handler that does other work before reading the body does not spend the
/// client's time.
struct Deadline {
    body: Body,
    limit: Duration,
    // Boxed so that `Deadline` is `Unpin` and needs no pin projection.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let limit = this.limit;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut(limit).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that marks its connection as waiting for it (and so
/// evictable, see `slots.rs`) until it has all arrived.
pub(crate) struct Arriving {
    pub body: hyper::body::Incoming,
    /// `None` once the body is complete (or failed).
    pub reading: Option<Reading>,
}

impl HttpBody for Arriving {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        let done = match &frame {
            Poll::Ready(None | Some(Err(_))) => true,
            Poll::Ready(Some(Ok(_))) => this.body.is_end_stream(),
            Poll::Pending => false,
        };
        if done {
            this.reading = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
