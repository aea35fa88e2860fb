//! `warren perf sink`: a do-nothing AMQP 0-9-1 server on loopback, to show the generator's own
//! ceiling. It answers the handshake and every setup method minimally, counts and drops
//! publishes (confirming them, cumulatively, on channels in confirm mode), and floods every
//! consumer with pre-encoded deliveries. There are no queues: nothing is stored or routed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, parse_frame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, confirm, connection, exchange, queue, tx};
use amq_protocol::types::{FieldTable, LongString, ShortString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::PerfError;
use crate::meter::{self, Counters, Measured, Show};
use crate::wire;

const FRAME_MAX: u32 = 131_072;
const BATCH_BYTES: usize = 256 * 1024;
const READ_BUF: usize = 1 << 20;

#[derive(Clone, Debug)]
pub struct Options {
    pub bind: String,
    /// How long the sink serves before it exits.
    pub duration: Duration,
    /// Body size of the deliveries it floods consumers with.
    pub size: usize,
    pub progress: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub measured: Measured,
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        let m = &self.measured;
        let mut v = serde_json::json!({
            "scenario": "sink",
            "seconds": m.seconds,
            "published_per_sec": m.published_per_sec,
            "delivered_per_sec": m.consumed_per_sec,
            "confirmed_per_sec": m.confirmed_per_sec,
        });
        m.usage.json_fields(&mut v);
        v
    }

    pub fn summary(&self) -> String {
        let m = &self.measured;
        format!(
            "sink over {:.0}s: received {:.0} publishes/s, delivered {:.0} msg/s, confirmed {:.0}/s, sink CPU {:.0}%",
            m.seconds, m.published_per_sec, m.consumed_per_sec, m.confirmed_per_sec, m.usage.client_cpu_percent
        )
    }
}

/// Serve until `duration` has passed. `on_ready` gets the AMQP URI once the listener is bound.
pub async fn run(opts: Options, on_ready: impl FnOnce(&str)) -> Result<Report, PerfError> {
    let listener = TcpListener::bind(&opts.bind).await?;
    let addr = listener.local_addr()?;
    on_ready(&format!("amqp://guest:guest@{addr}/%2f"));
    let counters = Arc::new(Counters::default());
    let opts = Arc::new(opts);
    let accept = {
        let counters = counters.clone();
        let opts = opts.clone();
        tokio::spawn(async move {
            while !counters.stopped() {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let counters = counters.clone();
                let opts = opts.clone();
                tokio::spawn(async move {
                    // A client going away is no failure of the sink.
                    let _ = serve(stream, &opts, counters).await;
                });
            }
        })
    };
    let show =
        Show { published: Some("received"), consumed: Some("delivered"), confirmed: Some("confirmed"), ops: None };
    let measured = meter::measure(&counters, Duration::ZERO, opts.duration, None, show, opts.progress).await;
    accept.abort();
    Ok(Report { measured })
}

/// What the reader asks the writer to do.
enum Out {
    Frames(Vec<u8>),
    Flood { channel: u16, consumer_tag: String, routing_key: String },
    StopFlood { channel: u16, consumer_tag: Option<String> },
}

async fn serve(stream: TcpStream, opts: &Options, counters: Arc<Counters>) -> Result<(), PerfError> {
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = Vec::with_capacity(READ_BUF);
    handshake(&mut rd, &mut wr, &mut buf).await?;
    let (tx, rx) = mpsc::channel(1024);
    let writer = tokio::spawn(write_loop(wr, rx, opts.size, counters.clone()));
    let r = read_loop(rd, buf, tx, &counters).await;
    writer.abort();
    r
}

