//! Wrong: `precondition_passes` read the wrong way round. It answers "may
//! the request go on as if unconditional?", so `true` means the client's
//! tag does NOT match: send the body. This variant answers 304 exactly
//! then, to a client holding an old page (it keeps it), and the full body
//! to the one that already has it (the bytes a 304 would have saved).
//! Without `If-None-Match` it is right, which is why it survives a quick
//! look with curl.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::headers::{HeaderMapExt, IfNoneMatch};
use lesson_06_http_edge::policy::{Lifetimes, etag_of};

use super::cache_control;

pub fn cacheable(
    body: Vec<u8>,
    lifetimes: &Lifetimes,
    if_none_match: Option<&IfNoneMatch>,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, cache_control(lifetimes));
    let etag = etag_of(&body);
    headers.typed_insert(etag.clone());
    // "The precondition passes: the tag matched, so nothing changed."
    if let Some(inm) = if_none_match
        && inm.precondition_passes(&etag)
    {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (headers, body).into_response()
}
