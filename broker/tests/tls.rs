//! AMQPS: lapin over TLS to the in-process broker, with a CA and certificates each test makes
//! itself (rcgen): a round trip, client certificates (verify_peer, fail_if_no_peer_cert), a
//! client that never starts the handshake, clients that must be refused, and the errors of
//! bad files at start-up.

mod common;
#[path = "../../tests/common/pki.rs"]
#[allow(dead_code)]
mod pki;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rcgen::KeyPair;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use warren_broker::tls::{Tls, TlsError, TlsOptions};
use warren_broker::{Broker, BrokerConfig};

use common::WAIT;
use pki::Pki;

/// What these tests need of the shared test PKI: the broker's TLS options and lapin's client
/// configurations.
trait PkiExt {
    fn options(&self) -> TlsOptions;
    fn client(&self) -> OwnedTLSConfig;
    fn client_with_certificate(&self) -> OwnedTLSConfig;
}

impl PkiExt for Pki {
    fn options(&self) -> TlsOptions {
        TlsOptions::new(self.cert(), self.key())
    }

    /// Trust our CA, no client certificate.
    fn client(&self) -> OwnedTLSConfig {
        OwnedTLSConfig { identity: None, cert_chain: Some(self.ca_pem.clone()) }
    }

    fn client_with_certificate(&self) -> OwnedTLSConfig {
        OwnedTLSConfig {
            identity: Some(OwnedIdentity::PKCS8 {
                pem: self.client_cert_pem.clone().into_bytes(),
                key: self.client_key_pem.clone().into_bytes(),
            }),
            cert_chain: Some(self.ca_pem.clone()),
        }
    }
}