/// Read until one complete frame is buffered; parse it with amq-protocol.
async fn read_frame(rd: &mut OwnedReadHalf, buf: &mut Vec<u8>) -> Result<AMQPFrame, PerfError> {
    loop {
        match parse_frame(&buf[..]) {
            Ok((rest, frame)) => {
                let used = buf.len() - rest.len();
                buf.drain(..used);
                return Ok(frame);
            }
            Err(e) if e.is_incomplete() => {
                let mut chunk = [0u8; 4096];
                let n = rd.read(&mut chunk).await?;
                if n == 0 {
                    return Err(PerfError::Protocol("client went away".into()));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) => return Err(PerfError::Protocol(format!("unparsable frame: {e:?}"))),
        }
    }
}

async fn handshake(rd: &mut OwnedReadHalf, wr: &mut OwnedWriteHalf, buf: &mut Vec<u8>) -> Result<(), PerfError> {
    match read_frame(rd, buf).await? {
        AMQPFrame::ProtocolHeader(_) => {}
        other => return Err(PerfError::Protocol(format!("expected a protocol header, got {other:?}"))),
    }
    let mut out = Vec::new();
    let start = connection::Start {
        version_major: 0,
        version_minor: 9,
        server_properties: FieldTable::default(),
        mechanisms: LongString::from("PLAIN AMQPLAIN"),
        locales: LongString::from("en_US"),
    };
    wire::encode(&AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Start(start))), &mut out);
    wr.write_all(&out).await?;
    loop {
        match read_frame(rd, buf).await? {
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::StartOk(_))) => {
                out.clear();
                let tune = connection::Tune { channel_max: 2047, frame_max: FRAME_MAX, heartbeat: 0 };
                wire::encode(
                    &AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Tune(tune))),
                    &mut out,
                );
                wr.write_all(&out).await?;
            }
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::TuneOk(_))) => {}
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Open(_))) => {
                out.clear();
                let ok = connection::OpenOk {};
                wire::encode(
                    &AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(ok))),
                    &mut out,
                );
                wr.write_all(&out).await?;
                return Ok(());
            }
            AMQPFrame::Heartbeat => {}
            other => return Err(PerfError::Protocol(format!("unexpected during the handshake: {other:?}"))),
        }
    }
}

