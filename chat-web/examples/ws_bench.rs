//! Benchmark (not a test): N WebSocket clients in one room (or spread over
//! `WS_BENCH_ROOMS` rooms), publishers sending R msg/s in all; reports
//! the p50/p99 delivery latency (send time in the text -> receipt by every client) and, given
//! the chat server's pid, its RSS per idle session.
//!
//!     cargo run --release -p warren-chat --example ws_bench -- http://127.0.0.1:8080 1000 100 10 [server-pid]
//!
//! Several front ends of one chat (comma-separated base URLs, e.g. on a RabbitMQ cluster):
//! accounts and the room are made through the first, clients and publishers are spread over
//! all of them round-robin (a login token is good on every front end), and `lost` counts the
//! deliveries that never came.
//!
//! Before the measured seconds, the publishers send for a warm-up of 2 s (`WS_BENCH_WARMUP_SECS`,
//! 0 for none) whose messages are not counted: the first second after a thousand sessions go
//! live is the slowest (on the 2-core machine, first messages fell 15-50 ms behind while later
//! ones kept up), and the figure is about a room that is already busy. The clients share the
//! server's machine, so they are read the way a load generator would, not the way a browser
//! would: one thread per bench process reads all of its sessions from one epoll set (`Readers`),
//! each session a plain socket with its own few lines of WebSocket framing, and every session
//! stays open until the last one has its messages (a session that closes early would load the
//! server with its teardown while others still wait, and the run would measure that).
//!
//! With `WS_BENCH_ROOMS=K` the clients and the rate are split evenly over K rooms (each client
//! subscribes to one room, each room has its own publishers); with `WS_BENCH_DUMP=FILE` every
//! delivery's latency in microseconds is written to FILE (little-endian u32s), so that several
//! bench processes (bench/chat.sh `SHARDS=`) can pool theirs into one percentile.
//!
//! The sending is spread round-robin over one account per `PER_PUBLISHER` msg/s: a chat user
//! may post 10 msg/s (bursts of 20). Their sign-ups come from loopback, whose allowance is 50 a
//! minute: rates up to about 350 msg/s fit in one run.

