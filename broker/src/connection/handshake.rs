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

use super::codec::{self, Frame, FrameError};
use crate::Broker;
use crate::access::Permissions;
use crate::auth::{self, AuthError};
use crate::error::{AmqpError, ReplyCode};
use crate::vhost::VirtualHost;

/// RabbitMQ's handshake_timeout.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const FRAME_MIN_SIZE: u32 = 4096;
const CHANNEL_MIN: u32 = 1;

pub struct Negotiated {
    pub user: String,
    pub vhost: Arc<VirtualHost>,
    /// What the user may do on the vhost.
    pub permissions: Arc<Permissions>,
    pub frame_max: u32,
    pub channel_max: u16,
    pub heartbeat: u16,
    /// The client understands basic.cancel from the server.
    pub cancel_notify: bool,
    /// The client understands connection.blocked/unblocked.
    pub blocked_notify: bool,
    /// Bytes read past open (a pipelining client).
    pub read_buf: BytesMut,
    /// What the client said about itself in start-ok (for listings).
    pub client_properties: amq_protocol::types::FieldTable,
    /// The SASL mechanism it logged in with.
    pub auth_mechanism: String,
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

/// The capabilities warren implements, as named in RabbitMQ's `server_properties`.
/// The same set RabbitMQ 3.10 advertises.
const CAPABILITIES: &[&str] = &[
    "publisher_confirms",
    "basic.nack",
    "consumer_cancel_notify",
    "authentication_failure_close",
    "per_consumer_qos",
    "exchange_exchange_bindings",
    "connection.blocked",
    "consumer_priorities",
    "direct_reply_to",
];

/// Server properties; a 0-8 client gets an empty capabilities table, as from RabbitMQ.
fn server_properties(with_capabilities: bool) -> FieldTable {
    let mut caps = FieldTable::default();
    if with_capabilities {
        for cap in CAPABILITIES {
            caps.insert((*cap).into(), AMQPValue::Boolean(true));
        }
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

/// Where the handshake is: RabbitMQ's `connection_state` before `running`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Starting,
    Tuning,
    Opening,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Tuning => "tuning",
            Phase::Opening => "opening",
        }
    }
}

/// A handshake error. RabbitMQ does not trust a client before the connection is open and
/// closes the socket without a word (`rabbit_reader:handle_exception/3`), except for a frame
/// out of place once tuned (505) and the errors of connection.open itself.
async fn fail(stream: &mut TcpStream, phase: Phase, error: AmqpError) -> HandshakeError {
    if phase == Phase::Opening && error.code == ReplyCode::UnexpectedFrame {
        return refuse(stream, error).await;
    }
    HandshakeError::Protocol(error)
}

/// Read the next connection-class method on channel 0, skipping heartbeats.
async fn read_method(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    frame_max: u32,
    phase: Phase,
) -> Result<connection::AMQPMethod, HandshakeError> {
    loop {
        let error = match codec::next_frame(buf, frame_max).map(|f| f.map(|f| f.split_refusal().0)) {
            Ok(Some(Frame::Heartbeat(0))) => continue,
            Ok(Some(Frame::Method(0, AMQPClass::Connection(m)))) => return Ok(m),
            Ok(Some(Frame::Method(0, m))) => {
                AmqpError::channel_error(format!("unexpected method in connection state {}", phase.name()))
                    .for_method(&m)
            }
            Ok(Some(frame)) => codec::unexpected_frame(&frame),
            Ok(None) => {
                if stream.read_buf(buf).await? == 0 {
                    return Err(HandshakeError::Closed);
                }
                continue;
            }
            Err(FrameError::Close(e) | FrameError::Fatal(e)) => e,
            Err(FrameError::Abort(reason)) => AmqpError::frame_error(reason),
        };
        return Err(fail(stream, phase, error).await);
    }
}

/// The connection.start a protocol header gets (RabbitMQ `rabbit_reader:handshake/2`):
/// `(version_major, version_minor, capabilities)`, or None to refuse the header.
fn start_version(header: &[u8; 8]) -> Option<(u8, u8, bool)> {
    match header {
        b"AMQP\x00\x00\x09\x01" => Some((0, 9, true)),
        // AMQP 0-9, served as 0-9-1.
        b"AMQP\x01\x01\x00\x09" => Some((0, 9, true)),
        // AMQP 0-8, as most clients and as the specification's web page spell it. The
        // methods a 0-8 client needs to get going are encoded as in 0-9-1.
        b"AMQP\x01\x01\x08\x00" | b"AMQP\x01\x01\x09\x01" => Some((8, 0, false)),
        _ => None,
    }
}

/// A connection method out of turn: RabbitMQ's "unexpected method in connection state".
fn unexpected_method(phase: Phase, method: connection::AMQPMethod) -> HandshakeError {
    let method = AMQPClass::Connection(method);
    HandshakeError::Protocol(
        AmqpError::channel_error(format!("unexpected method in connection state {}", phase.name())).for_method(&method),
    )
}

