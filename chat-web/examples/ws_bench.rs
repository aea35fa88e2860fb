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
//! server's machine, so each reader keeps one deadline timer rather than arming one per message.
//!
//! With `WS_BENCH_ROOMS=K` the clients and the rate are split evenly over K rooms (each client
//! subscribes to one room, each room has its own publishers); with `WS_BENCH_DUMP=FILE` every
//! delivery's latency in microseconds is written to FILE (little-endian u32s), so that several
//! bench processes (bench/chat.sh `SHARDS=`) can pool theirs into one percentile.
//!
//! The sending is spread round-robin over one account per `PER_PUBLISHER` msg/s: a chat user
//! may post 10 msg/s (bursts of 20). Their sign-ups come from loopback, whose allowance is 50 a
//! minute: rates up to about 350 msg/s fit in one run.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hyper::{Body, Client, Method, Request};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

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

fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The microsecond timestamp after the first `"t=` in an event's JSON.
fn sent_micros(json: &str) -> Option<u128> {
    let at = json.find("\"t=")? + 3;
    let digits = &json[at..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// CPU time (user + system) of a process so far, in clock ticks (/proc/PID/stat).
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Messages a second sent by one publisher account, under the chat's 10 a second per user.
const PER_PUBLISHER: u64 = 8;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket session with Nagle off, as browsers open them.
async fn connect(ws_base: &str, token: &str) -> Res<Ws> {
    let url = format!("{ws_base}/ws?token={token}");
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
    Ok(ws)
}

#[tokio::main]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let bases: Vec<String> =
        args.get(1).map_or("http://127.0.0.1:8080", String::as_str).split(',').map(str::to_owned).collect();
    let base = bases[0].clone();
    let ws_bases: Vec<String> = bases.iter().map(|b| b.replace("http://", "ws://")).collect();
    let clients: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let rate: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
    let secs: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(10);
    let pid = args.get(5).cloned();
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
    let rss_before = pid.as_deref().and_then(rss_kib);
    let mut sockets = Vec::with_capacity(clients);
    for c in 0..clients {
        // every client is the same member (one account, many sessions): the fan-out is what counts
        let mut ws = connect(&ws_bases[c % ws_bases.len()], &token).await?;
        let room_id = &room_ids[c % rooms];
        ws.send(Message::Text(json!({"type": "subscribe", "room": room_id}).to_string())).await?;
        sockets.push(ws);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let (Some(before), Some(after)) = (rss_before, pid.as_deref().and_then(rss_kib)) {
        println!(
            "RSS per idle session: {:.1} KiB ({} sessions, {} KiB -> {} KiB)",
            (after.saturating_sub(before)) as f64 / clients as f64,
            clients,
            before,
            after
        );
    }

    let start = Instant::now();
    let cpu_start = (cpu_ticks("self"), pid.as_deref().and_then(cpu_ticks));
    // what each client should receive: its room's share of the rate
    let expected = per_room_rate * secs;
    let total_expected = expected * clients as u64;
    let warmup_secs: u64 = std::env::var("WS_BENCH_WARMUP_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let mut readers = Vec::new();
    for mut ws in sockets {
        readers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let deadline = tokio::time::sleep(Duration::from_secs(warmup_secs + secs + 15));
            tokio::pin!(deadline);
            while lat.len() < expected as usize {
                let frame = tokio::select! {
                    f = ws.next() => f,
                    _ = &mut deadline => break,
                };
                match frame {
                    Some(Ok(Message::Text(t))) => {
                        // The send time sits in the text as "t=<micros>": found without parsing
                        // the whole event, so that 1000 clients cost the server's machine little.
                        if t.contains(r#""type":"message""#)
                            && let Some(sent) = sent_micros(&t)
                        {
                            let now = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map(|d| d.as_micros())
                                .unwrap_or(0);
                            lat.push((now.saturating_sub(sent)) as u64);
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
            lat
        }));
    }
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
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Ticks are 1/100 s on Linux: ticks / elapsed = percent of one core.
    let cpu = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) => format!("{:.0}%", a.saturating_sub(b) as f64 / elapsed),
        _ => "?".to_owned(),
    };
    println!(
        "CPU over the run (100% = one core): bench client {}, chat server {}",
        cpu(cpu_start.0, cpu_ticks("self")),
        cpu(cpu_start.1, pid.as_deref().and_then(cpu_ticks))
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
        elapsed
    );
    println!("lost: {} deliveries", total_expected.saturating_sub(all.len() as u64));
    if let Some(rss) = pid.as_deref().and_then(rss_kib) {
        println!("server RSS at the end: {} MiB", rss / 1024);
    }
    Ok(())
}
