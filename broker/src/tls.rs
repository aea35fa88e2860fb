//! AMQPS: TLS on a listener of its own, as RabbitMQ's `listeners.ssl.default` with
//! `ssl_options.certfile`, `keyfile`, `cacertfile`, `verify` and `fail_if_no_peer_cert`.
//!
//! [`Tls::load`] reads and checks the PEM files once, at start-up, so a bad certificate or
//! key stops the broker with a clear [`TlsError`] instead of failing each client. Each
//! accepted socket then gets [`Tls::serve`] in a task of its own: the TLS handshake (bounded by
//! `handshake_timeout`, RabbitMQ's `ssl_handshake_timeout`), then a relay that decrypts into
//! one end of a Unix socket pair while the ordinary connection code runs on the other end.
//!
//! Why a socket pair: the connection reads and writes with readiness plus non-blocking
//! `try_read`/`try_write`, and queues write through to the socket from their own tasks under
//! the sink's lock (see [`crate::sink`]); that needs a file descriptor, not a `TlsStream`
//! (which buffers records and cannot be written from two tasks). So TLS is terminated beside
//! the connection, as RabbitMQ's `ssl` application runs each TLS connection in a process of
//! its own and hands the reader plaintext. The connection's end of the pair is given to it as
//! a `tokio::net::TcpStream` built on the Unix socket's descriptor ([`socket_pair`]): every
//! call the connection code makes on its stream (recv, send, readiness, shutdown, split) is the
//! same system call on a Unix stream socket, so the plain TCP path stays exactly as it was,
//! with no enum or trait object in it. (Calls that are TCP-only, `peer_addr` or `set_nodelay`,
//! would return an error on it; the connection makes none, and gets the client's address as
//! an argument.)
//!
//! rustls (through tokio-rustls) rather than OpenSSL: no system library to link or to match at
//! run time, memory-safe parsing of what unauthenticated clients send, TLS 1.2 and 1.3 with
//! safe defaults only, and the `ring` provider builds with nothing but a C compiler.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::Broker;
use crate::connection;

/// RabbitMQ's `ssl_handshake_timeout` default (the AMQP handshake's own 10 s come after it).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closed connection's relay may take to pass its last bytes (connection.close-ok)
/// to a client that does not read them.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// One TLS record's worth of plaintext (16 KiB) a direction.
const RELAY_BUF: usize = 16 * 1024;

/// Where the certificate, key and trusted CAs are, and how clients are checked.
#[derive(Clone, Debug)]
pub struct TlsOptions {
    /// The server's certificate chain, PEM, leaf first (`ssl_options.certfile`).
    pub cert: PathBuf,
    /// Its private key, PEM: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) (`ssl_options.keyfile`).
    pub key: PathBuf,
    /// CA certificates trusted to sign client certificates, PEM (`ssl_options.cacertfile`).
    pub ca: Option<PathBuf>,
    /// Ask clients for a certificate and check it against `ca` (`verify = verify_peer`).
    pub verify_peer: bool,
    /// Refuse clients without a certificate (`fail_if_no_peer_cert = true`).
    pub fail_if_no_peer_cert: bool,
    /// A client must finish the TLS handshake within this (`ssl_handshake_timeout`).
    pub handshake_timeout: Duration,
}

impl TlsOptions {
    /// Certificate and key, no client certificates, the default handshake timeout.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsOptions {
            cert: cert.into(),
            key: key.into(),
            ca: None,
            verify_peer: false,
            fail_if_no_peer_cert: false,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {path}: {error}")]
    Read { what: &'static str, path: PathBuf, error: std::io::Error },
    #[error("the TLS {what} {path} is not valid PEM: {detail}")]
    Pem { what: &'static str, path: PathBuf, detail: String },
    #[error("the TLS {what} {path} holds no {expected}")]
    Empty { what: &'static str, path: PathBuf, expected: &'static str },
    #[error("the CA certificate in {path} is not usable: {error}")]
    BadCa { path: PathBuf, error: rustls::Error },
    #[error("the certificate {cert} and the key {key} cannot be used together: {error}")]
    BadPair { cert: PathBuf, key: PathBuf, error: rustls::Error },
    #[error("client certificate verification: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("{0}")]
    Options(&'static str),
    #[error("TLS set-up: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A loaded TLS configuration: cheap to share between connections.
#[derive(Debug)]
pub struct Tls {
    config: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
}

fn pem_error(what: &'static str, path: &Path, e: rustls::pki_types::pem::Error) -> TlsError {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(error) => TlsError::Read { what, path: path.to_owned(), error },
        Error::NoItemsFound => TlsError::Empty { what, path: path.to_owned(), expected: "PEM item of the right kind" },
        other => TlsError::Pem { what, path: path.to_owned(), detail: other.to_string() },
    }
}

/// Every certificate in a PEM file (at least one).
pub fn read_certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, path, e))?;
    if certs.is_empty() {
        return Err(TlsError::Empty { what, path: path.to_owned(), expected: "certificate (BEGIN CERTIFICATE)" });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            what: "key",
            path: path.to_owned(),
            expected: "private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
        },
        e => pem_error("key", path, e),
    })
}