use std::io::Read;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use hyper::{Body, Client, Method, Request};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use warren_perf::usage;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> Res<Value> {
    let mut req =
        Request::builder().method(Method::POST).uri(format!("{base}{path}")).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = Client::new().request(req.body(Body::from(body.to_string()))?).await?;
    let bytes = hyper::body::to_bytes(resp.into_body()).await?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The send time of a chat message event (`"t=<micros>"` in its text): found without parsing the
/// whole event, so that thousands of sessions cost the server's machine little. `None` for other
/// events and for the warm-up's messages (no "t=").
fn sent_micros(json: &str) -> Option<u128> {
    if !json.contains(r#""type":"message""#) {
        return None;
    }
    let at = json.find("\"t=")? + 3;
    let digits = &json[at..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

fn now_micros() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

/// How long a bench process keeps its sessions open once it has its figures: the other bench
/// processes of a run (`SHARDS=`) may still wait for their last messages, and thousands of
/// sessions closing at once would load the server meanwhile (seen as 0.5-1 s in the last 100 ms of
/// a run's latencies).
const LINGER: Duration = Duration::from_secs(3);

/// Messages a second sent by one publisher account, under the chat's 10 a second per user.
const PER_PUBLISHER: u64 = 8;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket session with Nagle off, as browsers open them.
async fn connect(ws_base: &str, token: &str) -> Res<Ws> {
    let url = format!("{ws_base}/ws?token={token}");
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
    Ok(ws)
}

/// One subscriber's WebSocket session as a plain socket, framed by the bench itself (client
/// frames masked, server frames read as they come) and read by `read_all`.
struct Session {
    socket: mio::net::TcpStream,
    /// Bytes read and not yet a whole frame.
    buf: Vec<u8>,
    /// Timed messages received and counted.
    got: usize,
    /// The server closed the session (or its socket failed).
    closed: bool,
}

impl Session {
    /// Connect to the front end at `base` (`http://host:port`) as `token`, upgrade to a
    /// WebSocket with Nagle off (as browsers do) and send `subscribe`.
    async fn open(base: &str, token: &str, subscribe: &str) -> Res<Session> {
        let host = base.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET /ws?token={token} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: d2FycmVuIGJlbmNoIGtleQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(1024);
        let end = loop {
            if stream.read_buf(&mut buf).await? == 0 {
                return Err("the front end closed the connection during the upgrade".into());
            }
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() > 64 * 1024 {
                return Err("no end to the upgrade's response headers".into());
            }
        };
        if !buf.starts_with(b"HTTP/1.1 101") {
            return Err(format!("upgrade refused: {}", String::from_utf8_lossy(&buf[..end])).into());
        }
        buf.drain(..end);
        stream.write_all(&client_frame(1, subscribe.as_bytes())).await?;
        let socket = mio::net::TcpStream::from_std(stream.into_std()?);
        Ok(Session { socket, buf, got: 0, closed: false })
    }

    fn finished(&self, expected: usize) -> bool {
        self.closed || self.got >= expected
    }

    /// Read what the socket has (it is edge-triggered: until it is empty), counting the
    /// latency of each timed message up to `expected`.
    fn read(&mut self, scratch: &mut [u8], expected: usize, lat: &mut Latencies) {
        loop {
            match self.socket.read(scratch) {
                Ok(0) => self.closed = true,
                Ok(n) => {
                    self.buf.extend_from_slice(&scratch[..n]);
                    self.parse(expected, lat);
                    // A short read emptied the socket: what comes later is a new edge, so
                    // no second read just to hear "would block" (half the reads otherwise).
                    if n == scratch.len() {
                        continue;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => self.closed = true,
            }
            return;
        }
    }

    /// Take the whole frames off the front of the buffer.
    fn parse(&mut self, expected: usize, lat: &mut Latencies) {
        let mut at = 0;
        while let Some((opcode, payload)) = server_frame(&self.buf[at..]) {
            let frame = &self.buf[at + payload.start..at + payload.end];
            at += payload.end;
            match opcode {
                // text
                1 if self.got < expected => {
                    if let Some(sent) = std::str::from_utf8(frame).ok().and_then(sent_micros) {
                        lat.add(sent, now_micros());
                        self.got += 1;
                    }
                }
                // close
                8 => self.closed = true,
                _ => {}
            }
        }
        self.buf.drain(..at);
    }
}

/// A client frame (masked, as the protocol wants from clients) of `opcode` with `payload`.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    frame
}

/// The first whole server frame (unmasked) at the start of `buf`: its opcode and where its
/// payload is; its end is the payload's end. `None` until it is all there.
fn server_frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>)> {
    let (&first, &second) = (buf.first()?, buf.get(1)?);
    let (len, header): (usize, usize) = match second & 0x7f {
        126 => (u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize, 4),
        127 => (usize::try_from(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)).ok()?, 10),
        n => (n as usize, 2),
    };
    let end = header.checked_add(len)?;
    (buf.len() >= end).then_some((first & 0x0f, header..end))
}

/// The latencies of the timed messages, in microseconds, and the worst of each 100 ms of send
/// time (where in the run the tail is).
#[derive(Default)]
struct Latencies {
    all: Vec<u64>,
    worst: std::collections::BTreeMap<u128, u64>,
}

impl Latencies {
    fn add(&mut self, sent: u128, received: u128) {
        let lat = received.saturating_sub(sent) as u64;
        self.all.push(lat);
        let worst = self.worst.entry(sent / 100_000).or_default();
        *worst = (*worst).max(lat);
    }
}

/// Read every session from one epoll set until each has `expected` timed messages (or is closed)
/// or `deadline` passes; the sessions stay open until then. The latencies, and the sessions
/// (still open: see `LINGER`).
fn read_all(mut sessions: Vec<Session>, expected: usize, deadline: Instant) -> Res<(Latencies, Vec<Session>)> {
    let mut poll = mio::Poll::new()?;
    let mut lat = Latencies { all: Vec::with_capacity(expected * sessions.len()), ..Default::default() };
    for (i, s) in sessions.iter_mut().enumerate() {
        poll.registry().register(&mut s.socket, mio::Token(i), mio::Interest::READABLE)?;
        // what came with the upgrade's response
        s.parse(expected, &mut lat);
    }
    let mut scratch = vec![0u8; 64 * 1024];
    let mut events = mio::Events::with_capacity(1024);
    let mut finished = sessions.iter().filter(|s| s.finished(expected)).count();
    let nap = Duration::from_micros(std::env::var("WS_BENCH_NAP_US").ok().and_then(|s| s.parse().ok()).unwrap_or(1000));
    while finished < sessions.len() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        // with a nap: look, and if nothing is there, sleep it off; without: wait for a delivery
        let wait = if nap.is_zero() { left } else { Duration::ZERO };
        match poll.poll(&mut events, Some(wait)) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r?,
        }
        if events.is_empty() && !nap.is_zero() {
            std::thread::sleep(nap.min(left));
            continue;
        }
        for event in &events {
            let Some(s) = sessions.get_mut(event.token().0) else {
                continue;
            };
            let before = s.finished(expected);
            s.read(&mut scratch, expected, &mut lat);
            if !before && s.finished(expected) {
                finished += 1;
            }
        }
    }
    Ok((lat, sessions))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let bases: Vec<String> =
        args.get(1).map_or("http://127.0.0.1:8080", String::as_str).split(',').map(str::to_owned).collect();
    let base = bases[0].clone();
    let ws_bases: Vec<String> = bases.iter().map(|b| b.replace("http://", "ws://")).collect();
    let clients: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let rate: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
    let secs: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(10);
    let pid: Option<u32> = args.get(5).and_then(|s| s.parse().ok());
    let tag: u32 = rand::random();

    let rooms: usize = std::env::var("WS_BENCH_ROOMS").ok().and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
    let dump = std::env::var("WS_BENCH_DUMP").ok();

    let owner =
        post(&base, "/api/register", None, json!({"username": format!("bench-{tag:08x}"), "password": "benchbench"}))
            .await?;
    let token = owner["token"].as_str().ok_or("register failed")?.to_owned();
    // per room: its id and its publishers' tokens with the front end each sends through
    let per_room_rate = rate.div_ceil(rooms as u64);
    let mut room_ids = Vec::new();
    let mut room_publishers = Vec::new();
    for r in 0..rooms {
        let room = post(&base, "/api/rooms", Some(&token), json!({"name": format!("bench {tag:08x} {r}")})).await?;
        let room_id = room["id"].as_str().ok_or_else(|| format!("room failed: {room}"))?.to_owned();
        let mut publishers = Vec::new();
        for p in 0..per_room_rate.div_ceil(PER_PUBLISHER).max(1) {
            let name = format!("bench-{tag:08x}-r{r}p{p}");
            let reply = post(&base, "/api/register", None, json!({"username": name, "password": "benchbench"})).await?;
            let Some(token) = reply["token"].as_str() else {
                return Err(format!("registering publisher {p} of room {r}: {reply}").into());
            };
            post(&base, &format!("/api/rooms/{room_id}/join"), Some(token), json!({})).await?;
            publishers.push((token.to_owned(), (r + p as usize) % ws_bases.len()));
        }
        room_ids.push(room_id);
        room_publishers.push(publishers);
    }

    if ws_bases.len() > 1 {
        // the other front ends fold the new room and memberships from the broker meanwhile
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Sending order: publisher 0 of every room, then publisher 1 of every room, ...: cycling it
    // at the total rate gives each room rate/rooms and spreads a room's over its publishers.
    let mut publishers = Vec::new();
    let most = room_publishers.iter().map(Vec::len).max().unwrap_or(0);
    for p in 0..most {
        for (r, pubs) in room_publishers.iter().enumerate() {
            if let Some((token, at)) = pubs.get(p) {
                publishers.push((connect(&ws_bases[*at], token).await?, room_ids[r].clone()));
            }
        }
    }
    // the chat server's CPU and RSS now, when its pid was given
    let server_usage = || pid.and_then(usage::sample);
    let server_rss_kib = || server_usage().map(|s| s.rss_bytes / 1024);
    let rss_before = server_rss_kib();
    let mut sessions = Vec::with_capacity(clients);
    for c in 0..clients {
        // every client is the same member (one account, many sessions): the fan-out is what counts
        let room_id = &room_ids[c % rooms];
        let subscribe = json!({"type": "subscribe", "room": room_id}).to_string();
        sessions.push(Session::open(&bases[c % bases.len()], &token, &subscribe).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let (Some(before), Some(after)) = (rss_before, server_rss_kib()) {
        println!(
            "RSS per idle session: {:.1} KiB ({} sessions, {} KiB -> {} KiB)",
            (after.saturating_sub(before)) as f64 / clients as f64,
            clients,
            before,
            after
        );
    }

    let start = Instant::now();
    let cpu_start = (usage::own(), server_usage());
    // what each client should receive: its room's share of the rate
    let expected = per_room_rate * secs;
    let total_expected = expected * clients as u64;
    let warmup_secs: u64 = std::env::var("WS_BENCH_WARMUP_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let deadline = Instant::now() + Duration::from_secs(warmup_secs + secs + 15);
    let readers = std::thread::spawn(move || read_all(sessions, expected as usize, deadline));
    let sends = per_room_rate * rooms as u64;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / sends.max(1)));
    for (_, i) in (0..sends * warmup_secs).zip((0..publishers.len()).cycle()) {
        tick.tick().await;
        // no "t=" in the text: the readers do not count these
        let (ws, room_id) = &mut publishers[i];
        let text = json!({"type": "send", "room": room_id, "text": "warm-up"}).to_string();
        ws.send(Message::Text(text)).await?;
    }
    for (_, i) in (0..sends * secs).zip((0..publishers.len()).cycle()) {
        tick.tick().await;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_micros();
        let (ws, room_id) = &mut publishers[i];
        let text = json!({"type": "send", "room": room_id, "text": format!("t={now}")}).to_string();
        ws.send(Message::Text(text)).await?;
    }
    let (lat, sessions) =
        tokio::task::spawn_blocking(move || readers.join()).await?.map_err(|_| "the reader thread panicked")??;
    if std::env::var_os("WS_BENCH_TRACE").is_some() {
        let worst: Vec<String> = lat.worst.values().map(|l| (l / 1000).to_string()).collect();
        println!("worst latency of each 100 ms of sending (ms): {}", worst.join(" "));
    }
    let mut all = lat.all;
    let elapsed = start.elapsed();
    let server = match (cpu_start.1, server_usage()) {
        (Some(before), Some(after)) => format!("{:.0}%", usage::cpu_percent(before, after, elapsed)),
        _ => "?".to_owned(),
    };
    println!(
        "CPU over the run (100% = one core): bench client {:.0}%, chat server {server}",
        usage::cpu_percent(cpu_start.0, usage::own(), elapsed)
    );
    all.sort_unstable();
    if let Some(path) = dump {
        let bytes: Vec<u8> = all.iter().flat_map(|l| (u32::try_from(*l).unwrap_or(u32::MAX)).to_le_bytes()).collect();
        std::fs::write(&path, bytes)?;
    }
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "{clients} clients in {rooms} room(s), {sends} msg/s for {secs} s after {warmup_secs} s of warm-up: {} of {} deliveries, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (elapsed {:.1} s)",
        all.len(),
        total_expected,
        pct(0.50),
        pct(0.99),
        pct(1.0),
        elapsed.as_secs_f64()
    );
    println!("lost: {} deliveries", total_expected.saturating_sub(all.len() as u64));
    if let Some(rss) = server_rss_kib() {
        println!("server RSS at the end: {} MiB", rss / 1024);
    }
    tokio::time::sleep(LINGER).await;
    drop(sessions);
    Ok(())
}
