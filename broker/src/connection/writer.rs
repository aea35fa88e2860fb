//! The writer task: swaps the sink's buffer out and writes it in one go whenever there is
//! something to send, and sends heartbeats when it has been quiet. It shares the socket's write
//! half with the sink, which writes through directly while this task is idle (`writer_busy`
//! tells them apart: bytes are written by one of them at a time, in order).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;

use super::codec;
use crate::sink::ConnectionSink;

/// Largest buffer kept between writes; a bigger one is released after a burst.
const KEEP_CAPACITY: usize = 4 << 20;

pub async fn run(sink: Arc<ConnectionSink>, socket: Arc<OwnedWriteHalf>, heartbeat: Option<Duration>) {
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let finished = {
            let mut st = sink.lock();
            std::mem::swap(&mut st.out, &mut pending);
            st.writer_busy = !pending.is_empty();
            // The writer took everything: queues that stopped at the high-water mark may fill
            // the (now empty) buffer again while this batch is written.
            if st.starved {
                st.starved = false;
                sink.signal_drained();
            }
            st.finished
        };
        if pending.is_empty() {
            if finished {
                break;
            }
            match heartbeat {
                Some(interval) => {
                    if tokio::time::timeout(interval, sink.writer_wakeup()).await.is_err() {
                        // Through the shared buffer, behind whatever write-through left
                        // there: bytes only ever leave from its front, so frames stay whole.
                        codec::write_heartbeat(&mut sink.lock().out);
                    }
                }
                None => sink.writer_wakeup().await,
            }
            continue;
        }
        if let Err(e) = write_all(&socket, &pending).await {
            tracing::debug!(error = %e, "write failed; closing connection");
            let mut st = sink.lock();
            st.closed = true;
            st.socket = None;
            return;
        }
        sink.octets.send.add(pending.len() as u64);
        pending.clear();
        if pending.capacity() > KEEP_CAPACITY {
            pending = Vec::new();
        }
    }
    // Take the socket back from the sink and close our side cleanly.
    sink.lock().socket = None;
    if let Ok(mut socket) = Arc::try_unwrap(socket) {
        let _ = socket.shutdown().await;
    }
}

/// `write_all` through a shared write half.
async fn write_all(socket: &OwnedWriteHalf, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        socket.writable().await?;
        match socket.try_write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
