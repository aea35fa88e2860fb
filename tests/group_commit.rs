//! Group commit, checked on the system calls: the real binary runs under `strace -f` while
//! clients publish persistent messages with confirms to a durable queue, first one at a time,
//! then pipelined over several connections. From the trace, every confirmed publish must have an
//! fdatasync/fsync of a journal file that began after the publish was read from its socket and
//! finished before the basic.ack naming it was written. The same holds for transactions: a
//! tx.commit-ok is written only after a flush that began after the commit's publishes were read.
//! The test prints confirms per flush.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use common::Warren;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

const ONE_AT_A_TIME: usize = 100;
const CONNECTIONS: usize = 4;
const PIPELINED_EACH: usize = 500;
const TRANSACTIONS: usize = 30;
const PER_TRANSACTION: usize = 3;

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

async fn publisher(url: String, count: usize, one_at_a_time: bool) {
    let c = Connection::connect(&url, ConnectionProperties::default()).await.expect("connect");
    let ch = c.create_channel().await.expect("channel");
    ch.confirm_select(Default::default()).await.expect("confirm.select");
    let props = BasicProperties::default().with_delivery_mode(2);
    let mut pending = Vec::new();
    for i in 0..count {
        let body = format!("message {i:08}");
        let confirm = ch
            .basic_publish("".into(), "gc".into(), Default::default(), body.as_bytes(), props.clone())
            .await
            .expect("publish");
        if one_at_a_time {
            assert!(confirm.await.expect("confirm").is_ack());
        } else {
            pending.push(confirm);
        }
    }
    for confirm in pending {
        assert!(confirm.await.expect("confirm").is_ack());
    }
    let _ = c.close(200, "bye".into()).await;
}

/// Publish in transactions of PER_TRANSACTION persistent messages, each committed.
async fn transactional_publisher(url: String) {
    let c = Connection::connect(&url, ConnectionProperties::default()).await.expect("connect");
    let ch = c.create_channel().await.expect("channel");
    ch.tx_select().await.expect("tx.select");
    let props = BasicProperties::default().with_delivery_mode(2);
    for t in 0..TRANSACTIONS {
        for i in 0..PER_TRANSACTION {
            let body = format!("tx {t:04} message {i}");
            ch.basic_publish("".into(), "gc".into(), Default::default(), body.as_bytes(), props.clone())
                .await
                .expect("publish");
        }
        ch.tx_commit().await.expect("tx.commit");
    }
    let _ = c.close(200, "bye".into()).await;
}

#[tokio::test]
async fn every_confirm_follows_a_journal_flush_that_began_after_its_publish() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("strace.out");
    let data = dir.path().join("data");
    let trace_arg = trace.to_str().unwrap().to_owned();
    let wrapper = [
        "strace",
        "-f",
        "-ttt",
        "-T",
        "-xx",
        "-s",
        "65536",
        "-e",
        "trace=accept,accept4,openat,close,read,recvfrom,write,writev,sendto,sendmsg,fsync,fdatasync",
        "-o",
        &trace_arg,
    ];
    let mut w = Warren::start_under(&wrapper, &data, &["--no-chat"]);
    {
        let (_c, ch) = {
            let c = Connection::connect(&w.url(), ConnectionProperties::default()).await.unwrap();
            let ch = c.create_channel().await.unwrap();
            (c, ch)
        };
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        ch.queue_declare("gc".into(), durable, FieldTable::default()).await.unwrap();
    }
    let phase1 = now();
    publisher(w.url(), ONE_AT_A_TIME, true).await;
    let phase2 = now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        tasks.push(tokio::spawn(publisher(w.url(), PIPELINED_EACH, false)));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let end = now();
    transactional_publisher(w.url()).await;
    assert!(w.terminate().success());
    let text = std::fs::read_to_string(&trace).expect("strace output");
    let t = Trace::parse(&text);
    let report = t.check();
    let flushes = |from: f64, to: f64| t.flushes.iter().filter(|f| f.start >= from && f.start < to).count();
    let (f1, f2) = (flushes(phase1, phase2), flushes(phase2, end));
    println!("phase                      | confirms | journal flushes | confirms per flush");
    println!(
        "one at a time, 1 conn      | {:>8} | {:>15} | {:>6.2}",
        ONE_AT_A_TIME,
        f1,
        ONE_AT_A_TIME as f64 / f1.max(1) as f64
    );
    let n2 = CONNECTIONS * PIPELINED_EACH;
    println!("pipelined, {CONNECTIONS} connections   | {:>8} | {:>15} | {:>6.2}", n2, f2, n2 as f64 / f2.max(1) as f64);
    println!("confirmed publishes checked against the trace: {}", report.checked);
    assert!(
        report.violations.is_empty(),
        "confirms without a covering flush: {:?}",
        &report.violations[..report.violations.len().min(10)]
    );
    let n3 = TRANSACTIONS * PER_TRANSACTION;
    println!("in {TRANSACTIONS} transactions, committed: {n3}");
    assert_eq!(report.checked, ONE_AT_A_TIME + n2 + n3, "every confirm and commit was seen in the trace");
    assert!(f2 < n2, "pipelined publishes share flushes (group commit)");
}

