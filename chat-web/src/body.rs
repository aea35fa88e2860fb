//! Request bodies, read with a hard cap whatever the transfer encoding.
//!
//! warp's `body::bytes()`/`json()` gather the whole body, and `content_length_limit` only
//! looks at the Content-Length header (a chunked body has none). Here the body is streamed
//! and refused with 413 as soon as it passes the cap: the rest is never read, and hyper closes
//! the connection instead of reading it.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

use crate::error::ApiError;
use crate::handlers::reject;

/// Cap of the small JSON bodies: credentials, a new room, an invitation, a read receipt.
pub const SMALL_JSON: usize = 16 * 1024;
/// Cap of a message body: room for a `MAX_MESSAGE_BYTES` text escaped in JSON (`\u00XX`).
pub const MESSAGE_JSON: usize = crate::MAX_MESSAGE_BYTES * 6 + 4096;

/// The Content-Length the client announced, if any (400 when it is not a number).
pub fn announced_length() -> impl Filter<Extract = (Option<u64>,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .or_else(|_| async { Err::<(Option<u64>,), _>(reject(ApiError::BadRequest("invalid Content-Length".into()))) })
}

/// The body, at most `limit` bytes (413 past it).
pub fn capped(limit: usize) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    announced_length().and(warp::body::stream()).and_then(move |announced: Option<u64>, stream| async move {
        warren_http::body::read_capped(stream, limit, announced).await.map_err(|e| reject(e.into()))
    })
}

/// Refuse a body that says it is not JSON (415); one without a Content-Type is taken as JSON.
fn json_content_type() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and_then(|ct: Option<String>| async move {
            match ct {
                Some(ct) if !is_json(&ct) => Err(warp::reject::custom(ApiError::UnsupportedMediaType)),
                _ => Ok(()),
            }
        })
        .untuple_one()
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Unprocessable(format!("invalid JSON body: {e}")))
}

/// A JSON body of at most `limit` bytes.
pub fn json<T: DeserializeOwned + Send>(limit: usize) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    json_content_type().and(capped(limit)).and_then(|body: Bytes| async move { parse(&body).map_err(reject) })
}

/// A JSON body of at most `limit` bytes that may be absent (`T::default()`): `curl -X POST` and
/// many HTTP clients send an empty POST with no Content-Length at all.
pub fn optional_json<T: DeserializeOwned + Default + Send>(
    limit: usize,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    json_content_type().and(capped(limit)).and_then(|body: Bytes| async move {
        if body.iter().all(u8::is_ascii_whitespace) { Ok(T::default()) } else { parse(&body).map_err(reject) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
