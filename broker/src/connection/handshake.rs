//! The handshake, done before a `Connection` exists: protocol header, start/start-ok (SASL),
//! tune/tune-ok, open/open-ok. The result is a `Negotiated` connection that cannot be half-open.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use amq_protocol::frame::{AMQPFrame, ProtocolVersion};
use amq_protocol::protocol::{AMQPClass, connection};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::codec::{self, Frame};
use crate::Broker;
use crate::auth::{self, AuthError};
use crate::error::{AmqpError, ReplyCode};
use crate::vhost::VirtualHost;

/// RabbitMQ's handshake_timeout.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const FRAME_MIN_SIZE: u32 = 4096;

pub struct Negotiated {
    pub user: String,
    pub vhost: Arc<VirtualHost>,
    pub frame_max: u32,
    pub channel_max: u16,
    pub heartbeat: u16,
    /// The client understands basic.cancel from the server.
    pub cancel_notify: bool,
    /// Bytes read past open (a pipelining client).
    pub read_buf: BytesMut,
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("unsupported protocol header {0:?}")]
    BadHeader([u8; 8]),
    #[error("connection closed by client")]
    Closed,
    #[error("{0}")]
    Protocol(AmqpError),
    #[error("authentication failed: {0}")]
    Auth(AuthError),
}

pub async fn handshake(
    stream: &mut TcpStream,
    peer: SocketAddr,
    broker: &Broker,
) -> Result<Negotiated, HandshakeError> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, negotiate(stream, peer, broker)).await {
        Ok(result) => result,
        Err(_) => Err(HandshakeError::Timeout),
    }
}

fn server_properties() -> FieldTable {
    let mut caps = FieldTable::default();
    for cap in [
        "publisher_confirms",
        "basic.nack",
        "consumer_cancel_notify",
        "authentication_failure_close",
        "per_consumer_qos",
        "exchange_exchange_bindings",
        "connection.blocked",
        "consumer_priorities",
        "direct_reply_to",
    ] {
        caps.insert(cap.into(), AMQPValue::Boolean(true));
    }
    let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()));
    let mut props = FieldTable::default();
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    props.insert("product".into(), text("warren"));
    props.insert("version".into(), text(env!("CARGO_PKG_VERSION")));
    props.insert("platform".into(), text("Rust"));
    props.insert("cluster_name".into(), text("warren"));
    props.insert("copyright".into(), text("the warren developers"));
    props.insert("information".into(), text("AMQP 0-9-1 broker; see README.md"));
    props
}

fn client_capability(props: &FieldTable, name: &str) -> bool {
    match props.inner().get("capabilities") {
        Some(AMQPValue::FieldTable(caps)) => matches!(caps.inner().get(name), Some(AMQPValue::Boolean(true))),
        _ => false,
    }
}

async fn write_frame(stream: &mut TcpStream, frame: &AMQPFrame) -> Result<(), HandshakeError> {
    let mut out = Vec::new();
    codec::write_frame(&mut out, frame);
    stream.write_all(&out).await?;
    Ok(())
}

/// Send connection.close for a handshake error, then give up on the connection.
async fn refuse(stream: &mut TcpStream, error: AmqpError) -> HandshakeError {
    let close = connection::Close {
        reply_code: error.code.code(),
        reply_text: error.reply_text().into(),
        class_id: error.class_id,
        method_id: error.method_id,
    };
    let _ =
        write_frame(stream, &AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(close)))).await;
    // Give the client a moment to read the close before the socket goes away.
    let mut scratch = [0u8; 512];
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut scratch)).await;
    HandshakeError::Protocol(error)
}

/// Read the next connection-class method on channel 0, skipping heartbeats.
async fn read_method(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    frame_max: u32,
) -> Result<connection::AMQPMethod, HandshakeError> {
    loop {
        match codec::next_frame(buf, frame_max) {
            Ok(Some(Frame::Heartbeat(0))) => continue,
            Ok(Some(Frame::Method(0, AMQPClass::Connection(m)))) => return Ok(m),
            Ok(Some(Frame::Method(_, m))) => {
                return Err(refuse(
                    stream,
                    AmqpError::command_invalid("unexpected method during handshake").for_method(&m),
                )
                .await);
            }
            Ok(Some(_)) => {
                return Err(refuse(stream, AmqpError::unexpected_frame("unexpected frame during handshake")).await);
            }
            Ok(None) => {
                if stream.read_buf(buf).await? == 0 {
                    return Err(HandshakeError::Closed);
                }
            }
            Err(e) => return Err(refuse(stream, e).await),
        }
    }
}