#[derive(Debug)]
struct Flush {
    start: f64,
    end: f64,
}

#[derive(Default)]
struct Inbound {
    buf: Vec<u8>,
    header_skipped: bool,
    /// Channel -> body bytes still expected for the publish being read.
    body_left: HashMap<u16, u64>,
    awaiting_header: HashSet<u16>,
    /// Channel -> read completion time of each complete publish, in publish order.
    published: HashMap<u16, Vec<f64>>,
    /// Channel -> how many publishes had been read when each tx.commit was, in order.
    commits: HashMap<u16, Vec<usize>>,
}

#[derive(Default)]
struct Outbound {
    buf: Vec<u8>,
    /// Channel -> highest publish sequence number confirmed so far.
    confirmed: HashMap<u16, u64>,
    /// Channel -> tx.commit-oks written so far.
    commit_oks: HashMap<u16, usize>,
}

/// What a write told the client.
enum Told {
    /// basic.ack: publish `seq` on the channel is confirmed.
    Confirmed(u16, u64),
    /// tx.commit-ok: the channel's next pending commit is done.
    Committed(u16),
}

#[derive(Default)]
struct Trace {
    /// Open client sockets and journal files: fd -> when the call that opened it returned.
    sockets: HashMap<i64, f64>,
    journal_fds: HashMap<i64, f64>,
    flushes: Vec<Flush>,
    inbound: HashMap<i64, Inbound>,
    outbound: HashMap<i64, Outbound>,
    /// (fd, channel, publish seq, publish read time, ack write time)
    confirms: Vec<(i64, u16, u64, f64, f64)>,
}

struct Report {
    checked: usize,
    violations: Vec<String>,
}

/// One completed system call.
struct Call<'a> {
    name: &'a str,
    start: f64,
    end: f64,
    args: &'a str,
    ret: i64,
}

fn parse_call(line: &str) -> Option<Call<'_>> {
    let open = line.find('(')?;
    let name = line[..open].trim();
    // strace pads short calls: `fsync(9)        = 0 <0.000148>`
    let eq = line.rfind(" = ")?;
    let close = line[..eq].trim_end().strip_suffix(')')?.len();
    let rest = &line[eq + 3..];
    let ret: i64 = rest.split_whitespace().next()?.parse().ok()?;
    let dur: f64 = rest.rsplit('<').next()?.trim_end_matches('>').parse().unwrap_or(0.0);
    Some(Call { name, start: 0.0, end: dur, args: line.get(open + 1..close)?, ret })
}

/// `1259  1795890071.988156 accept4(...)`: the pid, the timestamp and the rest (strace pads
/// the pid column with a variable number of spaces).
fn split_line(line: &str) -> Option<(&str, f64, &str)> {
    let (pid, rest) = line.trim_start().split_once(' ')?;
    let (ts, rest) = rest.trim_start().split_once(' ')?;
    Some((pid, ts.parse().ok()?, rest))
}

fn first_fd(args: &str) -> Option<i64> {
    args.split(',').next()?.trim().parse().ok()
}

/// The bytes of every `"\xHH..."` string in the arguments, in order.
fn strings(args: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut in_str = false;
    let b = args.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => in_str = !in_str,
            b'\\' if in_str && i + 3 < b.len() && b[i + 1] == b'x' => {
                if let Ok(v) = u8::from_str_radix(&args[i + 2..i + 4], 16) {
                    out.push(v);
                }
                i += 3;
            }
            c if in_str => out.push(c),
            _ => {}
        }
        i += 1;
    }
    out
}