/// The hot loop: publishes are counted in place; any other method is parsed and answered.
async fn read_loop(
    mut rd: OwnedReadHalf,
    mut buf: Vec<u8>,
    tx: mpsc::Sender<Out>,
    counters: &Counters,
) -> Result<(), PerfError> {
    let mut filled = buf.len();
    buf.resize(READ_BUF, 0);
    // Per channel: Some(publish sequence number) once in confirm mode.
    let mut confirming: Vec<Option<u64>> = Vec::new();
    let mut consumers = 0u64;
    let mut out = Vec::new();
    while !counters.stopped() {
        let n = rd.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut at = 0;
        let mut publishes = 0u64;
        let mut confirm_due = false;
        out.clear();
        while filled - at >= 7 {
            let size = u32::from_be_bytes([buf[at + 3], buf[at + 4], buf[at + 5], buf[at + 6]]) as usize;
            let end = at + 7 + size + 1;
            if end > filled {
                break;
            }
            if buf[at] == 1 && size >= 4 {
                let ch = u16::from_be_bytes([buf[at + 1], buf[at + 2]]);
                if buf[at + 7..at + 11] == [0, 60, 0, 40] {
                    publishes += 1;
                    if let Some(Some(seq)) = confirming.get_mut(ch as usize) {
                        *seq += 1;
                        confirm_due = true;
                    }
                } else {
                    let frame = match parse_frame(&buf[at..end]) {
                        Ok((_, f)) => f,
                        Err(e) => return Err(PerfError::Protocol(format!("unparsable frame: {e:?}"))),
                    };
                    if let AMQPFrame::Method(ch, method) = frame {
                        match answer(ch, method, &mut out, &mut confirming, &mut consumers) {
                            Answer::Reply => {}
                            Answer::Flood(tag, rk) => {
                                flush(&tx, &mut out).await?;
                                send(&tx, Out::Flood { channel: ch, consumer_tag: tag, routing_key: rk }).await?;
                            }
                            Answer::StopFlood(tag) => {
                                flush(&tx, &mut out).await?;
                                send(&tx, Out::StopFlood { channel: ch, consumer_tag: tag }).await?;
                            }
                            Answer::Close => {
                                flush(&tx, &mut out).await?;
                                // Let the writer send close-ok before the socket goes.
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                return Ok(());
                            }
                        }
                    }
                }
            }
            at = end;
        }
        if publishes > 0 {
            counters.published.fetch_add(publishes, Ordering::Relaxed);
        }
        if confirm_due {
            for (ch, seq) in confirming.iter().enumerate() {
                if let Some(seq) = seq.filter(|s| *s > 0) {
                    let ack = basic::Ack { delivery_tag: seq, multiple: true };
                    wire::encode(
                        &AMQPFrame::Method(ch as u16, AMQPClass::Basic(basic::AMQPMethod::Ack(ack))),
                        &mut out,
                    );
                }
            }
            counters.confirmed.fetch_add(publishes, Ordering::Relaxed);
        }
        flush(&tx, &mut out).await?;
        buf.copy_within(at..filled, 0);
        filled -= at;
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
    Ok(())
}

async fn send(tx: &mpsc::Sender<Out>, out: Out) -> Result<(), PerfError> {
    tx.send(out).await.map_err(|_| PerfError::Protocol("writer gone".into()))
}

async fn flush(tx: &mpsc::Sender<Out>, out: &mut Vec<u8>) -> Result<(), PerfError> {
    if out.is_empty() {
        return Ok(());
    }
    send(tx, Out::Frames(std::mem::take(out))).await
}

enum Answer {
    Reply,
    Flood(String, String),
    StopFlood(Option<String>),
    Close,
}

/// The minimal answer to a method: its -ok (unless nowait), nothing for acks.
fn answer(
    ch: u16,
    method: AMQPClass,
    out: &mut Vec<u8>,
    confirming: &mut Vec<Option<u64>>,
    consumers: &mut u64,
) -> Answer {
    let reply = |class: AMQPClass, out: &mut Vec<u8>| wire::encode(&AMQPFrame::Method(ch, class), out);
    match method {
        AMQPClass::Connection(connection::AMQPMethod::Close(_)) => {
            reply(AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})), out);
            return Answer::Close;
        }
        AMQPClass::Channel(channel::AMQPMethod::Open(_)) => {
            reply(AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})), out)
        }
        AMQPClass::Channel(channel::AMQPMethod::Close(_)) => {
            if let Some(c) = confirming.get_mut(ch as usize) {
                *c = None;
            }
            reply(AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})), out);
            return Answer::StopFlood(None);
        }
        AMQPClass::Exchange(m) => {
            let ok = match m {
                exchange::AMQPMethod::Declare(d) if !d.nowait => {
                    Some(exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {}))
                }
                exchange::AMQPMethod::Delete(d) if !d.nowait => {
                    Some(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {}))
                }
                exchange::AMQPMethod::Bind(d) if !d.nowait => Some(exchange::AMQPMethod::BindOk(exchange::BindOk {})),
                exchange::AMQPMethod::Unbind(d) if !d.nowait => {
                    Some(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {}))
                }
                _ => None,
            };
            if let Some(ok) = ok {
                reply(AMQPClass::Exchange(ok), out);
            }
        }
        AMQPClass::Queue(m) => {
            let ok = match m {
                queue::AMQPMethod::Declare(d) if !d.nowait => {
                    let name = if d.queue.as_str().is_empty() {
                        ShortString::from(crate::fresh_name("amq.gen-sink-"))
                    } else {
                        d.queue
                    };
                    Some(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
                        queue: name,
                        message_count: 0,
                        consumer_count: 0,
                    }))
                }
                queue::AMQPMethod::Bind(d) if !d.nowait => Some(queue::AMQPMethod::BindOk(queue::BindOk {})),
                queue::AMQPMethod::Unbind(_) => Some(queue::AMQPMethod::UnbindOk(queue::UnbindOk {})),
                queue::AMQPMethod::Purge(d) if !d.nowait => {
                    Some(queue::AMQPMethod::PurgeOk(queue::PurgeOk { message_count: 0 }))
                }
                queue::AMQPMethod::Delete(d) if !d.nowait => {
                    Some(queue::AMQPMethod::DeleteOk(queue::DeleteOk { message_count: 0 }))
                }
                _ => None,
            };
            if let Some(ok) = ok {
                reply(AMQPClass::Queue(ok), out);
            }
        }
        AMQPClass::Basic(basic::AMQPMethod::Qos(_)) => {
            reply(AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})), out)
        }
        AMQPClass::Basic(basic::AMQPMethod::Consume(c)) => {
            *consumers += 1;
            let tag = if c.consumer_tag.as_str().is_empty() {
                format!("sink-{consumers}")
            } else {
                c.consumer_tag.as_str().to_owned()
            };
            if !c.nowait {
                let ok = basic::ConsumeOk { consumer_tag: tag.as_str().into() };
                reply(AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(ok)), out);
            }
            return Answer::Flood(tag, c.queue.as_str().to_owned());
        }
        AMQPClass::Basic(basic::AMQPMethod::Cancel(c)) => {
            if !c.nowait {
                let ok = basic::CancelOk { consumer_tag: c.consumer_tag.clone() };
                reply(AMQPClass::Basic(basic::AMQPMethod::CancelOk(ok)), out);
            }
            return Answer::StopFlood(Some(c.consumer_tag.as_str().to_owned()));
        }
        AMQPClass::Basic(basic::AMQPMethod::Get(_)) => {
            reply(AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})), out)
        }
        AMQPClass::Basic(basic::AMQPMethod::Recover(_)) => {
            reply(AMQPClass::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})), out)
        }
        AMQPClass::Confirm(confirm::AMQPMethod::Select(s)) => {
            if confirming.len() <= ch as usize {
                confirming.resize(ch as usize + 1, None);
            }
            confirming[ch as usize].get_or_insert(0);
            if !s.nowait {
                reply(AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})), out);
            }
        }
        AMQPClass::Tx(tx::AMQPMethod::Select(_)) => {
            reply(AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})), out)
        }
        AMQPClass::Tx(tx::AMQPMethod::Commit(_)) => {
            reply(AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})), out)
        }
        AMQPClass::Tx(tx::AMQPMethod::Rollback(_)) => {
            reply(AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})), out)
        }
        // Acks, nacks, rejects, flow, close-ok and the rest need no answer.
        _ => {}
    }
    Answer::Reply
}

