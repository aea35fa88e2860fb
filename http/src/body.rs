//! Request bodies read with a hard cap, whatever the transfer encoding: warp's
//! `content_length_limit` looks only at Content-Length (a chunked body has none), so the body
//! is streamed here and refused as soon as it passes the cap; the rest is never read.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

/// Why a body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// Longer than the cap (413).
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// The stream failed (400).
    #[error("cannot read the request body: {0}")]
    Read(String),
}

/// Gather `stream` into one buffer of at most `limit` bytes; `TooLarge` before reading when
/// the announced length passes the cap, and as soon as a chunk would, without polling the
/// stream again.
pub async fn read_capped<S, B, E>(stream: S, limit: usize, announced: Option<u64>) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
    E: std::fmt::Display,
{
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    // trust the announced length only below the cap, and only to size the first allocation
    let mut body = BytesMut::with_capacity(announced.map_or(0, |n| n as usize).min(limit));
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if chunk.remaining() > limit - body.len() {
            return Err(BodyError::TooLarge(limit));
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
        assert_eq!(read_capped(endless, 4096, None).await, Err(BodyError::TooLarge(4096)));
        assert_eq!(polled.load(Ordering::Relaxed), 5, "four chunks fit, the fifth does not, no sixth");
    }

    #[tokio::test]
    async fn refuses_an_announced_length_past_the_cap_before_reading() {
        let never = stream::poll_fn(|_| -> std::task::Poll<Option<Result<Bytes, std::io::Error>>> {
            panic!("the body must not be read")
        });
        assert_eq!(read_capped(never, 10, Some(11)).await, Err(BodyError::TooLarge(10)));
    }

    #[tokio::test]
    async fn a_broken_body_is_a_read_error() {
        let broken = stream::iter(vec![Ok(Bytes::from_static(b"{")), Err(std::io::Error::other("reset"))]);
        assert!(matches!(read_capped(broken, 10, None).await, Err(BodyError::Read(_))));
    }
}
