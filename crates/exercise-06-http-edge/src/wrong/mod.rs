//! Spoilers: plausible wrong answers to this exercise, each complete, each
//! caught by the tests. CI runs the tests against every one (`--features
//! wrong-<name>`) and fails if one passes. Read them after you are done.
//!
//! What they all get right is shared below, so each file shows only its
//! own mistake in full.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::headers::{ETag, HeaderMapExt, IfNoneMatch};
use lesson_06_http_edge::policy::{Lifetimes, NO_STORE};

pub mod inverted_if_none_match;
pub mod no_stale_if_error;
pub mod private;
pub mod version_etag;

/// The right `Cache-Control`, for the variants whose mistake is elsewhere.
fn cache_control(l: &Lifetimes) -> HeaderValue {
    value(format!(
        "public, max-age={}, s-maxage={}, stale-while-revalidate={}, stale-if-error={}",
        l.browser.as_secs(),
        l.edge.as_secs(),
        l.stale_while_revalidate.as_secs(),
        l.stale_if_error.as_secs()
    ))
}

fn value(text: String) -> HeaderValue {
    HeaderValue::from_str(&text).unwrap_or(NO_STORE)
}

/// The right answer for the headers given: 304 without a body when the
/// client holds `etag`, else the 200.
fn respond(
    cache_control: HeaderValue,
    etag: ETag,
    body: Vec<u8>,
    if_none_match: Option<&IfNoneMatch>,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, cache_control);
    headers.typed_insert(etag.clone());
    if let Some(inm) = if_none_match
        && !inm.precondition_passes(&etag)
    {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (headers, body).into_response()
}