/// A consumer being flooded: a batch of pre-encoded deliveries whose tags are patched in place.
struct Flood {
    channel: u16,
    consumer_tag: String,
    batch: Vec<u8>,
    one_len: usize,
    tag_offset: usize,
    next_tag: u64,
}

impl Flood {
    fn new(channel: u16, consumer_tag: String, routing_key: &str, size: usize) -> Self {
        let mut one = Vec::new();
        let deliver = basic::Deliver {
            consumer_tag: consumer_tag.as_str().into(),
            delivery_tag: 0,
            redelivered: false,
            exchange: "".into(),
            routing_key: routing_key.into(),
        };
        wire::encode(&AMQPFrame::Method(channel, AMQPClass::Basic(basic::AMQPMethod::Deliver(deliver))), &mut one);
        let header = AMQPContentHeader { class_id: 60, body_size: size as u64, properties: BasicProperties::default() };
        wire::encode(&AMQPFrame::Header(channel, header), &mut one);
        let body = vec![b'x'; size];
        for chunk in body.chunks((FRAME_MAX - 8) as usize) {
            wire::encode(&AMQPFrame::Body(channel, chunk.to_vec()), &mut one);
        }
        let per_batch = (BATCH_BYTES / one.len()).max(1);
        let batch = one.iter().copied().cycle().take(one.len() * per_batch).collect();
        // frame header (7) + class and method (4) + consumer tag (1 + len)
        let tag_offset = 7 + 4 + 1 + consumer_tag.len();
        Self { channel, consumer_tag, batch, one_len: one.len(), tag_offset, next_tag: 1 }
    }

    fn per_batch(&self) -> u64 {
        (self.batch.len() / self.one_len) as u64
    }

    fn next_batch(&mut self) -> &[u8] {
        for i in 0..self.batch.len() / self.one_len {
            let at = i * self.one_len + self.tag_offset;
            self.batch[at..at + 8].copy_from_slice(&self.next_tag.to_be_bytes());
            self.next_tag += 1;
        }
        &self.batch
    }
}

async fn write_loop(mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Out>, size: usize, counters: Arc<Counters>) {
    let mut floods: Vec<Flood> = Vec::new();
    let mut turn = 0usize;
    let started = Instant::now();
    loop {
        let next = if floods.is_empty() {
            match rx.recv().await {
                Some(o) => Some(o),
                None => return,
            }
        } else {
            match rx.try_recv() {
                Ok(o) => Some(o),
                Err(mpsc::error::TryRecvError::Empty) => None,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        };
        match next {
            Some(Out::Frames(bytes)) => {
                if wr.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Some(Out::Flood { channel, consumer_tag, routing_key }) => {
                floods.push(Flood::new(channel, consumer_tag, &routing_key, size));
            }
            Some(Out::StopFlood { channel, consumer_tag }) => {
                floods.retain(|f| f.channel != channel || consumer_tag.as_ref().is_some_and(|t| *t != f.consumer_tag));
            }
            None => {
                if counters.stopped() || started.elapsed() > Duration::from_secs(24 * 3600) {
                    return;
                }
                turn = (turn + 1) % floods.len();
                let flood = &mut floods[turn];
                let n = flood.per_batch();
                if wr.write_all(flood.next_batch()).await.is_err() {
                    return;
                }
                counters.consumed.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}
