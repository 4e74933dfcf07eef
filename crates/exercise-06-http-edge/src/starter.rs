//! Your code goes here. `just exercise-6` runs the tests against it;
//! `just hint-6 1` prints the first hint (HINTS.md has four).

// These are the imports your code will need. Until it uses them the
// compiler would warn about each; delete this line when you are done.
#![allow(unused_imports)]

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
// `headers.typed_insert(etag)` puts a typed header into a `HeaderMap`.
use axum_extra::headers::{HeaderMapExt, IfNoneMatch};
// `etag_of(&body)`: a strong `ETag` (a hash of the bytes, quoted);
// `NO_STORE`, a valid `HeaderValue` to fall back on if yours is not one.
use lesson_06_http_edge::policy::{Lifetimes, NO_STORE, etag_of};

/// The user's JSON `body`, with headers that let browsers and the edge keep
/// it for the `lifetimes` given, and revalidate it for the price of a 304.
pub fn cacheable(
    body: Vec<u8>,
    lifetimes: &Lifetimes,
    if_none_match: Option<&IfNoneMatch>,
) -> Response {
    // TODO 1: Cache-Control for a shared cache, written from the fields of
    //         `lifetimes` (each a `Duration`: `.as_secs()`), one directive each:
    //         `public`; `max-age=` the browser's lifetime (`lifetimes.browser`);
    //         `s-maxage=` the edge's (`lifetimes.edge`);
    //         `stale-while-revalidate=` and `stale-if-error=` (the two stale windows).
    //         Directives are separated by ", ". `HeaderValue::from_str(&text)`
    //         makes it a header value (it fails only on control characters).
    //         Write it yourself rather than calling `lifetimes.cache_control()`:
    //         that is the lesson's answer.
    // TODO 2: a strong ETag from the body: `let etag = etag_of(&body);`, then
    //         `headers.typed_insert(etag.clone())`.
    // TODO 3: the client already has this body when its `If-None-Match` names
    //         `etag`. `inm.precondition_passes(&etag)` (its docs say little)
    //         answers RFC 9110's question for that header: "none of the tags
    //         the client sent is this one: may the GET go on as usual?".
    //         Decide which answer means the client holds these bytes. Then
    //         answer 304 with NO body, and with the same ETag and
    //         Cache-Control a 200 would carry:
    //         `(StatusCode::NOT_MODIFIED, headers).into_response()`.
    //         (`if_none_match` is `None` when the request has no such header.)
    // TODO 4: otherwise the 200 with the body, its Content-Type, and the same
    //         headers: `(headers, body).into_response()`.
    let _ = (lifetimes, if_none_match);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
