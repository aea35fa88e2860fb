//! A client connection: the handshake, then one task that reads frames and drives channels,
//! beside a writer task that flushes the connection's sink.
//!
//! Errors come back from channels as `AmqpError`s and are mapped here, in one place: soft codes
//! close the channel, hard codes close the connection (RabbitMQ's `handle_exception`).

pub mod codec;
pub(crate) mod erl;
pub mod handshake;
mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use amq_protocol::protocol::{AMQPClass, basic, channel, connection};
use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::Broker;
use crate::access::Permissions;
use crate::channel::assembler::Assembled;
use crate::channel::{Channel, ChannelCtx};
use crate::error::{AmqpError, ReplyCode};
use crate::sink::{ChannelDeliveries, ConnectionSink, DeferWrites};
use crate::vhost::VirtualHost;
use codec::{Frame, FrameError, Payloads};

/// How long we wait for connection.close-ok after sending connection.close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Read-buffer growth step.
const READ_CHUNK: usize = 16 * 1024;
/// A connection whose socket always has more to read (a publisher at full speed) gives its
/// runtime thread back once it has been reading for this long: reading straight on while data
/// is there never returns to the scheduler, and the other connections (and the socket
/// readiness tokio polls for them) waited for as long as the publisher kept up, 30 s once in a
/// 30 s run. By time, not bytes: a yield every 16 KiB cost a quarter of the 1 KiB rows'
/// throughput in an A/B; one every millisecond is a few hundred reads of small messages.
const YIELD_AFTER: Duration = Duration::from_millis(1);
/// Publishers stop being read while the journal has more than this to write...
const JOURNAL_BACKLOG_HIGH: u64 = 16 << 20;
/// ... until it is down to this.
const JOURNAL_BACKLOG_LOW: u64 = 4 << 20;
/// A throttled connection looks again after this long, doubling up to `THROTTLE_POLL_MAX`.
const THROTTLE_POLL_MIN: Duration = Duration::from_millis(1);
const THROTTLE_POLL_MAX: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// We sent connection.close; only close-ok (or close) matters now.
    Closing(Instant),
    Done,
}

/// Run one client connection to the end.
pub async fn run(mut stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let mut negotiated = match handshake::handshake(&mut stream, peer, &broker).await {
        Ok(n) => n,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "handshake failed");
            return;
        }
    };
    let id = broker.next_id();
    // An AMQPS connection reaches us over a Unix socket pair posing as a TcpStream (see
    // `tls`): it has no local address. A dual-stack listener's IPv4 clients are IPv4.
    let (local, tls) = match stream.local_addr() {
        Ok(a) => (std::net::SocketAddr::new(a.ip().to_canonical(), a.port()), false),
        Err(_) => (peer, true),
    };
    let (drained_tx, drained_rx) = mpsc::unbounded_channel();
    let (reader, write_half) = stream.into_split();
    let write_half = Arc::new(write_half);
    let sink =
        ConnectionSink::new(id, negotiated.frame_max, negotiated.cancel_notify, drained_tx, Some(write_half.clone()));
    broker.register_connection(crate::admin::ConnectionInfo {
        id,
        user: negotiated.user.clone(),
        vhost: negotiated.vhost.name.clone(),
        peer,
        local,
        connected_at: crate::clock::now_ms(),
        client_properties: std::mem::take(&mut negotiated.client_properties),
        auth_mechanism: std::mem::take(&mut negotiated.auth_mechanism),
        frame_max: negotiated.frame_max,
        channel_max: negotiated.channel_max,
        heartbeat: negotiated.heartbeat,
        tls,
        sink: sink.clone(),
    });
    let _registered = Registered { broker: broker.clone(), id };
    let heartbeat = (negotiated.heartbeat > 0).then(|| Duration::from_secs(u64::from(negotiated.heartbeat)));
    let writer = tokio::spawn(writer::run(sink.clone(), write_half, heartbeat));
    let mut conn = Connection {
        id,
        peer,
        broker,
        vhost: negotiated.vhost,
        user: negotiated.user,
        permissions: negotiated.permissions,
        sink,
        frame_max: negotiated.frame_max,
        channel_max: negotiated.channel_max,
        heartbeat,
        channels: HashMap::new(),
        state: State::Open,
        synced: None,
        publisher: false,
        alarm_set: false,
        blocked_notify: negotiated.blocked_notify,
        blocked_sent: false,
        last_read: 0,
        busy_since: None,
        pressed_by: Vec::new(),
        journal_throttled: false,
        throttle_poll: THROTTLE_POLL_MIN,
    };
    conn.synced = conn.broker.store.as_ref().map(|s| s.journal.synced());
    conn.serve(reader, negotiated.read_buf, drained_rx, shutdown, writer).await;
}

