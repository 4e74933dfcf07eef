//! Exercise 6's reference answer: the caching part of the lesson's
//! `GET /users/{id}`, without `Last-Modified` and `CDN-Cache-Control`,
//! which the exercise does not require.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::headers::{HeaderMapExt, IfNoneMatch};
use lesson_06_http_edge::policy::{Lifetimes, NO_STORE, etag_of};

/// The user's JSON `body`, with headers that let browsers and the edge keep
/// it for the `lifetimes` given, and revalidate it for the price of a 304.
pub fn cacheable(
    body: Vec<u8>,
    lifetimes: &Lifetimes,
    if_none_match: Option<&IfNoneMatch>,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, cache_control(lifetimes));

    // The tag is a hash of the bytes sent: equal bodies, equal tags, and any
    // change to the user (a new name) is a new tag, with nothing to bump.
    let etag = etag_of(&body);
    headers.typed_insert(etag.clone());

    // `precondition_passes` answers "should the full response be sent?":
    // `false` when the client's list names this tag (or is `*`), which is
    // exactly when the client already holds these bytes. A 304 carries the
    // same validators and lifetimes as the 200 would (RFC 9110 §15.4.5): the
    // cache that asked refreshes its copy's freshness from them.
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

/// `public`: any cache may store it, shared ones too (it is the same for
/// every user); `max-age` for browsers, `s-maxage` for the edge, which
/// reads it instead of `max-age`; then how long past that an expired copy
/// may still be served: while one background request refreshes it
/// (`stale-while-revalidate`), or while the origin fails (`stale-if-error`).
fn cache_control(l: &Lifetimes) -> HeaderValue {
    let text = format!(
        "public, max-age={}, s-maxage={}, stale-while-revalidate={}, stale-if-error={}",
        l.browser.as_secs(),
        l.edge.as_secs(),
        l.stale_while_revalidate.as_secs(),
        l.stale_if_error.as_secs()
    );
    // Letters, digits, commas and spaces: always a valid value. The fallback
    // is the safe one: a header that cannot be written caches nothing.
    HeaderValue::from_str(&text).unwrap_or(NO_STORE)
}
