//! The accept loops: one task per connection; on shutdown every connection is closed with
//! 320 CONNECTION_FORCED and the loop returns once they are gone. `serve` is the AMQP
//! listener, `serve_tls` the AMQPS one (its TLS handshakes run in the connections' tasks, never
//! in the loop).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Broker;
use crate::connection;
use crate::tls::Tls;

/// How often streams drop what their retention (x-max-age) no longer keeps, besides on append.
const RETENTION_SWEEP: Duration = Duration::from_secs(10);

/// Serve AMQP on `listener` until `shutdown` turns true; also sweeps stream retention and
/// samples message rates.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    accept_loop(listener, broker, shutdown, None).await;
}

/// Serve AMQPS (AMQP over TLS, RabbitMQ's `listeners.ssl`) on `listener` until `shutdown`
/// turns true. Run beside [`serve`], which also sweeps stream retention.
pub async fn serve_tls(listener: TcpListener, tls: Arc<Tls>, broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    accept_loop(listener, broker, shutdown, Some(tls)).await;
}

async fn accept_loop(
    listener: TcpListener,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
    tls: Option<Arc<Tls>>,
) {
    let mut connections = JoinSet::new();
    let mut retention = tokio::time::interval(RETENTION_SWEEP);
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let sweep = tls.is_none();
    let mut rates = tokio::time::interval(crate::stats::SAMPLE_EVERY);
    rates.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    // An IPv4 client of a dual-stack listener is ::ffff:a.b.c.d: name it a.b.c.d
                    // (for loopback_users, logs and listings, as RabbitMQ shows it).
                    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                    spawn_connection(&mut connections, stream, peer, &broker, &shutdown, tls.as_ref());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = retention.tick(), if sweep => broker.enforce_stream_retention(),
            _ = rates.tick(), if sweep => broker.sample_rates(),
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

fn spawn_connection(
    connections: &mut JoinSet<()>,
    stream: TcpStream,
    peer: SocketAddr,
    broker: &Arc<Broker>,
    shutdown: &watch::Receiver<bool>,
    tls: Option<&Arc<Tls>>,
) {
    match tls {
        None => {
            connections.spawn(connection::run(stream, peer, broker.clone(), shutdown.clone()));
        }
        Some(tls) => {
            connections.spawn(tls.clone().serve(stream, peer, broker.clone(), shutdown.clone()));
        }
    }
}
