//! The accept loop: one task per connection; on shutdown every connection is closed with
//! 320 CONNECTION_FORCED and the loop returns once they are gone.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Broker;
use crate::connection;

/// Serve AMQP on `listener` until `shutdown` turns true.
/// How often streams drop what their retention (x-max-age) no longer keeps, besides on append.
const RETENTION_SWEEP: Duration = Duration::from_secs(10);

pub async fn serve(listener: TcpListener, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    let mut retention = tokio::time::interval(RETENTION_SWEEP);
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection::run(stream, peer, broker.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = retention.tick() => broker.enforce_stream_retention(),
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain).await.is_err() {
        tracing::warn!("connections did not close in time; aborting them");
        connections.abort_all();
    }
}
