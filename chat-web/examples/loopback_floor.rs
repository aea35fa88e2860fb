//! Benchmark (not a test): what 100,000 small TCP writes a second over loopback cost the kernel
//! alone, with no chat, WebSocket or runtime in the way: the floor under `ws_bench`'s figures at
//! 10,000 sessions in 100 rooms and 1000 msg/s (bench/PROFILE.md section 4).
//!
//!     cargo run --release -p warren-chat --example loopback_floor -- serve 10000 &
//!     cargo run --release -p warren-chat --example loopback_floor -- read 10000
//!
//! `serve N` accepts N connections on 127.0.0.1:9911 (`FLOOR_PORT`), then for 10 s writes a
//! 300-byte message to 100 of them every millisecond (a room of 100 each time, cycling), and
//! prints its CPU. `read N` opens the N connections, reads them from one epoll set until they
//! have been quiet for 3 s, and prints its CPU and what it got.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use warren_perf::usage;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const ROOM: usize = 100;
const SECS: u64 = 10;
const MESSAGE: usize = 300;

fn serve(addr: &str, n: usize) -> Res<()> {
    let listener = TcpListener::bind(addr)?;
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let (socket, _) = listener.accept()?;
        socket.set_nodelay(true)?;
        sockets.push(socket);
    }
    std::thread::sleep(Duration::from_secs(2));
    let message = vec![b'x'; MESSAGE];
    let (cpu, start) = (usage::own(), Instant::now());
    let mut next = start;
    let mut room = 0;
    while start.elapsed() < Duration::from_secs(SECS) {
        next += Duration::from_millis(1);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for i in 0..ROOM {
            sockets[(room * ROOM + i) % n].write_all(&message)?;
        }
        room += 1;
    }
    let elapsed = start.elapsed();
    println!(
        "serve: {} writes in {:.1} s, CPU {:.0}% of a core",
        room * ROOM,
        elapsed.as_secs_f64(),
        usage::cpu_percent(cpu, usage::own(), elapsed)
    );
    // let the reader see the end before the sockets close
    std::thread::sleep(Duration::from_secs(5));
    Ok(())
}

fn read(addr: &str, n: usize) -> Res<()> {
    let mut poll = mio::Poll::new()?;
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let socket = TcpStream::connect(addr)?;
        socket.set_nonblocking(true)?;
        let mut socket = mio::net::TcpStream::from_std(socket);
        poll.registry().register(&mut socket, mio::Token(i), mio::Interest::READABLE)?;
        sockets.push(socket);
    }
    let mut events = mio::Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut bytes, mut began) = (0u64, None);
    let quiet = Duration::from_secs(3);
    loop {
        poll.poll(&mut events, Some(quiet))?;
        if events.is_empty() && began.is_some() {
            break;
        }
        if began.is_none() && !events.is_empty() {
            began = Some((usage::own(), Instant::now()));
        }
        for event in &events {
            let socket = &mut sockets[event.token().0];
            // edge-triggered: read until a short read says the socket is empty
            while let Ok(got) = socket.read(&mut buf) {
                bytes += got as u64;
                if got < buf.len() {
                    break;
                }
            }
        }
    }
    let (cpu, start) = began.ok_or("nothing came")?;
    let elapsed = start.elapsed().saturating_sub(quiet);
    println!(
        "read: {} messages in {:.1} s, CPU {:.0}% of a core",
        bytes / MESSAGE as u64,
        elapsed.as_secs_f64(),
        usage::cpu_percent(cpu, usage::own(), elapsed)
    );
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let addr = format!("127.0.0.1:{}", std::env::var("FLOOR_PORT").unwrap_or_else(|_| "9911".into()));
    match args.get(1).map(String::as_str) {
        Some("serve") => serve(&addr, n),
        Some("read") => read(&addr, n),
        _ => Err("usage: loopback_floor serve|read [connections]".into()),
    }
}
