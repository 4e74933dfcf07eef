//! Wrong: `stale-if-error` left out ("the edge has `proxy_cache_use_stale`
//! for that"). An edge configured to follow the origin's headers, as a CDN
//! usually is, then has no permission to serve an expired copy when the
//! origin fails: the first request after `s-maxage` with the origin down is
//! a 502, though the edge holds a copy a second old.

use axum::response::Response;
use axum_extra::headers::IfNoneMatch;
use lesson_06_http_edge::policy::{Lifetimes, etag_of};

use super::{respond, value};

pub fn cacheable(
    body: Vec<u8>,
    lifetimes: &Lifetimes,
    if_none_match: Option<&IfNoneMatch>,
) -> Response {
    let l = lifetimes;
    let cache_control = value(format!(
        "public, max-age={}, s-maxage={}, stale-while-revalidate={}",
        l.browser.as_secs(),
        l.edge.as_secs(),
        l.stale_while_revalidate.as_secs(),
    ));
    let etag = etag_of(&body);
    respond(cache_control, etag, body, if_none_match)
}