impl Trace {
    fn parse(text: &str) -> Self {
        let mut t = Trace::default();
        let mut unfinished: HashMap<&str, (f64, String)> = HashMap::new();
        let mut lines: Vec<(f64, String)> = Vec::new();
        for line in text.lines() {
            let Some((pid, ts, rest)) = split_line(line) else { continue };
            if let Some(prefix) = rest.strip_suffix(" <unfinished ...>") {
                unfinished.insert(pid, (ts, prefix.to_owned()));
            } else if let Some(resumed) = rest.strip_prefix("<... ") {
                let Some((start, prefix)) = unfinished.remove(pid) else { continue };
                let Some(after) = resumed.split_once(" resumed>") else { continue };
                lines.push((start, format!("{prefix}{}", after.1)));
            } else {
                lines.push((ts, rest.to_owned()));
            }
        }
        lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (start, line) in &lines {
            let Some(mut call) = parse_call(line) else { continue };
            call.end += start;
            call.start = *start;
            t.apply(&call);
        }
        t
    }

    fn apply(&mut self, c: &Call<'_>) {
        match c.name {
            "accept" | "accept4" if c.ret >= 0 => {
                self.sockets.insert(c.ret, c.end);
                self.inbound.insert(c.ret, Inbound::default());
                self.outbound.insert(c.ret, Outbound::default());
            }
            // (-xx prints every path as hex escapes: decode before matching)
            "openat" if c.ret >= 0 && String::from_utf8_lossy(&strings(c.args)).contains("/journal/") => {
                self.journal_fds.insert(c.ret, c.end);
            }
            // Calls are applied in the order they began, so an accept that began before the
            // close of an earlier socket with the same number (on another thread) can come
            // first: a close only ends what was opened before the close began.
            "close" => {
                if let Some(fd) = first_fd(c.args) {
                    if self.sockets.get(&fd).is_some_and(|opened| *opened < c.start) {
                        self.sockets.remove(&fd);
                    }
                    if self.journal_fds.get(&fd).is_some_and(|opened| *opened < c.start) {
                        self.journal_fds.remove(&fd);
                    }
                }
            }
            "fsync" | "fdatasync"
                if c.ret == 0 && first_fd(c.args).is_some_and(|fd| self.journal_fds.contains_key(&fd)) =>
            {
                self.flushes.push(Flush { start: c.start, end: c.end });
            }
            "read" | "recvfrom" if c.ret > 0 => {
                let Some(fd) = first_fd(c.args).filter(|fd| self.sockets.contains_key(fd)) else { return };
                let mut bytes = strings(c.args);
                bytes.truncate(c.ret as usize);
                if let Some(i) = self.inbound.get_mut(&fd) {
                    i.buf.extend_from_slice(&bytes);
                    i.consume(c.end);
                }
            }
            "write" | "writev" | "sendto" | "sendmsg" if c.ret > 0 => {
                let Some(fd) = first_fd(c.args).filter(|fd| self.sockets.contains_key(fd)) else { return };
                let mut bytes = strings(c.args);
                bytes.truncate(c.ret as usize);
                let Some(o) = self.outbound.get_mut(&fd) else { return };
                o.buf.extend_from_slice(&bytes);
                let inbound = self.inbound.get(&fd);
                let read_at = |channel: u16, seq: u64| {
                    inbound
                        .and_then(|i| i.published.get(&channel))
                        .and_then(|v| v.get(seq as usize - 1))
                        .copied()
                        .unwrap_or(f64::NAN)
                };
                for told in o.consume() {
                    match told {
                        Told::Confirmed(channel, seq) => {
                            self.confirms.push((fd, channel, seq, read_at(channel, seq), c.start));
                        }
                        Told::Committed(channel) => {
                            // The k-th commit-ok covers the publishes between commits k-1 and k.
                            let k = o.commit_oks.entry(channel).or_default();
                            *k += 1;
                            let commits = inbound.and_then(|i| i.commits.get(&channel));
                            let upto = commits.and_then(|v| v.get(*k - 1)).copied().unwrap_or(0);
                            let from = commits.and_then(|v| (*k >= 2).then(|| v.get(*k - 2)).flatten()).copied();
                            for seq in from.unwrap_or(0) + 1..=upto {
                                let seq = seq as u64;
                                self.confirms.push((fd, channel, seq, read_at(channel, seq), c.start));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn check(&self) -> Report {
        let mut violations = Vec::new();
        for (fd, channel, seq, read_at, ack_at) in &self.confirms {
            let covered = self.flushes.iter().any(|f| f.start > *read_at && f.end < *ack_at);
            if read_at.is_nan() || !covered {
                violations.push(format!("fd {fd} channel {channel} publish {seq}: read {read_at:.6}, ack {ack_at:.6}"));
            }
        }
        Report { checked: self.confirms.len(), violations }
    }
}

/// Complete frames at the front of `buf`: (type, channel, payload).
fn frames(buf: &mut Vec<u8>) -> Vec<(u8, u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() >= at + 7 {
        let size = u32::from_be_bytes([buf[at + 3], buf[at + 4], buf[at + 5], buf[at + 6]]) as usize;
        if buf.len() < at + 7 + size + 1 {
            break;
        }
        let channel = u16::from_be_bytes([buf[at + 1], buf[at + 2]]);
        out.push((buf[at], channel, buf[at + 7..at + 7 + size].to_vec()));
        at += 8 + size;
    }
    buf.drain(..at);
    out
}

impl Inbound {
    /// Follow complete publishes (method, header, body) as they are read.
    fn consume(&mut self, read_done: f64) {
        if !self.header_skipped {
            if self.buf.len() < 8 {
                return;
            }
            self.buf.drain(..8); // "AMQP\0\0\x09\x01"
            self.header_skipped = true;
        }
        for (kind, channel, payload) in frames(&mut self.buf) {
            match kind {
                1 if payload.len() >= 4 && payload[..4] == [0, 60, 0, 40] => {
                    self.awaiting_header.insert(channel);
                }
                1 if payload.len() >= 4 && payload[..4] == [0, 90, 0, 20] => {
                    let read = self.published.get(&channel).map_or(0, Vec::len);
                    self.commits.entry(channel).or_default().push(read);
                }
                2 if self.awaiting_header.remove(&channel) && payload.len() >= 12 => {
                    let size = u64::from_be_bytes(payload[4..12].try_into().unwrap_or_default());
                    if size == 0 {
                        self.published.entry(channel).or_default().push(read_done);
                    } else {
                        self.body_left.insert(channel, size);
                    }
                }
                3 => {
                    if let Some(left) = self.body_left.get_mut(&channel) {
                        *left = left.saturating_sub(payload.len() as u64);
                        if *left == 0 {
                            self.body_left.remove(&channel);
                            self.published.entry(channel).or_default().push(read_done);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

impl Outbound {
    /// What the complete frames written so far told the client: confirms and commit-oks.
    fn consume(&mut self) -> Vec<Told> {
        let mut out = Vec::new();
        for (kind, channel, payload) in frames(&mut self.buf) {
            if kind == 1 && payload.len() >= 4 && payload[..4] == [0, 90, 0, 21] {
                out.push(Told::Committed(channel));
                continue;
            }
            if kind != 1 || payload.len() < 13 || payload[..4] != [0, 60, 0, 80] {
                continue;
            }
            let tag = u64::from_be_bytes(payload[4..12].try_into().unwrap_or_default());
            let multiple = payload[12] & 1 == 1;
            let done = self.confirmed.entry(channel).or_default();
            let from = if multiple { *done + 1 } else { tag };
            for seq in from..=tag {
                out.push(Told::Confirmed(channel, seq));
            }
            *done = (*done).max(tag);
        }
        out
    }
}

#[test]
fn trace_lines_parse() {
    let c = parse_call(r#"fdatasync(12) = 0 <0.001500>"#).expect("parses");
    assert_eq!((c.name, c.ret, c.end), ("fdatasync", 0, 0.0015));
    let c = parse_call(r#"sendto(9, "\x01\x00\x01", 3, MSG_NOSIGNAL, NULL, 0) = 3 <0.000020>"#).expect("parses");
    assert_eq!(strings(c.args), [1, 0, 1]);
    assert_eq!(first_fd(c.args), Some(9));
    let c = parse_call("fsync(9)        = 0 <0.000148>").expect("padded");
    assert_eq!((c.name, first_fd(c.args)), ("fsync", Some(9)));
    let c = parse_call(
        "accept4(14, 0x7f36, [128], SOCK_CLOEXEC) = -1 EAGAIN (Resource temporarily unavailable) <0.000067>",
    )
    .expect("error return");
    assert_eq!(c.ret, -1);
    let (pid, ts, rest) = split_line("1261  1795890070.477190 <... fsync resumed>) = 0 <0.001362>").expect("line");
    assert_eq!((pid, ts, rest), ("1261", 1795890070.47719, "<... fsync resumed>) = 0 <0.001362>"));
}
