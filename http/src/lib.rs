//! warren-http: serving warp routes on a listener the caller opened (the binary opens every listener the same
//! way, dual stack by default), over HTTP or HTTPS. Each request carries the client's address
//! as a [`ClientAddr`] extension: the rate limits key on it.
//!
//! warp's own servers bind their sockets themselves, so hyper serves here, with warp's filters
//! as the service; WebSocket upgrades work as under warp's server.

pub mod body;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::hyper::server::accept;
use warp::hyper::server::conn::{AddrIncoming, AddrStream};
use warp::hyper::service::{Service, make_service_fn};
use warp::{Reply, hyper};

/// A client has this long to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS connections handshaken and not yet taken by the server.
const TLS_READY_QUEUE: usize = 64;

/// The address of the client that sent a request, put in its extensions by the server.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// The client's address: the one a server of this module put in the request, else warp's own
/// (`warp::test` requests, a `warp::serve` server).
pub fn remote() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<ClientAddr>()
        .and(warp::addr::remote())
        .map(|ours: Option<ClientAddr>, warps: Option<SocketAddr>| ours.map(|a| a.0).or(warps))
}

/// Why HTTPS could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the listener has no address: {0}")]
    Listener(#[source] io::Error),
    #[error("the HTTPS certificate (PEM): {0}")]
    Certificate(String),
    #[error("the HTTPS key (PEM): {0}")]
    Key(String),
    #[error("the HTTPS certificate and key: {0}")]
    Tls(#[from] rustls::Error),
}

type Routes = BoxedFilter<(Box<dyn Reply>,)>;

/// An IPv4 client of a dual-stack listener (`::ffff:a.b.c.d`) as the IPv4 address it is.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The routes as a hyper service for one connection from `client`: each request gets the
/// client's address.
#[derive(Clone)]
struct WithClient<S> {
    routes: S,
    client: SocketAddr,
}

impl<S: Service<hyper::Request<hyper::Body>>> Service<hyper::Request<hyper::Body>> for WithClient<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.routes.poll_ready(cx)
    }

    fn call(&mut self, mut request: hyper::Request<hyper::Body>) -> Self::Future {
        request.extensions_mut().insert(ClientAddr(self.client));
        self.routes.call(request)
    }
}

/// Serve `routes` over HTTP on `listener` until `shutdown` resolves; then finish the requests
/// under way. Returns the address served and the server's future.
pub fn http(
    listener: TcpListener,
    routes: Routes,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), ServeError> {
    let addr = listener.local_addr().map_err(ServeError::Listener)?;
    let mut incoming = AddrIncoming::from_listener(listener).map_err(|e| ServeError::Listener(io::Error::other(e)))?;
    incoming.set_nodelay(true);
    let routes = warp::service(routes);
    let make = make_service_fn(move |conn: &AddrStream| {
        let service = WithClient { routes: routes.clone(), client: canonical(conn.remote_addr()) };
        async move { Ok::<_, Infallible>(service) }
    });
    let server = hyper::Server::builder(incoming).serve(make).with_graceful_shutdown(shutdown);
    Ok((addr, async move {
        if let Err(e) = server.await {
            tracing::error!("chat HTTP server: {e}");
        }
    }))
}

/// Serve `routes` over HTTPS on `listener`, with the certificate chain and key in `cert_pem`
/// and `key_pem`, until `shutdown` turns true.
pub fn https(
    listener: TcpListener,
    cert_pem: &[u8],
    key_pem: &[u8],
    routes: Routes,
    shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send + 'static), ServeError> {
    let addr = listener.local_addr().map_err(ServeError::Listener)?;
    let acceptor = TlsAcceptor::from(server_config(cert_pem, key_pem)?);
    let (ready_tx, ready_rx) = mpsc::channel(TLS_READY_QUEUE);
    tokio::spawn(accept_tls(listener, acceptor, ready_tx, shutdown.clone()));
    let incoming = accept::from_stream(tokio_stream::wrappers::ReceiverStream::new(ready_rx));
    let routes = warp::service(routes);
    let make = make_service_fn(move |conn: &TlsConnection| {
        let service = WithClient { routes: routes.clone(), client: canonical(conn.client) };
        async move { Ok::<_, Infallible>(service) }
    });
    let mut shutdown = shutdown;
    let signal = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let server = hyper::Server::builder(incoming).serve(make).with_graceful_shutdown(signal);
    Ok((addr, async move {
        if let Err(e) = server.await {
            tracing::error!("chat HTTPS server: {e}");
        }
    }))
}

/// The rustls configuration for HTTPS: no client certificates; HTTP/2 or HTTP/1.1 by ALPN.
fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServeError::Certificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(ServeError::Certificate("no certificate (BEGIN CERTIFICATE)".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| ServeError::Key(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accept TCP connections and hand each to the server once its TLS handshake is done (each
/// handshake in a task of its own, so a slow client holds up no one), until `shutdown` turns
/// true or the server stops taking connections.
async fn accept_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<io::Result<TlsConnection>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = ready.closed() => return,
        };
        let (tcp, client) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // out of file descriptors, say: wait rather than spin
                tracing::warn!("chat HTTPS: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = ready.send(Ok(TlsConnection { stream, client })).await;
                }
                Ok(Err(e)) => tracing::debug!(%client, "chat HTTPS: TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%client, "chat HTTPS: TLS handshake timed out"),
            }
        });
    }
}

/// A TLS connection and the address of its client.
struct TlsConnection {
    stream: TlsStream<TcpStream>,
    client: SocketAddr,
}

impl AsyncRead for TlsConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