impl Tls {
    /// Read and check the files named in `options`.
    pub fn load(options: &TlsOptions) -> Result<Tls, TlsError> {
        if options.fail_if_no_peer_cert && !options.verify_peer {
            return Err(TlsError::Options(
                "fail_if_no_peer_cert (--tls-fail-if-no-peer-cert) needs verify_peer (--tls-verify-peer)",
            ));
        }
        let certs = read_certificates("certificate", &options.cert)?;
        let key = read_key(&options.key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
        let builder = if options.verify_peer {
            let Some(ca) = &options.ca else {
                return Err(TlsError::Options(
                    "verify_peer (--tls-verify-peer) needs cacertfile (--tls-ca), the CAs that sign client certificates",
                ));
            };
            let mut roots = RootCertStore::empty();
            for cert in read_certificates("CA certificate", ca)? {
                roots.add(cert).map_err(|error| TlsError::BadCa { path: ca.clone(), error })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if options.fail_if_no_peer_cert {
                verifier.build()?
            } else {
                verifier.allow_unauthenticated().build()?
            };
            builder.with_client_cert_verifier(verifier)
        } else {
            if let Some(ca) = &options.ca {
                // Read anyway, so a typo shows now rather than when verification is turned on.
                read_certificates("CA certificate", ca)?;
                tracing::info!(
                    "TLS: client certificates are not requested (verify_none); {} is unused without --tls-verify-peer",
                    ca.display()
                );
            }
            builder.with_no_client_auth()
        };
        let config = builder.with_single_cert(certs, key).map_err(|error| TlsError::BadPair {
            cert: options.cert.clone(),
            key: options.key.clone(),
            error,
        })?;
        Ok(Tls { config: Arc::new(config), handshake_timeout: options.handshake_timeout })
    }

    /// The rustls configuration (for another TLS listener on the same certificate).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }

    /// One AMQPS client, to the end: the TLS handshake (given up after the handshake timeout,
    /// or at shutdown), then the AMQP connection over a relay.
    pub async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        broker: Arc<Broker>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let acceptor = TlsAcceptor::from(self.config.clone());
        let handshake = tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream));
        let tls_stream = tokio::select! {
            done = handshake => match done {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, timeout_ms = self.handshake_timeout.as_millis(), "TLS handshake timed out");
                    return;
                }
            },
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let (plain, relay_end) = match socket_pair() {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "no socket pair for a TLS connection");
                return;
            }
        };
        tracing::debug!(%peer, "TLS handshake done");
        let conn = connection::run(plain, peer, broker, shutdown);
        let relay = relay(tls_stream, relay_end);
        tokio::pin!(conn, relay);
        tokio::select! {
            _ = &mut conn => {
                // The connection closed its end: let the relay pass on what it wrote last.
                let _ = tokio::time::timeout(CLOSE_GRACE, relay).await;
            }
            _ = &mut relay => conn.await,
        }
    }
}

/// A connected pair of Unix stream sockets: the connection's end as a `TcpStream` (see the
/// module docs), the relay's end as what it is.
fn socket_pair() -> std::io::Result<(TcpStream, UnixStream)> {
    let (conn_end, relay_end) = std::os::unix::net::UnixStream::pair()?;
    conn_end.set_nonblocking(true)?;
    relay_end.set_nonblocking(true)?;
    let conn_end = std::net::TcpStream::from(std::os::fd::OwnedFd::from(conn_end));
    Ok((TcpStream::from_std(conn_end)?, UnixStream::from_std(relay_end)?))
}

/// Pass plaintext between the TLS stream and the connection's socket until the connection
/// closes its end; the client closing its end (or failing) shows the connection an EOF.
async fn relay<S: AsyncRead + AsyncWrite + Unpin>(tls: S, plain: UnixStream) {
    let (mut tls_rd, mut tls_wr) = tokio::io::split(tls);
    let (mut plain_rd, plain_wr) = plain.into_split();
    let up = async move {
        let mut plain_wr = plain_wr;
        if let Err(e) = pump(&mut tls_rd, &mut plain_wr).await {
            tracing::debug!(error = %e, "TLS read ended");
        }
        // dropping the write half shuts it down: the connection reads EOF
    };
    let down = async move {
        match pump(&mut plain_rd, &mut tls_wr).await {
            // close_notify, then FIN
            Ok(()) => {
                let _ = tls_wr.shutdown().await;
            }
            Err(e) => tracing::debug!(error = %e, "TLS write ended"),
        }
    };
    tokio::pin!(up, down);
    let mut up_done = false;
    loop {
        tokio::select! {
            _ = &mut up, if !up_done => up_done = true,
            _ = &mut down => break,
        }
    }
}

/// Copy until EOF, flushing after each read (a TLS writer holds records until flushed).
async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(from: &mut R, to: &mut W) -> std::io::Result<()> {
    let mut buf = vec![0u8; RELAY_BUF];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
    }
}
