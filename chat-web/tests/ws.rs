//! WebSocket: live messages, typing, presence, receipts, unread counts, catch-up, and abuse.

mod common;

use std::time::Duration;

use common::{chat, is, presence};
use futures_util::StreamExt;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn live_chat_presence_typing_receipts_and_catch_up() {
    let c = chat().await;
    let (alice, a) = c.user("alice").await;
    let (bob, b) = c.user("bob").await;
    let id = c.shared_room(&a, &b).await;

    let mut wa = c.ws(&a).await;
    let hello = wa.until(is("hello")).await;
    assert_eq!(hello["user"], alice.as_str());
    let mut wb = c.ws(&b).await;
    wb.until(is("hello")).await;
    // alice sees bob come online
    wa.until(presence(&bob, "online")).await;

    wa.send(json!({"type": "subscribe", "room": id})).await;
    wa.until(is("subscribed")).await;
    wb.send(json!({"type": "subscribe", "room": id})).await;
    wb.until(is("subscribed")).await;

    wa.send(json!({"type": "send", "room": id, "text": "hello **bob**", "client_id": "c1"})).await;
    let sent = wa.until(is("sent")).await;
    assert_eq!(sent["client_id"], "c1");
    let m = wb.until(is("message")).await;
    assert_eq!(m["message"]["text"], "hello **bob**");
    assert_eq!(m["message"]["author"], alice.as_str());
    let mid = m["message"]["id"].as_str().unwrap().to_owned();
    let off = m["message"]["offset"].as_u64().unwrap();

    // delivered receipt reaches the author, and only the author
    wb.send(json!({"type": "delivered", "room": id, "id": mid})).await;
    let r = wa.until(is("receipt")).await;
    assert_eq!(r["status"], "delivered");
    assert_eq!(r["user"], bob.as_str());

    // typing (reaches bob's own session too, after the receipt it must not have had)
    wb.send(json!({"type": "typing", "room": id})).await;
    let t = wa.until(is("typing")).await;
    assert_eq!(t["user"], bob.as_str());
    loop {
        let v = wb.next().await;
        assert_ne!(v["type"], "receipt", "a receipt for alice's message reached bob: {v}");
        if v["type"] == "typing" {
            break;
        }
    }

    // read receipt: bob's unread goes to 0
    wb.send(json!({"type": "read", "room": id, "offset": off})).await;
    wa.until(|v| v["type"] == "read" && v["user"] == bob.as_str()).await;

    // edits arrive live
    wa.send(json!({"type": "edit", "room": id, "id": mid, "text": "hello *bob*"})).await;
    let e = wb.until(is("edit")).await;
    assert_eq!(e["message"]["text"], "hello *bob*");

    // bob goes away, then offline; alice writes; bob comes back with his last offset
    wb.send(json!({"type": "presence", "status": "away"})).await;
    wa.until(presence(&bob, "away")).await;
    drop(wb);
    wa.until(presence(&bob, "offline")).await;
    for i in 0..3 {
        wa.send(json!({"type": "send", "room": id, "text": format!("missed {i}")})).await;
        wa.until(is("sent")).await;
    }
    let mut wb = c.ws(&b).await;
    let hello = wb.until(is("hello")).await;
    let r = hello["rooms"].as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).unwrap().clone();
    assert_eq!(r["unread"], 3, "{hello}");
    wb.send(json!({"type": "subscribe", "room": id, "since": off})).await;
    let mut got = Vec::new();
    loop {
        let v = wb.next().await;
        if v["type"] == "subscribed" {
            assert_eq!(v["unread"], 3);
            break;
        }
        if v["type"] == "message" {
            assert_eq!(v["catchup"], true);
            got.push(v["message"]["text"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(got, ["missed 0", "missed 1", "missed 2"]);

    // a live message first: bob's session asks once whether he is a member, and keeps the answer
    wa.send(json!({"type": "send", "room": id, "text": "still here"})).await;
    assert_eq!(wb.until(is("message")).await["message"]["text"], "still here");

    // bob leaves: alice gets the new member list, and so do bob's own sessions
    assert_eq!(c.req("POST", &format!("/api/rooms/{id}/leave"), Some(&b), None).await.status, 204);
    let left = |v: &serde_json::Value| {
        v["type"] == "room"
            && v["room"] == id.as_str()
            && v["members"].as_array().is_some_and(|m| !m.iter().any(|u| u == bob.as_str()))
    };
    let ev = wa.until(left).await;
    assert!(ev["members"].as_array().unwrap().iter().any(|u| u == alice.as_str()), "{ev}");
    wb.until(left).await;

    // bob's session, still subscribed, has no more of the room's messages: an error says why
    wa.send(json!({"type": "send", "room": id, "text": "after bob left"})).await;
    wa.until(is("sent")).await;
    let v = wb.until(|v| v["type"] == "error" || v["type"] == "message").await;
    assert_eq!(v["type"], "error", "bob's session still had the room's messages: {v}");
    assert_eq!(v["room"], id.as_str());
}

#[tokio::test]
async fn abuse_gets_error_events_and_hurts_nobody_else() {
    let c = chat().await;
    let (_alice, a) = c.user("alice").await;
    let (_bob, b) = c.user("bob").await;
    let (_eve, e) = c.user("eve").await;
    let public = c.room(&a, true).await["id"].as_str().unwrap().to_owned();
    let private = c.room(&a, false).await["id"].as_str().unwrap().to_owned();
    let other = c.room(&e, true).await["id"].as_str().unwrap().to_owned();
    for r in [&public, &other] {
        c.req("POST", &format!("/api/rooms/{r}/join"), Some(&b), None).await;
    }
    c.req("POST", &format!("/api/rooms/{public}/join"), Some(&e), None).await;

    let mut we = c.ws(&e).await;
    we.until(is("hello")).await;
    let mut wb = c.ws(&b).await;
    wb.until(is("hello")).await;
    wb.send(json!({"type": "subscribe", "room": public})).await;
    wb.until(is("subscribed")).await;

    // a non-member cannot subscribe to a private room, nor post or type in it: to them it
    // does not exist
    we.send(json!({"type": "subscribe", "room": "rnosuchroom0"})).await;
    let absent = we.until(is("error")).await;
    assert_eq!(absent["status"], 404);
    for frame in [
        json!({"type": "subscribe", "room": private}),
        json!({"type": "send", "room": private, "text": "let me in"}),
        json!({"type": "typing", "room": private}),
        json!({"type": "read", "room": private, "offset": 1}),
    ] {
        we.send(frame.clone()).await;
        let err = we.until(is("error")).await;
        assert_eq!(err["room"], private.as_str());
        assert_eq!(err.to_string().replace(&private, "rnosuchroom0"), absent.to_string(), "{frame}");
    }

    we.send(json!({"type": "subscribe", "room": other})).await;
    we.until(is("subscribed")).await;
    we.send(json!({"type": "subscribe", "room": public})).await;
    we.until(is("subscribed")).await;
    // malformed, unknown, binary and oversized frames: error events, socket stays up
    we.send_raw(Message::Text("{nope".into())).await;
    assert_eq!(we.until(is("error")).await["status"], 400);
    we.send(json!({"type": "launch_missiles"})).await;
    assert_eq!(we.until(is("error")).await["status"], 422);
    we.send_raw(Message::Binary(vec![0, 1, 2])).await;
    assert_eq!(we.until(is("error")).await["status"], 400);
    we.send(json!({"type": "send", "room": other, "text": "y".repeat(65 * 1024), "client_id": "big"})).await;
    let err = we.until(is("error")).await;
    assert_eq!(err["status"], 413);
    assert_eq!(err["client_id"], "big");

    // the XSS payload travels as text; rendering it as text is the UI's job (browser tests)
    let xss = "<img src=x onerror=alert(1)><script>alert(2)</script>";
    we.send(json!({"type": "send", "room": public, "text": xss})).await;
    we.until(is("sent")).await;
    let m = wb.until(is("message")).await;
    assert_eq!(m["message"]["text"], xss);

    // eve's other room still works on the same socket
    c.req("POST", &format!("/api/rooms/{other}/messages"), Some(&b), Some(json!({"text": "still there?"}))).await;
    let m = we.until(|v| v["type"] == "message" && v["room"] == other.as_str()).await;
    assert_eq!(m["message"]["text"], "still there?");
}

/// A front end that goes silent (here it loses its broker connection without a word, as a
/// crash would) has its users dropped from the others' presence after three missed heartbeats.
#[tokio::test]
async fn presence_from_a_silent_front_end_expires() {
    let fast = |c: &mut warren_chat::ChatConfig| c.presence_heartbeat = std::time::Duration::from_millis(200);
    let front_a = common::chat_with(fast).await;
    let front_b = common::chat_with(fast).await;
    let (carol, token_c) = front_a.user("carol").await;
    let (_, token_d) = front_b.user("dave").await;
    let mut wd = front_b.ws(&token_d).await;
    wd.until(is("hello")).await;
    let _wc = front_a.ws(&token_c).await;
    wd.until(presence(&carol, "online")).await;

    front_a.server.live.app().shutdown().await;
    wd.until(presence(&carol, "offline")).await;
}

/// A session that subscribed to a quiet room and then disconnects goes offline at once: the
/// room's hold on it must not keep the session alive.
#[tokio::test]
async fn closing_a_socket_subscribed_to_a_quiet_room_ends_the_session() {
    let c = chat().await;
    let (_, a) = c.user("ann").await;
    let (bert, b) = c.user("bert").await;
    let id = c.shared_room(&a, &b).await;
    let mut wa = c.ws(&a).await;
    wa.until(is("hello")).await;
    let mut wb = c.ws(&b).await;
    wb.until(is("hello")).await;
    wa.until(presence(&bert, "online")).await;
    wb.send(json!({"type": "subscribe", "room": id})).await;
    wb.until(is("subscribed")).await;
    wb.socket.close(None).await.expect("close");
    drop(wb);
    wa.until(presence(&bert, "offline")).await;
}

/// Subscribe, unsubscribe and subscribe again in one burst: the session follows the room live.
#[tokio::test]
async fn resubscribing_in_a_burst_keeps_the_live_feed() {
    let c = chat().await;
    let (_, a) = c.user("cleo").await;
    let (_, b) = c.user("dan").await;
    let id = c.shared_room(&a, &b).await;
    let mut wb = c.ws(&b).await;
    wb.until(is("hello")).await;
    wb.send(json!({"type": "subscribe", "room": id})).await;
    wb.until(is("subscribed")).await;
    for _ in 0..20 {
        wb.send(json!({"type": "unsubscribe", "room": id})).await;
        wb.send(json!({"type": "subscribe", "room": id})).await;
    }
    for _ in 0..20 {
        wb.until(is("subscribed")).await;
    }
    let r = c.req("POST", &format!("/api/rooms/{id}/messages"), Some(&a), Some(json!({"text": "still there?"}))).await;
    assert_eq!(r.status, 201);
    let m = wb.until(|v| v["type"] == "message" && v["catchup"].is_null()).await;
    assert_eq!(m["message"]["text"], "still there?");
}

/// A session that does not read while its room gets far more than its queue holds is closed
/// (with 1013, try again later, when the close still fits) rather than buffered without bound
/// or left waiting on its socket; reconnecting, it catches up from its last offset.
#[tokio::test]
async fn a_session_that_does_not_read_is_closed_with_1013_and_catches_up() {
    const COUNT: usize = 5000;
    let c = chat().await;
    let (_, a) = c.user("slow").await;
    let room = c.room(&a, true).await;
    let id = room["id"].as_str().unwrap().to_owned();
    let mut ws = c.ws(&a).await;
    ws.until(is("hello")).await;
    ws.send(json!({"type": "subscribe", "room": id})).await;
    let subscribed = ws.until(is("subscribed")).await;
    let since = subscribed["last_offset"].as_u64();

    // a bot floods the room with 5000 messages of 8 KiB (40 MB: more than the socket buffers
    // and the session's queue hold), while the session reads nothing
    let bot_url = common::bot_amqp_url();
    let bot = common::url_user(&bot_url);
    let conn = Connection::connect(&bot_url, ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let props =
        BasicProperties::default().with_content_type("application/json".into()).with_user_id(bot.as_str().into());
    let filler = "x".repeat(8 * 1024);
    for i in 0..COUNT {
        let text = if i + 1 == COUNT { "the last one".to_owned() } else { format!("{i} {filler}") };
        let body = json!({"text": text}).to_string();
        ch.basic_publish(
            "chat".into(),
            format!("room.{id}").as_str().into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            props.clone(),
        )
        .await
        .unwrap();
    }
    // the chat has folded them all
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let r = c.req("GET", &format!("/api/rooms/{id}/messages?limit=1"), Some(&a), None).await;
        if r.body["messages"][0]["text"] == "the last one" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the chat folded the flood within 120 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // now read: some messages (what the socket buffers held), then the end, not the flood: a
    // close with 1013 when it still fitted in the socket, else the connection just ends (a
    // client that does not read gets no more than its buffers' worth of waiting)
    let mut messages = 0;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.socket.next()).await.expect("a frame within 10 s");
        match m {
            Some(Ok(Message::Text(t))) if t.contains("\"type\":\"message\"") => messages += 1,
            Some(Ok(Message::Close(frame))) => {
                let close = frame.expect("a close frame with a code");
                assert_eq!(close.code, CloseCode::Again, "{close:?}");
                break;
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => break,
        }
    }
    assert!(messages < COUNT - 1, "the session was not closed: it had all {messages} messages");

    // reconnecting, the catch-up ends with the newest message
    let mut ws = c.ws(&a).await;
    ws.until(is("hello")).await;
    ws.send(json!({"type": "subscribe", "room": id, "since": since})).await;
    let mut last = None;
    loop {
        let v = ws.next().await;
        if v["type"] == "subscribed" {
            break;
        }
        if v["type"] == "message" {
            last = Some(v["message"]["text"].clone());
        }
    }
    assert_eq!(last, Some(json!("the last one")));
}
