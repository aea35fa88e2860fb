//! The raw AMQP client. The handshake and setup methods go through amq-protocol; the hot path
//! does not allocate: publishes are encoded once and written many copies per syscall, and
//! received bytes are walked frame by frame in place.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, connection};
use amq_protocol::types::{FieldTable, LongString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::PerfError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub pass: String,
    pub vhost: String,
}

/// `amqp://user:pass@host:port/vhost` (vhost percent-decoded; "/" when absent).
pub fn parse_uri(s: &str) -> Result<Uri, PerfError> {
    let rest = s.strip_prefix("amqp://").ok_or_else(|| PerfError::Uri(format!("{s}: must start with amqp://")))?;
    let (authority, vhost) = rest.split_once('/').unwrap_or((rest, ""));
    let (creds, hostport) = authority.rsplit_once('@').unwrap_or(("guest:guest", authority));
    let (user, pass) = creds.split_once(':').unwrap_or((creds, ""));
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| PerfError::Uri(format!("{s}: bad port")))?),
        None => (hostport, 5672),
    };
    let vhost = if vhost.is_empty() { "/".to_owned() } else { percent_decode(vhost) };
    Ok(Uri { host: host.to_owned(), port, user: user.to_owned(), pass: pass.to_owned(), vhost })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn encode(frame: &AMQPFrame, out: &mut Vec<u8>) {
    let buf = std::mem::take(out);
    match gen_frame(frame)(WriteContext::from(buf)) {
        Ok(ctx) => *out = ctx.into_inner().0,
        Err(e) => panic!("cannot encode {frame:?}: {e:?}"),
    }
}

/// One complete publish (method, content header, body frames), encoded once.
pub fn encode_publish(
    channel: u16,
    exchange: &str,
    routing_key: &str,
    props: &BasicProperties,
    body: &[u8],
    frame_max: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    let publish = basic::Publish {
        exchange: exchange.into(),
        routing_key: routing_key.into(),
        mandatory: false,
        immediate: false,
    };
    encode(&AMQPFrame::Method(channel, AMQPClass::Basic(basic::AMQPMethod::Publish(publish))), &mut out);
    let header = AMQPContentHeader { class_id: 60, body_size: body.len() as u64, properties: props.clone() };
    encode(&AMQPFrame::Header(channel, header), &mut out);
    for chunk in body.chunks((frame_max as usize).saturating_sub(8).max(1)) {
        encode(&AMQPFrame::Body(channel, chunk.to_vec()), &mut out);
    }
    out
}

/// A connection after the handshake. Setup methods are synchronous request/response.
pub struct Wire {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pub frame_max: u32,
}

impl Wire {
    pub async fn connect(uri: &Uri) -> Result<Self, PerfError> {
        let stream = TcpStream::connect((uri.host.as_str(), uri.port)).await?;
        stream.set_nodelay(true)?;
        let mut w = Self { stream, buf: Vec::new(), frame_max: 131_072 };
        w.stream.write_all(b"AMQP\x00\x00\x09\x01").await?;
        match w.recv_method().await? {
            (0, AMQPClass::Connection(connection::AMQPMethod::Start(_))) => {}
            other => return Err(PerfError::Protocol(format!("expected connection.start, got {other:?}"))),
        }
        let response = format!("\0{}\0{}", uri.user, uri.pass);
        w.send(&AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: FieldTable::default(),
                mechanism: "PLAIN".into(),
                response: LongString::from(response.into_bytes()),
                locale: "en_US".into(),
            })),
        ))
        .await?;
        let tune = match w.recv_method().await? {
            (0, AMQPClass::Connection(connection::AMQPMethod::Tune(t))) => t,
            other => return Err(PerfError::Protocol(format!("expected connection.tune, got {other:?}"))),
        };
        w.frame_max = if tune.frame_max == 0 { 131_072 } else { tune.frame_max };
        w.send(&AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: tune.channel_max,
                frame_max: w.frame_max,
                heartbeat: 0,
            })),
        ))
        .await?;
        w.rpc(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: uri.vhost.as_str().into(),
            })),
        )
        .await?;
        w.rpc(1, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))).await?;
        Ok(w)
    }

    pub async fn send(&mut self, frame: &AMQPFrame) -> Result<(), PerfError> {
        let mut out = Vec::new();
        encode(frame, &mut out);
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// The next method, skipping heartbeats and content; a close from the server is an error.
    pub async fn recv_method(&mut self) -> Result<(u16, AMQPClass), PerfError> {
        loop {
            match parse_frame(&self.buf[..]) {
                Ok((rest, frame)) => {
                    let consumed = self.buf.len() - rest.len();
                    self.buf.drain(..consumed);
                    match frame {
                        AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
                            return Err(PerfError::Protocol(format!(
                                "connection closed: {} {}",
                                c.reply_code, c.reply_text
                            )));
                        }
                        AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Close(c))) => {
                            return Err(PerfError::Protocol(format!(
                                "channel closed: {} {}",
                                c.reply_code, c.reply_text
                            )));
                        }
                        AMQPFrame::Method(ch, m) => return Ok((ch, m)),
                        _ => continue,
                    }
                }
                Err(e) if e.is_incomplete() => {
                    let mut chunk = [0u8; 8192];
                    let n = self.stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Err(PerfError::Protocol("connection closed by the broker".into()));
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) => return Err(PerfError::Protocol(format!("unparsable frame: {e:?}"))),
            }
        }
    }

    pub async fn rpc(&mut self, channel: u16, method: AMQPClass) -> Result<AMQPClass, PerfError> {
        self.send(&AMQPFrame::Method(channel, method)).await?;
        Ok(self.recv_method().await?.1)
    }

    /// Bytes already read past the last method (deliveries that raced the consume-ok).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// What a frame walk found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    pub deliveries: u64,
    pub last_delivery_tag: u64,
    pub confirms_upto: Option<(u64, bool)>,
    /// A connection.close or channel.close arrived.
    pub closed: bool,
}