/// Takes a connection out of the broker's list when it ends, however it ends.
struct Registered {
    broker: Arc<Broker>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.broker.unregister_connection(self.id);
    }
}

struct Connection {
    id: u64,
    peer: SocketAddr,
    broker: Arc<Broker>,
    vhost: Arc<VirtualHost>,
    user: String,
    /// The user's permissions on the vhost, fetched again when the access control changes.
    permissions: Arc<Permissions>,
    sink: Arc<ConnectionSink>,
    frame_max: u32,
    channel_max: u16,
    heartbeat: Option<Duration>,
    channels: HashMap<u16, Channel>,
    state: State,
    /// The journal's highest ticket on disk, when the broker has a store.
    synced: Option<watch::Receiver<u64>>,
    /// This connection has published (RabbitMQ blocks only publishing connections).
    publisher: bool,
    /// The resource alarm was set when last looked at (see `serve`).
    alarm_set: bool,
    /// The client announced the `connection.blocked` capability.
    blocked_notify: bool,
    /// We told the client it is blocked (and owe it connection.unblocked).
    blocked_sent: bool,
    /// Bytes the last read brought: a small read leaves most of its allocation empty, so the
    /// frames it completes are copied out of it (see `codec::Payloads`).
    last_read: usize,
    /// The first read since this connection last gave its thread back (see `YIELD_AFTER`).
    busy_since: Option<Instant>,
    /// Queues over their memory bound that this connection published into (flow control).
    pressed_by: Vec<Arc<crate::queue::Queue>>,
    /// The journal's backlog passed its bound while this connection was publishing.
    journal_throttled: bool,
    /// How long a throttled connection waits before looking again.
    throttle_poll: Duration,
}

enum ReadOutcome {
    /// This many bytes were read.
    Data(usize),
    Eof,
    Failed(std::io::Error),
    HeartbeatTimeout,
}

