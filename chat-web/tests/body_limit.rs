//! Request bodies are capped whatever the transfer encoding: a 100 MB chunked body (no
//! Content-Length) is refused with 413 after a few KiB, and the server's memory does not grow.
//!
//! The server runs in this test process (its own binary, so no other test shares its memory),
//! which reads its own VmRSS. The client writes from one reused buffer.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HUNDRED_MB: u64 = 100 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// This process's resident set, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The highest RSS seen while `work` runs (sampled every 2 ms), minus the RSS before it.
async fn rss_growth<T>(work: impl Future<Output = T>) -> (T, u64) {
    let before = rss_kib();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let out = work.await;
    peak.fetch_max(rss_kib(), Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    (out, peak.load(Ordering::Relaxed).saturating_sub(before))
}

struct Refused {
    status: u16,
    body: Value,
    /// Body bytes the server let the client write before it answered and closed.
    sent: u64,
}

/// POST `path` with a body of `total` bytes of JSON whitespace, chunked (no Content-Length),
/// or with `Content-Length: total` when `announce`; read the answer while writing.
async fn post_huge(base: &str, path: &str, token: Option<&str>, total: u64, announce: bool) -> Refused {
    let addr = base.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n");
    if let Some(t) = token {
        head += &format!("Authorization: Bearer {t}\r\n");
    }
    head += &if announce {
        format!("Content-Length: {total}\r\n\r\n")
    } else {
        "Transfer-Encoding: chunked\r\n\r\n".into()
    };
    let sent = Arc::new(AtomicU64::new(0));
    let writer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            wr.write_all(head.as_bytes()).await?;
            let mut frame = Vec::with_capacity(CHUNK + 16);
            if !announce {
                frame.extend_from_slice(format!("{CHUNK:x}\r\n").as_bytes());
            }
            frame.extend(std::iter::repeat_n(b' ', CHUNK));
            if !announce {
                frame.extend_from_slice(b"\r\n");
            }
            while sent.load(Ordering::Relaxed) < total {
                wr.write_all(&frame).await?;
                sent.fetch_add(CHUNK as u64, Ordering::Relaxed);
            }
            if !announce {
                wr.write_all(b"0\r\n\r\n").await?;
            }
            Ok::<_, std::io::Error>(())
        })
    };
    // read until the answer is complete (or the server closes)
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let complete = |a: &[u8]| {
        let Some(end) = a.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
        let head = String::from_utf8_lossy(&a[..end]).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        a.len() >= end + 4 + len
    };
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while !complete(&answer) {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 30 s");
    writer.abort();
    let text = String::from_utf8_lossy(&answer).into_owned();
    // 0: no answer at all
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    Refused { status, body: serde_json::from_str(body).unwrap_or(Value::Null), sent: sent.load(Ordering::Relaxed) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_megabyte_body_is_refused_without_reading_it() {
    let c = common::chat().await;
    let (_, token) = c.user("big").await;
    let room = c.room(&token, true).await["id"].as_str().unwrap().to_owned();
    let routes = [
        ("/api/register".to_owned(), None),
        ("/api/login".to_owned(), None),
        ("/api/rooms".to_owned(), Some(token.as_str())),
        (format!("/api/rooms/{room}/join"), Some(token.as_str())),
        (format!("/api/rooms/{room}/messages"), Some(token.as_str())),
        (format!("/api/rooms/{room}/read"), Some(token.as_str())),
    ];
    // warm up: the allocator's arenas, hyper's buffers
    for (path, token) in &routes {
        post_huge(&c.base, path, *token, 1024 * 1024, false).await;
    }
    for (path, token) in &routes {
        for announce in [false, true] {
            let (r, grew) = rss_growth(post_huge(&c.base, path, *token, HUNDRED_MB, announce)).await;
            let how = if announce { "with Content-Length" } else { "chunked" };
            eprintln!("POST {path} {how}: {} after {} KiB written, RSS +{grew} KiB", r.status, r.sent / 1024);
            // the server stopped reading: what got through is the cap plus socket buffers
            assert!(r.sent < 32 * 1024 * 1024, "POST {path} {how}: the server read {} MiB", r.sent >> 20);
            assert!(grew < 4 * 1024, "POST {path} {how}: RSS grew by {grew} KiB");
            assert_eq!(r.status, 413, "POST {path} {how}: {}", r.body);
            assert_eq!(r.body["error"], "too_large", "POST {path} {how}");
            assert_eq!(r.body["status"], 413);
        }
    }
    // the server is fine: a normal request right after
    let r =
        c.req("POST", &format!("/api/rooms/{room}/messages"), Some(&token), Some(json!({"text": "still here"}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // a message body just under the cap is fine, chunked or not
    let text = "y".repeat(64 * 1024);
    let r = c.req("POST", &format!("/api/rooms/{room}/messages"), Some(&token), Some(json!({"text": text}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
}
