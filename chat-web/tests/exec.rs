//! `warren exec` (in-process): a program in a room. `cat` echoes the room (not its own lines),
//! `tr a-z A-Z` answers in capitals, a program that exits is restarted with backoff and the room
//! is told, and one that never reads stdin stalls nothing: its input is dropped, counted and
//! bounded, and the room goes on.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Chat, amqp_url, bot_amqp_url, chat, url_user};
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use warren_chat::tools::exec::{self, Exec, STDIN_LINES, Stats};

fn start(room: &str, program: &str, args: &[&str]) -> (oneshot::Sender<()>, Arc<Stats>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let stats = Arc::new(Stats::default());
    let e = Exec {
        amqp_url: bot_amqp_url(),
        amqp_ca_pem: None,
        room: room.to_owned(),
        json: false,
        lines_per_sec: 50,
        program: program.to_owned(),
        args: args.iter().map(|s| s.to_string()).collect(),
    };
    let s = stats.clone();
    tokio::spawn(async move {
        let r = exec::run(e, s, async {
            let _ = stopped.await;
        })
        .await;
        if let Err(e) = r {
            eprintln!("exec stopped: {e}");
        }
    });
    (stop, stats)
}

async fn history(c: &Chat, room: &str, token: &str) -> Vec<Value> {
    let page = c.req("GET", &format!("/api/rooms/{room}/messages?limit=500"), Some(token), None).await;
    assert_eq!(page.status, 200, "history: {}", page.body);
    page.body["messages"].as_array().cloned().unwrap_or_default()
}

fn bot_texts(h: &[Value]) -> Vec<String> {
    h.iter().filter(|m| m["bot"] == true).filter_map(|m| m["text"].as_str().map(str::to_owned)).collect()
}

