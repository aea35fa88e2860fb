//! Bots: the default room every new account joins, and the streaming contract: a message that
//! mentions a bot reaches its request queue with `reply_to`, the reply grows one message in the
//! room, the history keeps one final message, and a bot that dies mid-reply leaves it marked
//! interrupted. The bot is `warren bot words` (in-process), in both reply modes: direct
//! reply-to and a queue per request with `x-expires`.

mod common;

use std::time::{Duration, Instant};

use common::{Chat, bot_amqp_url, chat, chat_with, is, name};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use warren_chat::bots::ReplyMode;
use warren_chat::tools::words_bot::{self, WordsBot};

const TEXT: &str = "alpha beta gamma delta epsilon zeta eta theta";

/// Start the words bot `name` (rate words/s); stops (its connection closed, mid-reply or not)
/// when the sender is dropped or fired.
async fn words(name: &str, rate: f64, text: &str) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    let bot =
        WordsBot { amqp_url: bot_amqp_url(), amqp_ca_pem: None, name: name.to_owned(), rate, text: text.to_owned() };
    tokio::spawn(async move {
        if let Err(e) = words_bot::run(bot, async {
            let _ = stopped.await;
        })
        .await
        {
            eprintln!("words bot stopped: {e}");
        }
    });
    stop
}

async fn history(c: &Chat, room: &str, token: &str) -> Vec<Value> {
    let page = c.req("GET", &format!("/api/rooms/{room}/messages"), Some(token), None).await;
    assert_eq!(page.status, 200, "history: {}", page.body);
    page.body["messages"].as_array().cloned().unwrap_or_default()
}