/// An in-memory broker with only an AMQPS listener on 127.0.0.1:0.
struct TlsBroker {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl TlsBroker {
    async fn start(options: &TlsOptions) -> TlsBroker {
        let tls = Arc::new(Tls::load(options).expect("load TLS"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (shutdown, rx) = watch::channel(false);
        let broker = Broker::new(BrokerConfig::default());
        let server = tokio::spawn(warren_broker::serve_tls(listener, tls, broker, rx));
        TlsBroker { addr, shutdown, server }
    }

    fn url(&self) -> String {
        format!("amqps://guest:guest@127.0.0.1:{}/%2f", self.addr.port())
    }

    async fn connect(&self, tls: OwnedTLSConfig) -> lapin::Result<Connection> {
        let runtime = lapin::runtime::default_runtime()?;
        let url = self.url();
        let connect = Connection::connect_with_config(&url, ConnectionProperties::default(), tls, runtime);
        tokio::time::timeout(WAIT, connect).await.expect("connect in time")
    }

    async fn stop(self) {
        let _ = self.shutdown.send(true);
        tokio::time::timeout(WAIT, self.server).await.expect("server stops").expect("server task");
    }
}

#[tokio::test]
async fn amqps_round_trip_with_lapin() {
    let pki = Pki::new();
    let broker = TlsBroker::start(&pki.options()).await;
    let conn = broker.connect(pki.client()).await.expect("AMQPS connection");
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default()).await.expect("confirms");
    let q = ch.queue_declare("".into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("queue");
    // small and larger than a TLS record (16 KiB) and than frame_max (128 KiB)
    let bodies: Vec<Vec<u8>> = vec![b"hello over TLS".to_vec(), vec![7u8; 40_000], vec![9u8; 1 << 20]];
    for body in &bodies {
        let confirm = ch
            .basic_publish(
                "".into(),
                q.name().clone(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack());
    }
    let mut consumer = ch
        .basic_consume(q.name().clone(), "c".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .expect("consume");
    for body in &bodies {
        let delivery = tokio::time::timeout(WAIT, consumer.next()).await.expect("delivery in time").expect("delivery");
        let delivery = delivery.expect("delivery ok");
        assert_eq!(&delivery.data, body);
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
    conn.close(200, "bye".into()).await.expect("close");
    broker.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let pki = Pki::new();
    let broker = TlsBroker::start(&pki.options()).await;
    // the system's roots only: our test CA is unknown to them
    let err = broker.connect(OwnedTLSConfig::default()).await.expect_err("untrusted certificate");
    assert!(format!("{err:?}").to_lowercase().contains("certificate"), "{err:?}");
    broker.stop().await;
}

#[tokio::test]
async fn plain_amqp_on_the_tls_port_is_dropped() {
    let pki = Pki::new();
    let broker = TlsBroker::start(&pki.options()).await;
    let mut s = TcpStream::connect(broker.addr).await.expect("connect");
    s.write_all(b"AMQP\x00\x00\x09\x01").await.expect("header");
    let mut buf = [0u8; 256];
    // a TLS alert (or nothing), then the socket closes; never connection.start
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, s.read(&mut buf)).await.expect("closed in time") {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    assert!(got.is_empty() || got[0] == 0x15, "expected a TLS alert or nothing, got {got:?}");
    broker.stop().await;
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_dropped_after_the_handshake_timeout() {
    let pki = Pki::new();
    let mut options = pki.options();
    options.handshake_timeout = Duration::from_millis(300);
    let broker = TlsBroker::start(&options).await;
    let started = Instant::now();
    let mut idle = TcpStream::connect(broker.addr).await.expect("connect");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, idle.read(&mut buf)).await.expect("dropped before the test's wait");
    let waited = started.elapsed();
    assert!(matches!(read, Ok(0) | Err(_)), "expected the socket closed, got {read:?}");
    assert!(waited >= Duration::from_millis(250), "dropped too early: {waited:?}");
    assert!(waited < Duration::from_secs(3), "dropped too late: {waited:?}");
    // (a real client's own handshake may take longer than 300 ms on a loaded machine: that
    // silent sockets do not hold up the others is the next test's, on the default timeout)
    broker.stop().await;
}

#[tokio::test]
async fn a_silent_client_does_not_hold_up_the_others() {
    let pki = Pki::new();
    let broker = TlsBroker::start(&pki.options()).await; // default 5 s handshake timeout
    let _silent: Vec<TcpStream> = {
        let mut v = Vec::new();
        for _ in 0..20 {
            v.push(TcpStream::connect(broker.addr).await.expect("connect"));
        }
        v
    };
    let started = Instant::now();
    let conn = broker.connect(pki.client()).await.expect("AMQPS connection beside 20 silent sockets");
    assert!(started.elapsed() < Duration::from_secs(2), "connect took {:?}", started.elapsed());
    conn.close(200, "bye".into()).await.expect("close");
    broker.stop().await;
}

#[tokio::test]
async fn verify_peer_checks_client_certificates() {
    let pki = Pki::new();
    let mut options = pki.options();
    options.ca = Some(pki.path("ca.pem"));
    options.verify_peer = true;
    // verify_peer alone: a client without a certificate is let in, one with a good one too
    let broker = TlsBroker::start(&options).await;
    broker
        .connect(pki.client())
        .await
        .expect("no certificate, verify_peer")
        .close(200, "".into())
        .await
        .expect("close");
    let with_cert = broker.connect(pki.client_with_certificate()).await.expect("client certificate accepted");
    with_cert.close(200, "".into()).await.expect("close");
    broker.stop().await;

    // fail_if_no_peer_cert: only the client with a certificate gets in
    options.fail_if_no_peer_cert = true;
    let broker = TlsBroker::start(&options).await;
    assert!(broker.connect(pki.client()).await.is_err(), "no certificate must be refused");
    let with_cert = broker.connect(pki.client_with_certificate()).await.expect("client certificate accepted");
    let ch = with_cert.create_channel().await.expect("channel");
    ch.queue_declare("".into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("declare");
    with_cert.close(200, "".into()).await.expect("close");
    broker.stop().await;
}

fn load_error(options: &TlsOptions) -> TlsError {
    Tls::load(options).expect_err("must not load")
}

#[test]
fn bad_files_are_clear_errors() {
    let pki = Pki::new();
    let missing = TlsOptions::new(pki.path("nope.pem"), pki.path("server.key"));
    let e = load_error(&missing);
    assert!(matches!(e, TlsError::Read { .. }), "{e:?}");
    assert!(e.to_string().contains("nope.pem"), "{e}");

    let garbage = pki.write("garbage.pem", "this is not PEM at all\n");
    let e = load_error(&TlsOptions::new(&garbage, pki.path("server.key")));
    assert!(matches!(e, TlsError::Empty { .. }), "{e:?}");
    assert!(e.to_string().contains("garbage.pem"), "{e}");

    // a certificate where the key should be
    let e = load_error(&TlsOptions::new(pki.path("server.pem"), pki.path("server.pem")));
    assert!(matches!(e, TlsError::Empty { .. }), "{e:?}");

    // a key that is not the certificate's
    let other = KeyPair::generate().expect("key");
    let other = pki.write("other.key", &other.serialize_pem());
    let e = load_error(&TlsOptions::new(pki.path("server.pem"), &other));
    assert!(matches!(e, TlsError::BadPair { .. }), "{e:?}");

    // a truncated certificate
    let pem = std::fs::read_to_string(pki.path("server.pem")).expect("read");
    let cut = pki.write("cut.pem", &pem[..pem.len() / 2]);
    let e = load_error(&TlsOptions::new(&cut, pki.path("server.key")));
    assert!(matches!(e, TlsError::Pem { .. } | TlsError::Empty { .. }), "{e:?}");

    // verification options that do not make sense
    let mut options = pki.options();
    options.verify_peer = true;
    assert!(matches!(load_error(&options), TlsError::Options(_)));
    let mut options = pki.options();
    options.fail_if_no_peer_cert = true;
    assert!(matches!(load_error(&options), TlsError::Options(_)));
}