async fn post(c: &Chat, room: &str, token: &str, text: &str) {
    let r = c.req("POST", &format!("/api/rooms/{room}/messages"), Some(token), Some(json!({"text": text}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Wait until `pred` holds for the room's bot messages (10 s).
async fn until_bots(c: &Chat, room: &str, token: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let texts = bot_texts(&history(c, room, token).await);
        if pred(&texts) {
            return texts;
        }
        assert!(Instant::now() < deadline, "bot messages never matched: {texts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Post pings until the program answers one (its queue is bound), for a filter program.
async fn until_listening(c: &Chat, room: &str, token: &str) {
    for i in 0..50 {
        post(c, room, token, &format!("ping {i}")).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !bot_texts(&history(c, room, token).await).is_empty() {
            return;
        }
    }
    panic!("the program never answered");
}

#[tokio::test]
async fn cat_echoes_the_room_once_and_tr_shouts() {
    let c = chat().await;
    let (_alice, a) = c.user("alice").await;
    let room = c.room(&a, true).await["id"].as_str().unwrap().to_owned();
    let (_stop, stats) = start(&room, "cat", &[]);
    until_listening(&c, &room, &a).await;
    post(&c, &room, &a, "hello cat\nsecond line").await;
    let texts = until_bots(&c, &room, &a, |t| t.iter().any(|t| t == "hello cat second line")).await;
    // its own lines are not fed back to it: no echo loop
    tokio::time::sleep(Duration::from_millis(800)).await;
    let again = bot_texts(&history(&c, &room, &a).await);
    assert_eq!(again.len(), texts.len(), "no echo of the echo: {again:?}");
    let h = history(&c, &room, &a).await;
    let m = h.iter().find(|m| m["text"] == "hello cat second line" && m["bot"] == true).unwrap();
    assert_eq!(m["author"], url_user(&bot_amqp_url()).as_str(), "posted as the bot's login");
    assert_eq!(stats.starts.load(Ordering::Relaxed), 1);

    let room2 = c.room(&a, true).await["id"].as_str().unwrap().to_owned();
    // tr buffers a pipe: stdbuf -oL makes it write each line at once
    let (_stop2, _) = start(&room2, "stdbuf", &["-oL", "tr", "a-z", "A-Z"]);
    until_listening(&c, &room2, &a).await;
    post(&c, &room2, &a, "shout this").await;
    until_bots(&c, &room2, &a, |t| t.iter().any(|t| t == "SHOUT THIS")).await;
}

#[tokio::test]
async fn a_program_that_exits_is_restarted_and_the_room_told() {
    let c = chat().await;
    let (_alice, a) = c.user("alice").await;
    let room = c.room(&a, true).await["id"].as_str().unwrap().to_owned();
    let (_stop, stats) = start(&room, "sh", &["-c", "echo started; exit 3"]);
    let texts = until_bots(&c, &room, &a, |t| t.iter().filter(|t| t.as_str() == "started").count() >= 2).await;
    let notice = texts.iter().find(|t| t.contains("exited")).expect("the room is told");
    assert!(notice.contains("restarting in"), "{notice}");
    assert!(notice.contains('3'), "with the exit status: {notice}");
    assert!(stats.starts.load(Ordering::Relaxed) >= 2);
}

#[tokio::test]
async fn a_program_that_never_reads_stdin_stalls_nothing() {
    let c = chat().await;
    let (_alice, a) = c.user("alice").await;
    let room = c.room(&a, true).await["id"].as_str().unwrap().to_owned();
    let (_stop, stats) = start(&room, "sh", &["-c", "echo ready; exec sleep 600"]);
    until_bots(&c, &room, &a, |t| t.iter().any(|t| t == "ready")).await;

    // 3000 messages of 1 KiB in the room, published straight to the broker by the chat's user
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default()).await.expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    let mut headers = FieldTable::default();
    headers.insert("x-chat-author".into(), AMQPValue::LongString(LongString::from("flood")));
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_user_id(url_user(&amqp_url()).as_str().into())
        .with_headers(headers);
    let text = "x".repeat(1024);
    const N: u64 = 3000;
    for i in 0..N {
        let body = json!({"id": format!("flood-{i}"), "kind": "message", "text": text}).to_string();
        let key = format!("room.{room}");
        ch.basic_publish(
            "chat".into(),
            key.as_str().into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            props.clone(),
        )
        .await
        .expect("publish");
    }
    // everything the bot's queue kept has been taken (queued or dropped), and nothing grows
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = (0, Instant::now());
    loop {
        let seen = stats.queued.load(Ordering::Relaxed) + stats.dropped.load(Ordering::Relaxed);
        if seen != last.0 {
            last = (seen, Instant::now());
        }
        if seen == N || (seen > 0 && last.1.elapsed() > Duration::from_secs(2)) {
            break;
        }
        assert!(Instant::now() < deadline, "the bot stopped taking the room's messages ({seen})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let queued = stats.queued.load(Ordering::Relaxed);
    let dropped = stats.dropped.load(Ordering::Relaxed);
    eprintln!("never-reading program: {queued} lines queued, {dropped} dropped");
    // the stdin queue, plus what the pipe (64 KiB) took before it was full
    let pipe = 64 * 1024 / 1025 + 2;
    assert!(queued <= (STDIN_LINES + pipe) as u64, "bounded: {queued} queued");
    assert!(dropped > 0, "lines the program cannot take are dropped, not kept");
    // the bot kept taking the room's messages (the broker's queue keeps at most 1000 of them and
    // drops the oldest beyond that: the rest never reach the bot)
    assert!(queued + dropped >= 1000, "the bot's input did not stall: {queued} + {dropped}");
    // the room goes on
    post(&c, &room, &a, "still here").await;
    let h = history(&c, &room, &a).await;
    assert_eq!(h[0]["text"], "still here");
    assert_eq!(stats.starts.load(Ordering::Relaxed), 1, "the program was not restarted");
    let _ = conn.close(200, "bye".into()).await;
}