async fn negotiate(stream: &mut TcpStream, peer: SocketAddr, broker: &Broker) -> Result<Negotiated, HandshakeError> {
    let config = &broker.config;
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).await?;
    if &header != b"AMQP\x00\x00\x09\x01" {
        write_frame(stream, &AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1())).await?;
        return Err(HandshakeError::BadHeader(header));
    }
    let start = connection::Start {
        version_major: 0,
        version_minor: 9,
        server_properties: server_properties(),
        mechanisms: auth::MECHANISMS.into(),
        locales: "en_US".into(),
    };
    write_frame(stream, &AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(start)))).await?;

    let mut buf = BytesMut::with_capacity(4096);
    let start_ok = match read_method(stream, &mut buf, config.frame_max).await? {
        connection::AMQPMethod::StartOk(s) => s,
        _ => return Err(refuse(stream, AmqpError::command_invalid("expected 'connection.start_ok'").at(10, 11)).await),
    };
    let failure_close = client_capability(&start_ok.client_properties, "authentication_failure_close");
    let cancel_notify = client_capability(&start_ok.client_properties, "consumer_cancel_notify");
    let mechanism = start_ok.mechanism.as_str();
    let user = match auth::authenticate(&config.users, mechanism, start_ok.response.as_bytes(), peer.ip()) {
        Ok(user) => user,
        Err(AuthError::UnknownMechanism(m)) => {
            let e = AmqpError::command_invalid(format!("unknown authentication mechanism '{m}'")).at(10, 11);
            return Err(refuse(stream, e).await);
        }
        Err(e) => {
            tracing::info!(%peer, error = %e, "login refused");
            if failure_close {
                let text = format!(
                    "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
                );
                refuse(stream, AmqpError::access_refused(text).at(10, 11)).await;
            }
            return Err(HandshakeError::Auth(e));
        }
    };

    let tune =
        connection::Tune { channel_max: config.channel_max, frame_max: config.frame_max, heartbeat: config.heartbeat };
    write_frame(stream, &AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(tune)))).await?;
    let tune_ok = match read_method(stream, &mut buf, config.frame_max).await? {
        connection::AMQPMethod::TuneOk(t) => t,
        _ => return Err(refuse(stream, AmqpError::command_invalid("expected 'connection.tune_ok'").at(10, 31)).await),
    };
    let frame_max = match tune_ok.frame_max {
        0 => config.frame_max,
        f if f < FRAME_MIN_SIZE => {
            let e = AmqpError::not_allowed(format!(
                "negotiated frame_max = {f} is lower than the minimum allowed value ({FRAME_MIN_SIZE})"
            ));
            return Err(refuse(stream, e.at(10, 31)).await);
        }
        f if f > config.frame_max => {
            let e = AmqpError::not_allowed(format!(
                "negotiated frame_max = {f} is higher than the maximum allowed value ({})",
                config.frame_max
            ));
            return Err(refuse(stream, e.at(10, 31)).await);
        }
        f => f,
    };
    let channel_max = match tune_ok.channel_max {
        0 => config.channel_max,
        c if c > config.channel_max => {
            let e = AmqpError::not_allowed(format!(
                "negotiated channel_max = {c} is higher than the maximum allowed value ({})",
                config.channel_max
            ));
            return Err(refuse(stream, e.at(10, 31)).await);
        }
        c => c,
    };

    let open = match read_method(stream, &mut buf, frame_max).await? {
        connection::AMQPMethod::Open(o) => o,
        _ => return Err(refuse(stream, AmqpError::command_invalid("expected 'connection.open'").at(10, 40)).await),
    };
    let Some(vhost) = broker.vhost(open.virtual_host.as_str()) else {
        let e = AmqpError::new(ReplyCode::NotAllowed, format!("vhost {} not found", open.virtual_host)).at(10, 40);
        return Err(refuse(stream, e).await);
    };
    write_frame(
        stream,
        &AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {}))),
    )
    .await?;
    tracing::debug!(%peer, %user, vhost = %vhost.name, frame_max, channel_max, heartbeat = tune_ok.heartbeat, "connection open");
    Ok(Negotiated { user, vhost, frame_max, channel_max, heartbeat: tune_ok.heartbeat, cancel_notify, read_buf: buf })
}
