//! The writer task: owns the socket's write half, swaps the sink's buffer out and writes it in
//! one go whenever there is something to send, and sends heartbeats when it has been quiet.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;

use super::codec;
use crate::sink::ConnectionSink;

/// Largest buffer kept between writes; a bigger one is released after a burst.
const KEEP_CAPACITY: usize = 4 << 20;

pub async fn run(sink: Arc<ConnectionSink>, mut socket: OwnedWriteHalf, heartbeat: Option<Duration>) {
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let finished = {
            let mut st = sink.lock();
            std::mem::swap(&mut st.out, &mut pending);
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
                        codec::write_heartbeat(&mut pending);
                    }
                }
                None => sink.writer_wakeup().await,
            }
            if pending.is_empty() {
                continue;
            }
        }
        if let Err(e) = socket.write_all(&pending).await {
            tracing::debug!(error = %e, "write failed; closing connection");
            sink.lock().closed = true;
            return;
        }
        pending.clear();
        if pending.capacity() > KEEP_CAPACITY {
            pending = Vec::new();
        }
    }
    let _ = socket.shutdown().await;
}
