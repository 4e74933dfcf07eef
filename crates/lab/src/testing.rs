//! Helpers for the lessons' tests: a request through a router, no socket.
//!
//! `tower::ServiceExt::oneshot` drives the router directly, so a test
//! exercises routing, extractors, handlers and error mapping exactly as a
//! real request would, against the real database behind the state.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Sends `method uri` with an empty body; returns the status and body text.
pub async fn send(router: Router, method: &str, uri: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("{method} {uri} is not a valid request: {e}"));
    let resp = match router.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// `GET uri`, with the body parsed as JSON; a body that is not JSON fails the
/// test with the body in the message.
pub async fn get_json(router: Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let (status, body) = send(router, "GET", uri).await;
    let shown: String = uri.chars().take(60).collect();
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {shown}: the body is not JSON ({e}): {body:?}"));
    (status, json)
}
