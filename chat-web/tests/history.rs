//! History beyond a front end's memory: a bounded window per room with older pages read from
//! the stream (changes to old messages included), live retention, search over the stream and
//! only the user's rooms, and a deleted room's stream gone with it.

mod common;

use std::time::Duration;

use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{Value, json};
use warren_chat::ratelimit::Limits;

fn generous(c: &mut warren_chat::ChatConfig) {
    c.limits = Limits::generous();
}

/// Every message of `room` through `GET messages` pages of `limit`, newest first.
async fn all_pages(c: &common::Chat, token: &str, room: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut before: Option<u64> = None;
    for _ in 0..100 {
        let q = before.map(|b| format!("&before={b}")).unwrap_or_default();
        let r = c.req("GET", &format!("/api/rooms/{room}/messages?limit={limit}{q}"), Some(token), None).await;
        assert_eq!(r.status, 200, "history: {}", r.body);
        out.extend(r.body["messages"].as_array().unwrap().iter().cloned());
        match r.body["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => return out,
        }
    }
    panic!("history never ended");
}

fn texts(messages: &[Value]) -> Vec<String> {
    messages.iter().map(|m| m["text"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn old_pages_come_from_the_stream_with_their_edits_deletes_and_reactions() {
    // `big` keeps everything in memory; `small` keeps 20 messages of a room, one started
    // before the messages and one after (folding the stream from the start)
    let big = common::chat_with(generous).await;
    let small = common::chat_with(|c| {
        generous(c);
        c.history_window = 20;
    })
    .await;
    let (_, alice) = big.user("alice").await;
    let (bob_name, bob) = big.user("bob").await;
    let room = big.shared_room(&alice, &bob).await;
    // small follows the room from now on
    // (once its fold of the directory has bob's membership)
    let mut status = 0;
    for _ in 0..50 {
        status = small.req("GET", &format!("/api/rooms/{room}/messages"), Some(&bob), None).await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
    let mut ids = Vec::new();
    for i in 0..70 {
        let r = big
            .req(
                "POST",
                &format!("/api/rooms/{room}/messages"),
                Some(&alice),
                Some(json!({"text": format!("m{i:02}")})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
        if i % 10 == 5 {
            // read marks in between
            let offset = r.body["offset"].as_u64().unwrap();
            let r =
                big.req("POST", &format!("/api/rooms/{room}/read"), Some(&bob), Some(json!({"offset": offset}))).await;
            assert_eq!(r.status, 204);
        }
    }
    // changes to messages long out of small's window
    let path = |i: usize| format!("/api/rooms/{room}/messages/{}", ids[i]);
    assert_eq!(big.req("PATCH", &path(3), Some(&alice), Some(json!({"text": "m03 fixed"}))).await.status, 200);
    assert_eq!(big.req("DELETE", &path(5), Some(&alice), None).await.status, 204);
    let mut ws = big.ws(&bob).await;
    ws.send(json!({"type": "subscribe", "room": room})).await;
    ws.until(common::is("subscribed")).await;
    ws.send(json!({"type": "react", "room": room, "id": ids[7], "emoji": "👍"})).await;
    ws.until(|v| v["type"] == "edit" && v["message"]["id"] == ids[7].as_str()).await;
    let late = common::chat_with(|c| {
        generous(c);
        c.history_window = 20;
    })
    .await;

    let mut expected: Vec<String> = (0..70).rev().map(|i| format!("m{i:02}")).collect();
    expected[69 - 3] = "m03 fixed".into();
    expected[69 - 5] = String::new();
    let reference = all_pages(&big, &bob, &room, 15).await;
    assert_eq!(texts(&reference), expected);
    for (who, c) in [("the front end that followed", &small), ("the front end started later", &late)] {
        let pages = all_pages(c, &bob, &room, 15).await;
        assert_eq!(texts(&pages), expected, "{who}");
        let old = |i: usize| pages.iter().find(|m| m["id"] == ids[i].as_str()).unwrap().clone();
        assert_eq!(old(3)["edited"], true, "{who}");
        assert_eq!(old(5)["deleted"], true, "{who}");
        assert_eq!(old(7)["reactions"]["👍"], json!([bob_name]), "{who}");
        let log = c.server.live.app().active_room_log(&room).expect("room followed");
        assert!(log.window_len() <= 20, "{who} holds {} messages", log.window_len());
        // unread counts and read marks as the big front end has them
        let me = c.req("GET", "/api/me", Some(&bob), None).await;
        let mine = me.body["rooms"].as_array().unwrap().iter().find(|r| r["id"] == room.as_str()).unwrap().clone();
        assert_eq!(mine["unread"], 4, "{who}: m66..m69 are unread");
    }
}

/// A bot's connection to the broker, publishing to room `room` as AMQP clients do.
async fn bot_publish(room: &str, body: Value) {
    let url = common::bot_amqp_url();
    let conn = Connection::connect(&url, ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_user_id(common::url_user(&url).as_str().into());
    ch.basic_publish(
        "chat".into(),
        format!("room.{room}").as_str().into(),
        BasicPublishOptions::default(),
        body.to_string().as_bytes(),
        props,
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn messages_older_than_a_one_minute_retention_vanish_while_the_front_end_runs() {
    let c = common::chat_with(|c| {
        generous(c);
        c.expiry_sweep = Duration::from_millis(500);
    })
    .await;
    let (_, alice) = c.user("alice").await;
    let r = c
        .req(
            "POST",
            "/api/rooms",
            Some(&alice),
            Some(json!({"name": common::name("brief"), "public": true, "retention_seconds": 60})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["retention_seconds"], 60);
    let room = r.body["id"].as_str().unwrap().to_owned();
    // a bad retention is a 422 with a JSON error
    let bad = c.req("POST", "/api/rooms", Some(&alice), Some(json!({"name": "x", "retention_seconds": 1}))).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body["error"].is_string(), "{}", bad.body);

    let mut ws = c.ws(&alice).await;
    ws.send(json!({"type": "subscribe", "room": room})).await;
    ws.until(common::is("subscribed")).await;
    // a message written 58 s ago (a bot's clock) and one now
    let old_ts = warren_chat::model::now_ms() - 58_000;
    bot_publish(&room, json!({"id": "old-one", "kind": "message", "text": "soon gone", "ts": old_ts})).await;
    ws.until(|v| v["type"] == "message" && v["message"]["id"] == "old-one").await;
    let r =
        c.req("POST", &format!("/api/rooms/{room}/messages"), Some(&alice), Some(json!({"text": "still here"}))).await;
    assert_eq!(r.status, 201);
    let page = c.req("GET", &format!("/api/rooms/{room}/messages"), Some(&alice), None).await;
    assert_eq!(texts(page.body["messages"].as_array().unwrap()), vec!["still here", "soon gone"]);

    // within a few seconds it is past 60 s: gone from REST, from search and from the page
    let expired =
        tokio::time::timeout(Duration::from_secs(15), ws.until(common::is("expired"))).await.expect("expired event");
    assert!(expired["before_ts"].as_u64().unwrap() > old_ts, "{expired}");
    let page = c.req("GET", &format!("/api/rooms/{room}/messages"), Some(&alice), None).await;
    assert_eq!(texts(page.body["messages"].as_array().unwrap()), vec!["still here"]);
    assert!(page.body["next_before"].is_null(), "{}", page.body);
    let found = c.req("GET", &format!("/api/search?q=soon&room={room}"), Some(&alice), None).await;
    assert_eq!(found.body["messages"], json!([]), "{}", found.body);
    // a session catching up does not get it either
    let mut late = c.ws(&alice).await;
    late.send(json!({"type": "subscribe", "room": room, "since": 0})).await;
    let first = late.until(|v| v["type"] == "message" || v["type"] == "subscribed").await;
    assert_ne!(first["message"]["id"], "old-one", "{first}");
    // and a front end started now does not serve it
    let fresh = common::chat().await;
    let page = fresh.req("GET", &format!("/api/rooms/{room}/messages"), Some(&alice), None).await;
    assert_eq!(texts(page.body["messages"].as_array().unwrap()), vec!["still here"]);
}

#[tokio::test]
async fn search_reads_old_messages_from_the_stream_and_only_the_users_rooms() {
    let c = common::chat_with(|c| {
        generous(c);
        c.history_window = 10;
    })
    .await;
    let (_, alice) = c.user("alice").await;
    let (_, bob) = c.user("bob").await;
    let (_, eve) = c.user("eve").await;
    let public = c.shared_room(&alice, &bob).await;
    let private = c.room(&alice, false).await["id"].as_str().unwrap().to_owned();
    let word = common::name("zebra");
    for i in 0..30 {
        let text = if i == 2 { format!("the {word} is old") } else { format!("filler {i}") };
        let r =
            c.req("POST", &format!("/api/rooms/{public}/messages"), Some(&alice), Some(json!({"text": text}))).await;
        assert_eq!(r.status, 201);
    }
    let r = c
        .req(
            "POST",
            &format!("/api/rooms/{private}/messages"),
            Some(&alice),
            Some(json!({"text": format!("secret {word}")})),
        )
        .await;
    assert_eq!(r.status, 201);

    // alice: both rooms (the first message long out of the window of 10)
    let found = c.req("GET", &format!("/api/search?q={word}"), Some(&alice), None).await;
    assert_eq!(found.status, 200, "{}", found.body);
    let hits = found.body["messages"].as_array().unwrap();
    assert_eq!(hits.len(), 2, "{}", found.body);
    assert_eq!(hits[0]["room"], private.as_str());
    assert_eq!(hits[1]["room"], public.as_str());
    assert!(hits[1]["snippet"].as_str().unwrap().contains(&word));
    assert!(hits[1]["id"].is_string() && hits[1]["author"].is_string() && hits[1]["ts"].is_u64());
    assert_eq!(found.body["complete"], true);
    // within one room
    let found = c.req("GET", &format!("/api/search?q={word}&room={public}"), Some(&alice), None).await;
    assert_eq!(found.body["messages"].as_array().unwrap().len(), 1);
    // bob is in the public room only; eve in neither
    let found = c.req("GET", &format!("/api/search?q={word}"), Some(&bob), None).await;
    let rooms: Vec<&Value> = found.body["messages"].as_array().unwrap().iter().map(|m| &m["room"]).collect();
    assert_eq!(rooms, vec![&json!(public)]);
    let found = c.req("GET", &format!("/api/search?q={word}"), Some(&eve), None).await;
    assert_eq!(found.body["messages"], json!([]), "{}", found.body);
    let found = c.req("GET", &format!("/api/search?q={word}&room={private}"), Some(&eve), None).await;
    assert_eq!(found.status, 404, "{}", found.body);
    let found = c.req("GET", &format!("/api/search?q={word}&room={public}"), Some(&eve), None).await;
    assert_eq!(found.status, 403, "{}", found.body);
    let short = c.req("GET", "/api/search?q=z", Some(&alice), None).await;
    assert_eq!(short.status, 422);
}

#[tokio::test]
async fn deleting_a_room_deletes_its_stream() {
    let c = common::chat_with(generous).await;
    let (_, alice) = c.user("alice").await;
    let room = c.room(&alice, true).await["id"].as_str().unwrap().to_owned();
    let r = c.req("POST", &format!("/api/rooms/{room}/messages"), Some(&alice), Some(json!({"text": "bye"}))).await;
    assert_eq!(r.status, 201);
    let before = c.server.live.app();
    assert_eq!(c.req("DELETE", &format!("/api/rooms/{room}"), Some(&alice), None).await.status, 204);
    // the stream is gone: a passive declare says 404
    let conn = Connection::connect(&common::amqp_url(), ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let opts = QueueDeclareOptions { passive: true, ..Default::default() };
    let err = ch.queue_declare(format!("chat.room.{room}").as_str().into(), opts, FieldTable::default()).await;
    assert!(err.is_err(), "the room's stream is still there");
    assert!(format!("{err:?}").contains("NOT_FOUND") || format!("{err:?}").contains("404"), "{err:?}");
    let _ = conn.close(200, "bye".into()).await;
    // the front end kept its broker connection (its consumer of the stream ended on purpose)
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!before.is_retired(), "the front end reconnected");
    assert_eq!(c.req("GET", &format!("/api/rooms/{room}/messages"), Some(&alice), None).await.status, 404);
    assert_eq!(c.req("GET", "/api/rooms", Some(&alice), None).await.status, 200);
}