/// Walk the complete frames at the front of `buf`; returns what they held and how many bytes
/// they took. Nothing is allocated or copied.
pub fn walk(buf: &[u8]) -> (Walked, usize) {
    walk_bodies(buf, |_| {})
}

/// [`walk`], also handing the payload of every body frame to `body`, in place.
#[inline]
pub fn walk_bodies(buf: &[u8], mut body: impl FnMut(&[u8])) -> (Walked, usize) {
    let mut w = Walked::default();
    let mut at = 0;
    while buf.len() - at >= 7 {
        let size = u32::from_be_bytes([buf[at + 3], buf[at + 4], buf[at + 5], buf[at + 6]]) as usize;
        let end = at + 7 + size + 1;
        if end > buf.len() {
            break;
        }
        if buf[at] == 1 && size >= 4 {
            let p = &buf[at + 7..at + 7 + size];
            match (u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]])) {
                (60, 60) if size >= 5 => {
                    w.deliveries += 1;
                    let tag_at = 5 + p[4] as usize;
                    if let Some(tag) = p.get(tag_at..tag_at + 8) {
                        w.last_delivery_tag = u64::from_be_bytes(tag.try_into().unwrap_or([0; 8]));
                    }
                }
                (60, 80) if size >= 13 => {
                    let tag = u64::from_be_bytes(p[4..12].try_into().unwrap_or([0; 8]));
                    w.confirms_upto = Some((tag, p[12] & 1 == 1));
                }
                (10, 50) | (20, 40) => w.closed = true,
                _ => {}
            }
        } else if buf[at] == 3 {
            body(&buf[at + 7..at + 7 + size]);
        }
        at = end;
    }
    (w, at)
}

/// Raise this process's soft limit on open files to the hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(lim.rlim_cur)
}

/// True if something at host:port answers an AMQP protocol header with a method frame
/// (connection.start), i.e. the broker accepts AMQP.
pub async fn accepts_amqp(host: &str, port: u16) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect((host, port)).await?;
        s.write_all(b"AMQP\x00\x00\x09\x01").await?;
        let mut first = [0u8; 1];
        s.read_exact(&mut first).await?;
        Ok::<bool, std::io::Error>(first[0] == 1)
    };
    matches!(tokio::time::timeout(std::time::Duration::from_secs(2), attempt).await, Ok(Ok(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let u = parse_uri("amqp://guest:guest@127.0.0.1:5673/%2f").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.vhost.as_str()), ("127.0.0.1", 5673, "/"));
        let u = parse_uri("amqp://a:b@localhost/vh").unwrap();
        assert_eq!((u.user.as_str(), u.pass.as_str(), u.port, u.vhost.as_str()), ("a", "b", 5672, "vh"));
        assert!(parse_uri("http://x").is_err());
    }

    #[test]
    fn walk_counts_deliveries_and_stops_at_partial_frames() {
        let mut out = Vec::new();
        for tag in 1..=3u64 {
            let d = basic::Deliver {
                consumer_tag: "c".into(),
                delivery_tag: tag,
                redelivered: false,
                exchange: "".into(),
                routing_key: "q".into(),
            };
            encode(&AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Deliver(d))), &mut out);
            let h = AMQPContentHeader { class_id: 60, body_size: 2, properties: BasicProperties::default() };
            encode(&AMQPFrame::Header(1, h), &mut out);
            encode(&AMQPFrame::Body(1, b"hi".to_vec()), &mut out);
        }
        let (w, used) = walk(&out[..out.len() - 3]);
        assert_eq!(w.deliveries, 3);
        assert_eq!(w.last_delivery_tag, 3);
        assert!(used < out.len());
        let (w, used) = walk(&out);
        assert_eq!((w.deliveries, used), (3, out.len()));
    }
}
