//! Test helpers: a broker on 127.0.0.1:0 in this process, lapin connections to it, and a
//! raw-socket client for frames no library sends.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, connection};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use bytes::BytesMut;
use futures_lite::StreamExt;
use lapin::{Channel, Connection, ConnectionProperties, ErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use warren_broker::connection::codec::{self, Frame};
use warren_broker::{Broker, BrokerConfig};

pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestBroker {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    shutdown: watch::Sender<bool>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TestBroker {
    pub async fn start() -> Self {
        Self::with_config(BrokerConfig::default()).await
    }

    pub async fn with_config(config: BrokerConfig) -> Self {
        Self::with_broker(Broker::new(config)).await
    }

    pub async fn with_broker(broker: Arc<Broker>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (shutdown, rx) = watch::channel(false);
        let server = tokio::spawn(warren_broker::serve(listener, broker.clone(), rx));
        Self { addr, broker, shutdown, server: Some(server) }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    pub async fn connect(&self) -> Connection {
        Connection::connect(&self.url(), ConnectionProperties::default()).await.expect("connect")
    }

    pub async fn channel(&self) -> (Connection, Channel) {
        let conn = self.connect().await;
        let ch = conn.create_channel().await.expect("channel");
        (conn, ch)
    }

    /// Stop the server and wait for it to finish.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            tokio::time::timeout(WAIT, server).await.expect("server stops").expect("server task");
        }
    }
}

/// The reply code of a broker-sent error.
pub fn code(err: &lapin::Error) -> u16 {
    match err.kind() {
        ErrorKind::ProtocolError(e) => e.get_id(),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// Run a fire-and-forget operation (publish, ack, ...) together with a basic.qos round trip,
/// both queued before the server can answer, and return the reply code that closed the channel.
pub async fn error_after<F, T>(ch: &Channel, op: F) -> u16
where
    F: std::future::Future<Output = lapin::Result<T>>,
{
    let (sent, probe) = tokio::join!(op, ch.basic_qos(0, Default::default()));
    assert!(sent.is_ok(), "operation was not sent");
    code(&probe.expect_err("the channel should have been closed"))
}

/// Publish in confirm mode and return the reply code of the error that closed the channel
/// (lapin resolves the pending confirm with it).
pub async fn publish_error(
    ch: &Channel,
    exchange: &str,
    key: &str,
    options: lapin::options::BasicPublishOptions,
    body: &[u8],
    props: lapin::BasicProperties,
) -> u16 {
    ch.confirm_select(Default::default()).await.expect("confirm.select");
    let confirm = ch.basic_publish(exchange.into(), key.into(), options, body, props).await.expect("publish sent");
    let err = tokio::time::timeout(WAIT, confirm).await.expect("confirm in time").expect_err("publish should fail");
    code(&err)
}

/// Next delivery from a consumer, or panic after a timeout.
pub async fn next_delivery(consumer: &mut lapin::Consumer) -> lapin::message::Delivery {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("delivery in time")
        .expect("consumer open")
        .expect("delivery ok")
}

/// Assert nothing is delivered for a short while.
pub async fn assert_no_delivery(consumer: &mut lapin::Consumer) {
    if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(200), consumer.next()).await {
        panic!("unexpected delivery {d:?}");
    }
}

/// A raw AMQP client for malformed and out-of-order frames.
pub struct RawClient {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl RawClient {
    /// Connect and do the handshake (PLAIN guest/guest), ready to open channels.
    pub async fn open(addr: SocketAddr) -> Self {
        Self::open_with_heartbeat(addr, 0).await
    }

    /// Connect and do the handshake, asking for `heartbeat` seconds.
    pub async fn open_with_heartbeat(addr: SocketAddr, heartbeat: u16) -> Self {
        let mut c = Self::start_tuned(addr, |t| connection::TuneOk {
            channel_max: t.channel_max,
            frame_max: t.frame_max,
            heartbeat,
        })
        .await;
        assert!(matches!(
            c.recv().await,
            Some(Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))))
        ));
        c
    }

    /// Handshake up to connection.open with a tune-ok of our choosing; open-ok is not awaited.
    pub async fn start_tuned(addr: SocketAddr, tune_ok: impl FnOnce(&connection::Tune) -> connection::TuneOk) -> Self {
        let (mut c, t) = Self::until_tune(addr).await;
        c.send_method(0, AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune_ok(&t)))).await;
        c.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open { virtual_host: "/".into() })),
        )
        .await;
        c
    }

    /// Protocol header, start, start-ok (PLAIN guest/guest, authentication_failure_close);
    /// returns once connection.tune has arrived.
    pub async fn until_tune(addr: SocketAddr) -> (Self, connection::Tune) {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut c = Self { stream, buf: BytesMut::new() };
        c.send_bytes(b"AMQP\x00\x00\x09\x01").await;
        assert!(matches!(
            c.recv().await,
            Some(Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(_))))
        ));
        let mut caps = FieldTable::default();
        caps.insert("authentication_failure_close".into(), AMQPValue::Boolean(true));
        let mut props = FieldTable::default();
        props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
        c.send_method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: props,
                mechanism: "PLAIN".into(),
                response: LongString::from(b"\0guest\0guest".to_vec()),
                locale: "en_US".into(),
            })),
        )
        .await;
        let Some(Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(t)))) = c.recv().await else {
            panic!("expected tune")
        };
        (c, t)
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    pub async fn send_method(&mut self, channel: u16, method: AMQPClass) {
        let mut out = Vec::new();
        codec::write_frame(&mut out, &AMQPFrame::Method(channel, method));
        self.send_bytes(&out).await;
    }

    /// Next frame, or None when the server closed the socket (or after a timeout).
    pub async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Ok(Some(f)) = codec::next_frame(&mut self.buf, 0) {
                return Some(f);
            }
            match tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }

    /// Read frames until connection.close; returns its reply code. Answers with close-ok.
    pub async fn expect_connection_close(&mut self) -> u16 {
        self.expect_close().await.reply_code
    }

    /// Read frames until connection.close and return it. Answers with close-ok.
    pub async fn expect_close(&mut self) -> connection::Close {
        while let Some(f) = self.recv().await {
            if let Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(c))) = f {
                self.send_method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})))
                    .await;
                return c;
            }
        }
        panic!("socket closed without connection.close");
    }

    /// The server closes the socket without sending anything more (as RabbitMQ does for a
    /// client it does not trust yet, or on input that crashes its reader).
    pub async fn expect_silent_close(&mut self) {
        loop {
            if let Ok(Some(f)) = codec::next_frame(&mut self.buf, 0) {
                panic!("expected the socket to close, got {f:?}");
            }
            match tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
                Err(_) => panic!("socket still open after {WAIT:?}"),
            }
        }
    }
}
