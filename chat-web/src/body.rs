//! Request bodies, read with a hard cap whatever the transfer encoding.
//!
//! warp's `body::bytes()`/`json()` gather the whole body, and `content_length_limit` only
//! looks at the Content-Length header (a chunked body has none). Here the body is streamed
//! and refused with 413 as soon as it passes the cap: the rest is never read, and hyper closes
//! the connection instead of reading it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

use crate::error::ApiError;
use crate::handlers::reject;

/// Cap of the small JSON bodies: credentials, a new room, an invitation, a read receipt.
pub const SMALL_JSON: usize = 16 * 1024;
/// Cap of a message body: room for a `MAX_MESSAGE_BYTES` text escaped in JSON (`\u00XX`).
pub const MESSAGE_JSON: usize = crate::MAX_MESSAGE_BYTES * 6 + 4096;

/// Gather `stream` into one buffer of at most `limit` bytes; `BodyTooLarge` as soon as a chunk
/// would pass it, without polling the stream again.
pub async fn read_capped<S, B, E>(stream: S, limit: usize, announced: Option<u64>) -> Result<Bytes, ApiError>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
    E: std::fmt::Display,
{
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::BodyTooLarge(limit));
    }
    // trust the announced length only below the cap, and only to size the first allocation
    let mut body = BytesMut::with_capacity(announced.map_or(0, |n| n as usize).min(limit));
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e}")))?;
        if chunk.remaining() > limit - body.len() {
            return Err(ApiError::BodyTooLarge(limit));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            body.put_slice(part);
            chunk.advance(n);
        }
    }
    Ok(body.freeze())
}

/// The body, at most `limit` bytes (413 past it).
pub fn capped(limit: usize) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .or_else(|_| async { Err::<(Option<u64>,), _>(reject(ApiError::BadRequest("invalid Content-Length".into()))) })
        .and(warp::body::stream())
        .and_then(move |announced: Option<u64>, stream| async move {
            read_capped(stream, limit, announced).await.map_err(reject)
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::stream;

    use super::*;

    fn chunks(n: usize, size: usize) -> Vec<Result<Bytes, std::io::Error>> {
        (0..n).map(|_| Ok(Bytes::from(vec![b' '; size]))).collect()
    }

    #[tokio::test]
    async fn gathers_up_to_the_cap() {
        let body = read_capped(stream::iter(chunks(4, 256)), 1024, None).await.unwrap();
        assert_eq!(body.len(), 1024);
        let body = read_capped(stream::iter(chunks(0, 1)), 1024, Some(0)).await.unwrap();
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn stops_at_the_first_chunk_past_the_cap() {
        let polled = Arc::new(AtomicUsize::new(0));
        let p = polled.clone();
        // an endless body: only the cap ends it
        let endless = stream::repeat_with(move || {
            p.fetch_add(1, Ordering::Relaxed);
            Ok::<_, std::io::Error>(Bytes::from_static(&[b'x'; 1000]))
        });
        let err = read_capped(endless, 4096, None).await.unwrap_err();
        assert!(matches!(err, ApiError::BodyTooLarge(4096)), "{err:?}");
        assert_eq!(polled.load(Ordering::Relaxed), 5, "four chunks fit, the fifth does not, no sixth");
    }

    #[tokio::test]
    async fn refuses_an_announced_length_past_the_cap_before_reading() {
        let never = stream::poll_fn(|_| -> std::task::Poll<Option<Result<Bytes, std::io::Error>>> {
            panic!("the body must not be read")
        });
        assert!(matches!(read_capped(never, 10, Some(11)).await, Err(ApiError::BodyTooLarge(10))));
    }

    #[tokio::test]
    async fn a_broken_body_is_a_bad_request() {
        let broken = stream::iter(vec![Ok(Bytes::from_static(b"{")), Err(std::io::Error::other("reset"))]);
        assert!(matches!(read_capped(broken, 10, None).await, Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
