//! Wrong: "a user's profile is personal data, so `private`". `private`
//! forbids every *shared* cache from storing the response, the edge first:
//! nginx passes each request to the origin (`X-Cache-Status: MISS` every
//! time), however long `s-maxage` says. Personal is not per-user: this page
//! is the same for everyone who asks, so it is `public`. `private` belongs
//! on a response that differs per requester, like the lesson's `GET /me`.

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
        "private, max-age={}, s-maxage={}, stale-while-revalidate={}, stale-if-error={}",
        l.browser.as_secs(),
        l.edge.as_secs(),
        l.stale_while_revalidate.as_secs(),
        l.stale_if_error.as_secs()
    ));
    let etag = etag_of(&body);
    respond(cache_control, etag, body, if_none_match)
}