/// RabbitMQ's `validate_negotiated_integer_value/3`: the client may lower a value proposed in
/// connection.tune, not raise it, and 0 ("no limit") is more than any limit of the server.
fn check_negotiated(field: &str, client: u32, min: u32, server: u32) -> Result<(), HandshakeError> {
    let (relation, bound, limit) = if client != 0 && client < min {
        ("lower", "minimum", min)
    } else if server != 0 && (client == 0 || client > server) {
        ("higher", "maximum", server)
    } else {
        return Ok(());
    };
    Err(HandshakeError::Protocol(
        AmqpError::not_allowed(format!(
            "negotiated {field} = {client} is {relation} than the {bound} allowed value ({limit})"
        ))
        .at(10, 31),
    ))
}

async fn negotiate(stream: &mut TcpStream, peer: SocketAddr, broker: &Broker) -> Result<Negotiated, HandshakeError> {
    let config = &broker.config;
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).await?;
    let Some((version_major, version_minor, capabilities)) = start_version(&header) else {
        write_frame(stream, &AMQPFrame::ProtocolHeader(ProtocolVersion::amqp_0_9_1())).await?;
        return Err(HandshakeError::BadHeader(header));
    };
    let start = connection::Start {
        version_major,
        version_minor,
        server_properties: server_properties(capabilities),
        mechanisms: auth::MECHANISMS.into(),
        locales: "en_US".into(),
    };
    write_frame(stream, &AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(start)))).await?;

    let mut buf = BytesMut::with_capacity(4096);
    // Until tune-ok, frames are limited to the protocol's minimum frame size.
    let start_ok = match read_method(stream, &mut buf, FRAME_MIN_SIZE, Phase::Starting).await? {
        connection::AMQPMethod::StartOk(s) => s,
        m => return Err(unexpected_method(Phase::Starting, m)),
    };
    let failure_close = client_capability(&start_ok.client_properties, "authentication_failure_close");
    let cancel_notify = client_capability(&start_ok.client_properties, "consumer_cancel_notify");
    let blocked_notify = client_capability(&start_ok.client_properties, "connection.blocked");
    let mechanism = start_ok.mechanism.as_str();
    let user = match broker.access.login(mechanism, start_ok.response.as_bytes(), peer.ip()) {
        Ok(user) => user,
        // Not a login failure but a protocol error: the socket just closes.
        Err(e @ (AuthError::UnknownMechanism(_) | AuthError::Malformed(_))) => return Err(HandshakeError::Auth(e)),
        Err(e) => {
            tracing::info!(%peer, error = %e, "login refused");
            if failure_close {
                let text = format!(
                    "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
                );
                refuse(stream, AmqpError::access_refused(text)).await;
            }
            return Err(HandshakeError::Auth(e));
        }
    };

    let tune =
        connection::Tune { channel_max: config.channel_max, frame_max: config.frame_max, heartbeat: config.heartbeat };
    write_frame(stream, &AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(tune)))).await?;
    let tune_ok = match read_method(stream, &mut buf, FRAME_MIN_SIZE, Phase::Tuning).await? {
        connection::AMQPMethod::TuneOk(t) => t,
        m => return Err(unexpected_method(Phase::Tuning, m)),
    };
    check_negotiated("frame_max", tune_ok.frame_max, FRAME_MIN_SIZE, config.frame_max)?;
    check_negotiated("channel_max", tune_ok.channel_max.into(), CHANNEL_MIN, config.channel_max.into())?;
    let (frame_max, channel_max) = (tune_ok.frame_max, tune_ok.channel_max);

    let open = match read_method(stream, &mut buf, frame_max, Phase::Opening).await? {
        connection::AMQPMethod::Open(o) => o,
        m => return Err(unexpected_method(Phase::Opening, m)),
    };
    let Some(vhost) = broker.vhost(open.virtual_host.as_str()) else {
        let e = AmqpError::new(ReplyCode::NotAllowed, format!("vhost {} not found", open.virtual_host)).at(10, 40);
        return Err(refuse(stream, e).await);
    };
    let permissions = broker.access.permissions(&user, &vhost.name);
    if !permissions.may_open() {
        let text = format!("access to vhost '{}' refused for user '{user}'", vhost.name);
        return Err(refuse(stream, AmqpError::not_allowed(text).at(10, 40)).await);
    }
    write_frame(
        stream,
        &AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {}))),
    )
    .await?;
    tracing::debug!(%peer, %user, vhost = %vhost.name, frame_max, channel_max, heartbeat = tune_ok.heartbeat, "connection open");
    Ok(Negotiated {
        user,
        vhost,
        permissions,
        frame_max,
        channel_max,
        heartbeat: tune_ok.heartbeat,
        cancel_notify,
        blocked_notify,
        read_buf: buf,
        client_properties: start_ok.client_properties,
        auth_mechanism: start_ok.mechanism.to_string(),
    })
}