/// Post `text` in `room` until the bot's request queue exists (the bot is up), then watch the
/// reply over the WebSocket: every edit of the reply, up to the final one.
async fn ask_and_watch(c: &Chat, token: &str, room: &str, text: &str) -> Vec<Value> {
    let mut ws = c.ws(token).await;
    ws.until(is("hello")).await;
    ws.send(json!({"type": "subscribe", "room": room})).await;
    ws.until(is("subscribed")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut edits = Vec::new();
    loop {
        let r = c.req("POST", &format!("/api/rooms/{room}/messages"), Some(token), Some(json!({"text": text}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        // the reply's placeholder follows the request within a moment, if the bot is there
        let placeholder = tokio::time::timeout(
            Duration::from_secs(2),
            ws.until(|v| v["type"] == "message" && v["message"]["bot"] == true),
        )
        .await;
        if let Ok(p) = placeholder {
            assert_eq!(p["message"]["streaming"], true, "{p}");
            assert_eq!(p["message"]["text"], "");
            edits.push(p);
            break;
        }
        assert!(Instant::now() < deadline, "the bot never answered");
    }
    let id = edits[0]["message"]["id"].clone();
    loop {
        let e = ws.until(|v| v["type"] == "edit" && v["message"]["id"] == id).await;
        let done = e["message"]["streaming"] == false;
        edits.push(e);
        if done {
            return edits;
        }
    }
}

fn texts(edits: &[Value]) -> Vec<String> {
    edits.iter().map(|e| e["message"]["text"].as_str().unwrap_or_default().to_owned()).collect()
}

async fn round_trip(mode: ReplyMode) {
    let c = chat_with(|cfg| cfg.bots.reply_mode = mode).await;
    let (_alice, a) = c.user("alice").await;
    let room = c.room(&a, true).await["id"].as_str().unwrap().to_owned();
    let bot = name("bot");
    let _stop = words(&bot, 40.0, TEXT).await;
    let edits = ask_and_watch(&c, &a, &room, &format!("@{bot} tell me")).await;
    let seen = texts(&edits);
    let last = edits.last().unwrap();
    assert_eq!(last["message"]["text"], TEXT, "the final text is the whole reply");
    assert_eq!(last["message"]["interrupted"], false);
    assert_eq!(last["message"]["author"], bot.as_str(), "shown as from the bot");
    assert_eq!(last["message"]["bot"], true);
    // it grew: several distinct partial texts, each a prefix of the next
    let partial: Vec<&String> = seen.iter().filter(|t| !t.is_empty() && t.as_str() != TEXT).collect();
    assert!(partial.len() >= 3, "the reply grew chunk by chunk: {seen:?}");
    for w in seen.windows(2) {
        assert!(w[1].starts_with(w[0].as_str()), "each step extends the last: {seen:?}");
    }
    // the history holds the question and ONE reply, final
    let h = history(&c, &room, &a).await;
    let replies: Vec<&Value> = h.iter().filter(|m| m["bot"] == true).collect();
    assert_eq!(replies.len(), 1, "one reply in the history: {h:?}");
    assert_eq!(replies[0]["text"], TEXT);
    assert_eq!(replies[0]["streaming"], false);
    assert_eq!(h[0]["id"], last["message"]["id"], "the reply is the newest message: {h:?}");
    // a second front end folding the room from its stream sees the same single message
    let c2 = chat_with(|cfg| cfg.bots.reply_mode = mode).await;
    let login =
        c2.req("POST", "/api/login", None, Some(json!({"username": _alice, "password": "hunter2hunter2"}))).await;
    let a2 = login.body["token"].as_str().unwrap().to_owned();
    let h2 = history(&c2, &room, &a2).await;
    assert_eq!(h2.len(), h.len(), "the same history from the stream: {h2:?}");
    assert_eq!(h2[0]["text"], TEXT);
}

#[tokio::test]
async fn a_bot_reply_streams_over_direct_reply_to() {
    round_trip(ReplyMode::Direct).await;
}

#[tokio::test]
async fn a_bot_reply_streams_over_a_reply_queue_per_request() {
    round_trip(ReplyMode::Queue).await;
}

#[tokio::test]
async fn a_bot_killed_mid_reply_leaves_it_interrupted() {
    let idle = Duration::from_secs(1);
    let c = chat_with(|cfg| cfg.bots.idle_timeout = idle).await;
    let (_alice, a) = c.user("alice").await;
    let room = c.room(&a, true).await["id"].as_str().unwrap().to_owned();
    let bot = name("bot");
    let long = "word ".repeat(200);
    let stop = words(&bot, 10.0, &long).await;

    let mut ws = c.ws(&a).await;
    ws.until(is("hello")).await;
    ws.send(json!({"type": "subscribe", "room": room})).await;
    ws.until(is("subscribed")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let id = loop {
        let text = format!("/{bot} go");
        let r = c.req("POST", &format!("/api/rooms/{room}/messages"), Some(&a), Some(json!({"text": text}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let p = tokio::time::timeout(
            Duration::from_secs(2),
            ws.until(|v| v["type"] == "message" && v["message"]["bot"] == true),
        )
        .await;
        if let Ok(p) = p {
            break p["message"]["id"].clone();
        }
        assert!(Instant::now() < deadline, "the bot never answered");
    };
    // a few words in, the bot dies
    ws.until(|v| {
        v["type"] == "edit" && v["message"]["id"] == id && v["message"]["text"].as_str().is_some_and(|t| t.len() > 10)
    })
    .await;
    let _ = stop.send(());
    let killed = Instant::now();
    let end = ws.until(|v| v["type"] == "edit" && v["message"]["id"] == id && v["message"]["streaming"] == false).await;
    let took = killed.elapsed();
    assert_eq!(end["message"]["interrupted"], true, "{end}");
    let text = end["message"]["text"].as_str().unwrap_or_default();
    assert!(!text.is_empty() && text.len() < long.len(), "the words that came are kept: {text:?}");
    assert!(took < idle + Duration::from_secs(3), "closed within the idle timeout: {took:?}");
    let h = history(&c, &room, &a).await;
    let reply = h.iter().find(|m| m["id"] == id).expect("the reply is in the history");
    assert_eq!(reply["interrupted"], true);
    assert_eq!(reply["streaming"], false);
}

#[tokio::test]
async fn a_mention_of_no_bot_is_just_a_message() {
    let c = chat().await;
    let (_alice, a) = c.user("alice").await;
    let room = c.room(&a, true).await["id"].as_str().unwrap().to_owned();
    let text = format!("@{} are you there?", name("nobody"));
    let r = c.req("POST", &format!("/api/rooms/{room}/messages"), Some(&a), Some(json!({"text": text}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let h = history(&c, &room, &a).await;
    assert_eq!(h.len(), 1, "no reply placeholder: {h:?}");
    assert_eq!(c.server.live.app().bots.in_progress(), 0, "nothing left pending");
}

#[tokio::test]
async fn every_new_account_is_in_the_default_room() {
    let c = chat().await;
    let (alice, a) = c.user("alice").await;
    let (bob, b) = c.user("bob").await;
    let me = c.req("GET", "/api/me", Some(&a), None).await;
    let general = me.body["rooms"].as_array().unwrap().iter().find(|r| r["id"] == "general").cloned();
    let general = general.unwrap_or_else(|| panic!("alice is in general: {}", me.body));
    assert_eq!(general["public"], true);
    assert_eq!(general["name"], "general");
    let r = c.req("POST", "/api/rooms/general/messages", Some(&b), Some(json!({"text": "hi all"}))).await;
    assert_eq!(r.status, 201, "bob can post at once: {}", r.body);
    let members = c.req("GET", "/api/rooms/general", Some(&a), None).await;
    let members = members.body["members"].as_array().cloned().unwrap_or_default();
    assert!(members.iter().any(|m| m == alice.as_str()) && members.iter().any(|m| m == bob.as_str()));

    // another name, or none
    let town = chat_with(|cfg| cfg.default_room = Some("Town Square".into())).await;
    let (_carol, t) = town.user("carol").await;
    let me = town.req("GET", "/api/me", Some(&t), None).await;
    let ids: Vec<&str> = me.body["rooms"].as_array().unwrap().iter().filter_map(|r| r["id"].as_str()).collect();
    assert!(ids.contains(&"town-square"), "{ids:?}");
    let none = chat_with(|cfg| cfg.default_room = None).await;
    let (_dave, d) = none.user("dave").await;
    let me = none.req("GET", "/api/me", Some(&d), None).await;
    assert_eq!(me.body["rooms"].as_array().map(Vec::len), Some(0), "{}", me.body);
}
