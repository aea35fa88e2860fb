//! `warren exec --room ROOM -- CMD ARGS...`: a program in a room. Each line CMD writes to
//! stdout is posted to the room as the bot (the AMQP login); each message posted in the room by
//! someone else is written to CMD's stdin as one line (its text, or JSON with `--json`). CMD is
//! restarted with backoff when it exits, and the room is told.
//!
//! Bounded everywhere, so a program that never reads stdin stalls nothing and grows nothing: the
//! bot's queue keeps at most `QUEUE_MAX` messages (the broker drops the oldest), at most
//! `STDIN_LINES` lines wait for CMD's stdin (then new ones are dropped and counted), a line is
//! at most the chat's message size, and output is posted at most `lines_per_sec` a second (a
//! program that writes faster waits on its full pipe).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Mutex, mpsc};

use super::ToolError;
use super::connect::connect;
use crate::amqp::{CHAT_EXCHANGE, room_key};

/// Messages the bot's queue keeps for CMD (the oldest go first beyond that).
pub const QUEUE_MAX: i64 = 1000;
/// Lines waiting to be written to CMD's stdin.
pub const STDIN_LINES: usize = 256;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const LONGEST_BACKOFF: Duration = Duration::from_secs(30);
/// A run this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Exec {
    pub amqp_url: String,
    pub amqp_ca_pem: Option<String>,
    /// The room's id (`general`, or what `GET /api/rooms` lists).
    pub room: String,
    /// Lines to stdin as JSON (`{"id","room","author","bot","text","ts"}`) instead of the text.
    pub json: bool,
    /// Output lines posted a second, at most.
    pub lines_per_sec: u32,
    pub program: String,
    pub args: Vec<String>,
}

/// What happened so far (for tests and logs).
#[derive(Debug, Default)]
pub struct Stats {
    /// Room messages handed to CMD's stdin queue.
    pub queued: AtomicU64,
    /// Room messages dropped because CMD does not read its stdin fast enough.
    pub dropped: AtomicU64,
    /// Lines of CMD posted to the room.
    pub posted: AtomicU64,
    /// Times CMD was started.
    pub starts: AtomicU64,
}

/// The AMQP user of `url` (who the broker says posts).
fn url_user(url: &str) -> Result<String, ToolError> {
    let uri: lapin::uri::AMQPUri = url.parse().map_err(|e: String| ToolError::Config(format!("bad AMQP URL: {e}")))?;
    Ok(uri.authority.userinfo.username)
}

/// One room message as a line for CMD, or None for what CMD is not told (its own lines, edits,
/// receipts, a bot's reply still empty).
pub fn line_for(d: &Delivery, me: &str, room: &str, json_lines: bool) -> Option<String> {
    let user_id = d.properties.user_id().as_ref().map(|u| u.as_str().to_owned());
    if user_id.as_deref() == Some(me) {
        return None;
    }
    let body = match serde_json::from_slice::<Value>(&d.data) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"text": String::from_utf8_lossy(&d.data)}),
    };
    if body.get("kind").and_then(Value::as_str).is_some_and(|k| k != "message") {
        return None;
    }
    let text = body.get("text").and_then(Value::as_str).unwrap_or_default();
    if text.trim().is_empty() {
        return None;
    }
    let header = d.properties.headers().as_ref().and_then(|h| h.inner().get("x-chat-author").cloned());
    let author = match header {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        Some(AMQPValue::ShortString(s)) => s.as_str().to_owned(),
        _ => user_id.clone().unwrap_or_else(|| "amqp".into()),
    };
    if json_lines {
        let line = json!({"id": body.get("id"), "room": room, "author": author, "bot": header_is_none(d),
            "text": text, "ts": body.get("ts")});
        Some(line.to_string())
    } else {
        // one message, one line
        Some(text.replace(['\r', '\n'], " "))
    }
}

fn header_is_none(d: &Delivery) -> bool {
    d.properties.headers().as_ref().is_none_or(|h| !h.inner().contains_key("x-chat-author"))
}

/// Post `text` to the room as the bot, waiting for the broker's confirm.
async fn post(ch: &Channel, me: &str, room: &str, text: &str) -> Result<(), ToolError> {
    let body = json!({"id": uuid::Uuid::new_v4().to_string(), "kind": "message", "room": room, "text": text,
        "ts": crate::model::now_ms()});
    let mut props = BasicProperties::default().with_content_type("application/json".into()).with_delivery_mode(2);
    if let Ok(user) = ShortString::try_new(me) {
        props = props.with_user_id(user);
    }
    let key = ShortString::try_new(room_key(room)).map_err(|_| ToolError::Config("room id too long".into()))?;
    let _confirm = ch
        .basic_publish(CHAT_EXCHANGE.into(), key, BasicPublishOptions::default(), body.to_string().as_bytes(), props)
        .await?
        .await?;
    Ok(())
}