async fn read_some(reader: &mut OwnedReadHalf, buf: &mut BytesMut, timeout: Option<Duration>) -> ReadOutcome {
    if buf.is_empty() && buf.capacity() > 0 {
        // Everything read so far is parsed. While data keeps coming, read straight into the
        // buffer we have; once the socket is idle, give the buffer back before waiting, so an
        // idle connection holds no read buffer at all (it would keep up to 16 KiB).
        match reader.try_read_buf(buf) {
            Ok(0) => return ReadOutcome::Eof,
            Ok(n) => return ReadOutcome::Data(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => *buf = BytesMut::new(),
            Err(e) => return ReadOutcome::Failed(e),
        }
    }
    loop {
        let ready = reader.readable();
        let ready = match timeout {
            Some(t) => match tokio::time::timeout(t, ready).await {
                Ok(r) => r,
                Err(_) => return ReadOutcome::HeartbeatTimeout,
            },
            None => ready.await,
        };
        if let Err(e) = ready {
            return ReadOutcome::Failed(e);
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        match reader.try_read_buf(buf) {
            Ok(0) => return ReadOutcome::Eof,
            Ok(n) => return ReadOutcome::Data(n),
            // a spurious readiness: wait again
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return ReadOutcome::Failed(e),
        }
    }
}

impl Connection {
    fn ctx(&self) -> ChannelCtx<'_> {
        ChannelCtx {
            conn_id: self.id,
            broker: &self.broker,
            vhost: &self.vhost,
            sink: &self.sink,
            user: &self.user,
            permissions: &self.permissions,
        }
    }

    /// Users or permissions changed since the connection last looked: fetch its permissions
    /// again (one atomic load when nothing changed).
    fn refresh_permissions(&mut self) {
        if self.broker.access.generation() != self.permissions.generation {
            self.permissions = self.broker.access.permissions(&self.user, &self.vhost.name);
        }
    }

    async fn serve(
        &mut self,
        mut reader: OwnedReadHalf,
        mut buf: BytesMut,
        mut drained: mpsc::UnboundedReceiver<()>,
        mut shutdown: watch::Receiver<bool>,
        mut writer: JoinHandle<()>,
    ) {
        // A client silent for two heartbeat intervals is gone.
        let read_timeout = self.heartbeat.map(|h| h * 2);
        let mut writer_done = false;
        let mut shutting_down = *shutdown.borrow();
        if shutting_down {
            self.start_close(AmqpError::new(
                ReplyCode::ConnectionForced,
                "broker forced connection closure with reason 'shutdown'",
            ));
        }
        let mut forced_closes = self.broker.forced_closes();
        let mut alarm = self.broker.alarm();
        let mut alarm_open = true;
        self.alarm_set = alarm.borrow_and_update().is_some();
        self.process(&mut buf);
        while self.state != State::Done {
            let close_deadline = match self.state {
                State::Closing(deadline) => Some(deadline),
                _ => None,
            };
            let awaiting_disk = self.channels.values().any(Channel::awaiting_disk);
            let mut synced = self.synced.clone();
            let blocked = self.blocked();
            self.notify_blocked(blocked, *alarm.borrow());
            let throttled = self.throttled();
            tokio::select! {
                // A blocked connection is not read from: its publishes wait in the client and
                // in the socket, and TCP pushes back (RabbitMQ's flow control).
                outcome = read_some(&mut reader, &mut buf, read_timeout), if !blocked && !throttled => match outcome {
                    ReadOutcome::Data(n) => {
                        self.last_read = n;
                        self.sink.octets.recv.add_serialised(n as u64);
                        {
                            let _batch = DeferWrites::begin();
                            self.process(&mut buf);
                            self.note_pressure();
                        }
                        let now = Instant::now();
                        let since = *self.busy_since.get_or_insert(now);
                        if now.duration_since(since) >= YIELD_AFTER {
                            self.busy_since = None;
                            tokio::task::yield_now().await;
                        }
                    }
                    ReadOutcome::Eof => break,
                    ReadOutcome::Failed(e) => {
                        tracing::debug!(peer = %self.peer, error = %e, "read failed");
                        break;
                    }
                    ReadOutcome::HeartbeatTimeout => {
                        tracing::warn!(peer = %self.peer, "missed heartbeats from client, closing connection");
                        break;
                    }
                },
                Some(()) = drained.recv() => {
                    let _batch = DeferWrites::begin();
                    self.dispatch_all();
                }
                changed = alarm.changed(), if alarm_open => {
                    alarm_open = changed.is_ok();
                    self.alarm_set = alarm_open && alarm.borrow_and_update().is_some();
                    // frames left unprocessed when the connection got blocked
                    self.process(&mut buf);
                }
                Some(Ok(())) = async {
                    match synced.as_mut() {
                        Some(rx) => Some(rx.changed().await),
                        None => None,
                    }
                }, if awaiting_disk => {
                    let _batch = DeferWrites::begin();
                    self.flush_confirms();
                }
                forced = forced_closes.recv(), if !shutting_down => {
                    let explanation = match forced {
                        Ok(f) if f.applies_to(self.id, &self.user, &self.vhost.name) => Some(f.explanation.clone()),
                        Ok(_) => None,
                        // Missed some: be on the safe side, as they may have named this one.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some("closed by the administrator".into()),
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
                    };
                    if let Some(explanation) = explanation {
                        shutting_down = true;
                        self.start_close(AmqpError::new(ReplyCode::ConnectionForced, explanation));
                    }
                }
                changed = shutdown.changed(), if !shutting_down => {
                    shutting_down = true;
                    if changed.is_err() || *shutdown.borrow() {
                        self.start_close(AmqpError::new(
                            ReplyCode::ConnectionForced,
                            "broker forced connection closure with reason 'shutdown'",
                        ));
                    }
                }
                _ = &mut writer => {
                    writer_done = true;
                    break;
                }
                _ = tokio::time::sleep_until(close_deadline.unwrap_or_else(Instant::now)), if close_deadline.is_some() => break,
                _ = tokio::time::sleep(self.throttle_poll), if throttled => {
                    self.recheck_throttle();
                    self.throttle_poll = (self.throttle_poll * 2).min(THROTTLE_POLL_MAX);
                }
            }
        }
        self.release_all();
        {
            let mut st = self.sink.lock();
            st.closed = true;
            st.finished = true;
        }
        self.sink.wake_writer();
        if !writer_done && tokio::time::timeout(Duration::from_secs(5), &mut writer).await.is_err() {
            writer.abort();
        }
        tracing::debug!(peer = %self.peer, "connection closed");
    }

    /// Blocked by a resource alarm: the alarm is set and this connection publishes.
    fn blocked(&self) -> bool {
        self.alarm_set && self.publisher && self.state == State::Open
    }

    /// Flow control (RabbitMQ's credit flow): a publisher is not read from while a queue it
    /// publishes into is over its memory bound, or the journal is far behind. Unlike an alarm
    /// this is per connection and silent (no connection.blocked), and it lifts by itself.
    fn throttled(&self) -> bool {
        self.state == State::Open && (!self.pressed_by.is_empty() || self.journal_throttled)
    }

    /// After a batch: note the queues that came under pressure and the journal's backlog.
    fn note_pressure(&mut self) {
        let mut wrote_journal = false;
        for ch in self.channels.values_mut() {
            wrote_journal |= std::mem::take(&mut ch.wrote_journal);
            if let Some(q) = ch.pressed_by.take()
                && !self.pressed_by.iter().any(|p| Arc::ptr_eq(p, &q))
            {
                self.pressed_by.push(q);
            }
        }
        // Only a connection that writes to the journal waits for it: one publishing transient
        // messages is not slowed by another's persistent flood.
        if wrote_journal
            && let Some(store) = &self.broker.store
            && store.journal.backlog() > JOURNAL_BACKLOG_HIGH
        {
            self.journal_throttled = true;
        }
        if self.throttled() {
            self.throttle_poll = THROTTLE_POLL_MIN;
        }
    }

    /// A throttled connection looks again: throttling ends when every cause has.
    fn recheck_throttle(&mut self) {
        self.pressed_by.retain(|q| q.recheck_pressure());
        if self.journal_throttled {
            let backlog = self.broker.store.as_ref().map_or(0, |s| s.journal.backlog());
            self.journal_throttled = backlog > JOURNAL_BACKLOG_LOW;
        }
    }

    /// Tell a client that understands it when it becomes blocked or unblocked.
    fn notify_blocked(&mut self, blocked: bool, reason: crate::alarm::AlarmState) {
        if !self.blocked_notify || blocked == self.blocked_sent {
            return;
        }
        let method = if blocked {
            let reason = reason.unwrap_or(crate::alarm::LOW_ON_DISK);
            tracing::info!(peer = %self.peer, reason, "connection blocked");
            connection::AMQPMethod::Blocked(connection::Blocked { reason: reason.into() })
        } else {
            tracing::info!(peer = %self.peer, "connection unblocked");
            connection::AMQPMethod::Unblocked(connection::Unblocked {})
        };
        self.sink.send_method(0, AMQPClass::Connection(method));
        self.blocked_sent = blocked;
    }

    /// Handle every complete frame in the buffer (until the connection gets blocked), then
    /// send coalesced confirms.
    fn process(&mut self, buf: &mut BytesMut) {
        while self.state != State::Done && !self.blocked() {
            let payloads = if self.last_read < READ_CHUNK / 2 { Payloads::CopySmall } else { Payloads::Share };
            match codec::read_frame(buf, self.frame_max, payloads) {
                Ok(Some(frame)) => {
                    if let Err(e) = self.handle_frame(frame) {
                        self.start_close(e);
                    }
                }
                Ok(None) => break,
                // Once closing, RabbitMQ only looks at connection.close/close-ok.
                Err(FrameError::Close(_) | FrameError::Abort(_)) if self.state != State::Open => {}
                Err(FrameError::Close(e)) => self.start_close(e),
                Err(FrameError::Fatal(e)) => {
                    // The byte stream cannot be trusted past a framing error.
                    buf.clear();
                    self.start_close(e);
                    break;
                }
                Err(FrameError::Abort(reason)) => {
                    tracing::info!(peer = %self.peer, reason, "closing connection without a reply, as RabbitMQ");
                    buf.clear();
                    self.release_all();
                    self.sink.lock().closed = true;
                    self.state = State::Done;
                }
            }
        }
        self.flush_confirms();
    }

    /// Send the confirms that are due; persistent ones once the journal has them on disk.
    fn flush_confirms(&mut self) {
        let synced = self.synced.as_ref().map_or(u64::MAX, |rx| *rx.borrow());
        let ctx = ChannelCtx {
            conn_id: self.id,
            broker: &self.broker,
            vhost: &self.vhost,
            sink: &self.sink,
            user: &self.user,
            permissions: &self.permissions,
        };
        for ch in self.channels.values_mut() {
            ch.flush_confirms(&ctx, synced);
        }
    }

    /// Hard error or shutdown: send connection.close and stop serving channels.
    fn start_close(&mut self, error: AmqpError) {
        if self.state != State::Open {
            return;
        }
        if error.code != ReplyCode::ConnectionForced {
            tracing::info!(peer = %self.peer, error = %error, "closing connection");
        }
        self.release_all();
        self.sink.lock().closed = true;
        let close = connection::Close {
            reply_code: error.code.code(),
            reply_text: error.reply_text().into(),
            class_id: error.class_id,
            method_id: error.method_id,
        };
        self.sink.send_method(0, AMQPClass::Connection(connection::AMQPMethod::Close(close)));
        self.state = State::Closing(Instant::now() + CLOSE_TIMEOUT);
    }

    fn handle_frame(&mut self, frame: Frame) -> Result<(), AmqpError> {
        let (frame, refusal) = frame.split_refusal();
        if let State::Closing(_) = self.state {
            match frame {
                Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => self.state = State::Done,
                Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(_))) => {
                    self.send_close_ok();
                    self.state = State::Done;
                }
                _ => {}
            }
            return Ok(());
        }
        if matches!(frame, Frame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Publish(_)))) {
            self.publisher = true;
        }
        match frame {
            Frame::Heartbeat(0) => Ok(()),
            Frame::Method(0, method) => self.handle_connection_method(method),
            Frame::Header(0, ..) | Frame::Body(0, _) | Frame::Heartbeat(_) => Err(codec::unexpected_frame(&frame)),
            Frame::Method(ch, _) | Frame::Header(ch, ..) | Frame::Body(ch, _) => {
                self.handle_channel_frame(ch, frame, refusal)
            }
            Frame::Refused(..) => Ok(()),
        }
    }

    fn send_close_ok(&self) {
        self.sink.send_method(0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})));
    }

    fn handle_connection_method(&mut self, method: AMQPClass) -> Result<(), AmqpError> {
        match method {
            AMQPClass::Connection(connection::AMQPMethod::Close(_)) => {
                self.release_all();
                self.sink.lock().closed = true;
                self.send_close_ok();
                self.state = State::Done;
                Ok(())
            }
            // Clients may echo these; nothing to do. (An unsolicited close-ok is refused
            // below, as RabbitMQ's reader does: 504 in connection state running.)
            AMQPClass::Connection(connection::AMQPMethod::Blocked(_))
            | AMQPClass::Connection(connection::AMQPMethod::Unblocked(_)) => Ok(()),
            AMQPClass::Connection(connection::AMQPMethod::UpdateSecret(m)) => {
                // RabbitMQ asks each auth backend to refresh its state; its internal backend's
                // state never expires (`state_can_expire() -> false`), so the new secret is
                // taken without a check and the user keeps its permissions. A secret that
                // happens to be the user's password is noted in the log, nothing more.
                let matches = std::str::from_utf8(m.new_secret.as_bytes())
                    .is_ok_and(|secret| self.broker.access.check_password(&self.user, secret));
                tracing::info!(
                    peer = %self.peer, user = %self.user, reason = %m.reason, password = matches,
                    "user updated secret"
                );
                let ok = connection::AMQPMethod::UpdateSecretOk(connection::UpdateSecretOk {});
                self.sink.send_method(0, AMQPClass::Connection(ok));
                Ok(())
            }
            other => Err(AmqpError::channel_error("unexpected method in connection state running").for_method(&other)),
        }
    }

    fn handle_channel_frame(&mut self, id: u16, frame: Frame, refusal: Option<AmqpError>) -> Result<(), AmqpError> {
        self.refresh_permissions();
        let Some(channel) = self.channels.get_mut(&id) else {
            // RabbitMQ limits how many channels are open, not their numbers.
            let open = self.channels.len();
            if self.channel_max != 0 && open >= usize::from(self.channel_max) {
                return Err(AmqpError::not_allowed(format!(
                    "number of channels opened ({open}) has reached the negotiated channel_max ({})",
                    self.channel_max
                )));
            }
            return match frame {
                Frame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Open(_))) => {
                    self.channels.insert(id, Channel::new(id));
                    self.sink.lock().channels.insert(id, ChannelDeliveries::new());
                    self.sink.send_method(id, AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})));
                    Ok(())
                }
                Frame::Method(_, m) => Err(AmqpError::channel_error("expected 'channel.open'").for_method(&m)),
                _ => Err(AmqpError::unexpected_frame("expected method frame, got non method frame instead")),
            };
        };
        if channel.closing {
            // Content is still assembled (a stray content frame is a connection error), but
            // every complete method other than close/close-ok is dropped.
            match channel.assemble(frame, self.broker.config.max_message_size)? {
                Assembled::Method(AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))) => {
                    self.channels.remove(&id);
                }
                Assembled::Method(AMQPClass::Channel(channel::AMQPMethod::Close(_))) => {
                    // The closes crossed: answer, and keep waiting for the close-ok of ours
                    // (RabbitMQ's closing state), so that it does not land on a dead channel.
                    self.sink.send_method(id, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})));
                }
                _ => {}
            }
            return Ok(());
        }
        if let Frame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Close(_))) = frame {
            Channel::release(&self.ctx(), id);
            self.channels.remove(&id);
            self.sink.send_method(id, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})));
            return Ok(());
        }
        let ctx = ChannelCtx {
            conn_id: self.id,
            broker: &self.broker,
            vhost: &self.vhost,
            sink: &self.sink,
            user: &self.user,
            permissions: &self.permissions,
        };
        match channel.handle_frame(&ctx, frame, refusal) {
            Ok(()) => Ok(()),
            Err(e) if e.code.is_hard() => Err(e),
            Err(e) => {
                let synced = self.synced.as_ref().map_or(u64::MAX, |rx| *rx.borrow());
                channel.flush_confirms(&ctx, synced);
                channel.closing = true;
                Channel::release(&ctx, id);
                tracing::debug!(peer = %self.peer, channel = id, error = %e, "closing channel");
                let close = channel::Close {
                    reply_code: e.code.code(),
                    reply_text: e.reply_text().into(),
                    class_id: e.class_id,
                    method_id: e.method_id,
                };
                self.sink.send_method(id, AMQPClass::Channel(channel::AMQPMethod::Close(close)));
                Ok(())
            }
        }
    }

    /// The writer drained a full buffer: queues that stopped at the high-water mark go on.
    fn dispatch_all(&self) {
        let queues: Vec<_> = {
            let st = self.sink.lock();
            st.channels.values().flat_map(|ch| ch.consumers.values().map(|c| c.queue.clone())).collect()
        };
        for q in queues {
            q.dispatch();
        }
    }

    /// Give back everything the connection holds: unacked messages, consumers, exclusive queues.
    fn release_all(&mut self) {
        let ids: Vec<u16> = self.channels.keys().copied().collect();
        let ctx = self.ctx();
        for id in ids {
            Channel::release(&ctx, id);
        }
        self.vhost.remove_exclusive_queues(self.id);
    }
}