/// Run CMD in the room until `stop` resolves or the broker connection is lost.
pub async fn run(exec: Exec, stats: Arc<Stats>, stop: impl std::future::Future<Output = ()>) -> Result<(), ToolError> {
    let me = url_user(&exec.amqp_url)?;
    let conn = connect(&exec.amqp_url, exec.amqp_ca_pem.as_deref(), &format!("warren exec {}", exec.program)).await?;
    let out = conn.create_channel().await?;
    out.confirm_select(ConfirmSelectOptions::default()).await?;
    let input = conn.create_channel().await?;
    input.basic_qos(64, BasicQosOptions::default()).await?;
    // the bot's own queue (the README's bot permissions: names starting with the login)
    let queue = format!("{me}.exec-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(QUEUE_MAX));
    args.insert("x-overflow".into(), AMQPValue::LongString(LongString::from("drop-head")));
    let opts = QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() };
    input.queue_declare(queue.as_str().into(), opts, args).await?;
    let key = ShortString::try_new(room_key(&exec.room)).map_err(|_| ToolError::Config("room id too long".into()))?;
    input
        .queue_bind(
            queue.as_str().into(),
            CHAT_EXCHANGE.into(),
            key,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut deliveries = input
        .basic_consume(queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    tracing::info!(room = %exec.room, program = %exec.program, "exec: in the room");

    let (tx, rx) = mpsc::channel::<String>(STDIN_LINES);
    let rx = Arc::new(Mutex::new(rx));
    let feed = {
        let (me, room, json_lines, stats) = (me.clone(), exec.room.clone(), exec.json, stats.clone());
        tokio::spawn(async move {
            while let Some(Ok(d)) = deliveries.next().await {
                if let Some(line) = line_for(&d, &me, &room, json_lines) {
                    // CMD not keeping up: the line is dropped, never queued without bound
                    match tx.try_send(line) {
                        Ok(()) => stats.queued.fetch_add(1, Ordering::Relaxed),
                        Err(_) => {
                            let n = stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                            if n.is_power_of_two() {
                                tracing::warn!(dropped = n, "exec: the program does not read its input; lines dropped");
                            }
                            0
                        }
                    };
                }
                if d.acker.ack(BasicAckOptions::default()).await.is_err() {
                    break;
                }
            }
            tracing::warn!("exec: the room's messages stopped (broker connection lost?)");
        })
    };

    let supervise = supervise(&exec, &me, &out, rx, &stats);
    tokio::pin!(stop);
    let result = tokio::select! {
        r = supervise => r,
        _ = &mut stop => Ok(()),
    };
    feed.abort();
    let _ = conn.close(200, "exec stopping".into()).await;
    result
}

/// Start CMD, again and again with backoff, telling the room each time it exits.
async fn supervise(
    exec: &Exec,
    me: &str,
    out: &Channel,
    rx: Arc<Mutex<mpsc::Receiver<String>>>,
    stats: &Stats,
) -> Result<(), ToolError> {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        stats.starts.fetch_add(1, Ordering::Relaxed);
        let status = match spawn(exec) {
            Ok(child) => run_once(exec, me, out, child, rx.clone(), stats).await?,
            Err(e) => format!("could not start: {e}"),
        };
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        let notice = format!("`{}` {status}; restarting in {:.1} s", exec.program, backoff.as_secs_f64());
        tracing::warn!("exec: {notice}");
        post(out, me, &exec.room, &notice).await?;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(LONGEST_BACKOFF);
    }
}

fn spawn(exec: &Exec) -> std::io::Result<Child> {
    Command::new(&exec.program)
        .args(&exec.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
}

/// One run of CMD: its output to the room, the room to its input, until it exits. Returns how
/// it ended, in words.
async fn run_once(
    exec: &Exec,
    me: &str,
    out: &Channel,
    mut child: Child,
    rx: Arc<Mutex<mpsc::Receiver<String>>>,
    stats: &Stats,
) -> Result<String, ToolError> {
    let writer = child.stdin.take().map(|stdin| tokio::spawn(write_lines(stdin, rx)));
    let Some(stdout) = child.stdout.take() else {
        return Ok("has no stdout".into());
    };
    let mut lines = BufReader::new(stdout);
    let mut buf = Vec::new();
    let every = Duration::from_secs(1) / exec.lines_per_sec.max(1);
    let mut pace = tokio::time::interval(every);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ended = loop {
        buf.clear();
        // a line longer than a chat message is cut there
        let read = (&mut lines).take(crate::MAX_MESSAGE_BYTES as u64).read_until(b'\n', &mut buf).await;
        match read {
            Ok(0) => break None,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let text = text.trim_end_matches(['\n', '\r']);
                if text.trim().is_empty() {
                    continue;
                }
                pace.tick().await;
                post(out, me, &exec.room, text).await?;
                stats.posted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => break Some(format!("stdout unreadable: {e}")),
        }
    };
    if let Some(w) = writer {
        w.abort();
    }
    let status = match child.wait().await {
        Ok(s) => format!("exited ({s})"),
        Err(e) => format!("lost ({e})"),
    };
    Ok(ended.map_or(status.clone(), |why| format!("{why}, {status}")))
}

/// Write queued lines to CMD's stdin until it closes it or exits.
async fn write_lines(mut stdin: ChildStdin, rx: Arc<Mutex<mpsc::Receiver<String>>>) {
    let mut rx = rx.lock().await;
    while let Some(line) = rx.recv().await {
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.write_all(b"\n").await.is_err() {
            break;
        }
        if stdin.flush().await.is_err() {
            break;
        }
    }
}
