//! REST API against a real broker (see common::amqp_url).

mod common;

use std::time::Duration;

use common::{chat, chat_with, name};
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::json;

#[tokio::test]
async fn accounts_tokens_and_errors() {
    let c = chat().await;
    let n = name("alice");
    let creds = json!({"username": n, "password": "correct horse"});
    let r = c.req("POST", "/api/register", None, Some(creds.clone())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.req_ok_token_user(), n);
    assert_eq!(c.req("POST", "/api/register", None, Some(creds.clone())).await.status, 409);
    let bad =
        c.req("POST", "/api/register", None, Some(json!({"username": "<b>x</b>", "password": "correct horse"}))).await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["error"], "unprocessable");
    assert_eq!(c.raw("POST", "/api/register", None, Some("{not json".into())).await.status, 422);

    let r = c.req("POST", "/api/login", None, Some(creds.clone())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.body["token"].as_str().unwrap().to_owned();
    let me = c.req("GET", "/api/me", Some(&token), None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["username"], n.as_str());

    assert_eq!(c.req("GET", "/api/me", None, None).await.status, 401);
    assert_eq!(c.req("GET", "/api/me", Some("forged-token"), None).await.status, 401);
    assert_eq!(c.req("POST", "/api/logout", Some(&token), None).await.status, 204);
    assert_eq!(c.req("GET", "/api/me", Some(&token), None).await.status, 401);

    // five wrong passwords, then the account is locked for the window, even with the right one
    let wrong = json!({"username": n, "password": "wrong horse!"});
    for _ in 0..5 {
        assert_eq!(c.req("POST", "/api/login", None, Some(wrong.clone())).await.status, 401);
    }
    let r = c.req("POST", "/api/login", None, Some(creds)).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.body["error"], "rate_limited");
    assert_eq!(c.req("GET", "/api/nothing-here", None, None).await.status, 404);
}

#[tokio::test]
async fn pages_and_api_forbid_framing() {
    let c = chat().await;
    for path in ["/", "/app.js", "/api/me", "/api/nothing-here"] {
        let r = c.raw("GET", path, None, None).await;
        let csp = r.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(csp.split(';').any(|d| d.trim() == "frame-ancestors 'none'"), "{path}: {csp}");
    }
}

trait TokenUser {
    fn req_ok_token_user(&self) -> String;
}
impl TokenUser for common::Resp {
    fn req_ok_token_user(&self) -> String {
        let user = self.body["username"].as_str().unwrap().to_owned();
        // USER.EXPIRES_MS.ID.HMAC-SHA256 (hex): signed, so that every front end accepts it
        let token = self.body["token"].as_str().unwrap_or_default();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 4, "{token}");
        assert_eq!(parts[0], user);
        assert_eq!(parts[3].len(), 64, "{token}");
        user
    }
}

#[tokio::test]
async fn rate_limit_per_address() {
    let c = chat_with(|cfg| cfg.login_attempts_per_addr = 3).await;
    for i in 0..3 {
        let r = c
            .req("POST", "/api/login", None, Some(json!({"username": format!("nobody{i}"), "password": "xxxxxxxx"})))
            .await;
        assert_eq!(r.status, 401);
    }
    let r = c.req("POST", "/api/login", None, Some(json!({"username": "someone-else", "password": "xxxxxxxx"}))).await;
    assert_eq!(r.status, 429);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let c = chat_with(|cfg| cfg.token_ttl = Duration::from_millis(300)).await;
    let (_, token) = c.user("exp").await;
    assert_eq!(c.req("GET", "/api/rooms", Some(&token), None).await.status, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = c.req("GET", "/api/rooms", Some(&token), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "unauthorized");
    let url = format!("{}/ws?token={token}", c.base.replace("http://", "ws://"));
    let err = match tokio_tungstenite::connect_async(url).await {
        Ok(_) => panic!("ws upgrade with an expired token must be refused"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn rooms_messages_history_edit_delete() {
    let c = chat().await;
    let (_alice, a) = c.user("alice").await;
    let (_bob, b) = c.user("bob").await;
    let room = c.room(&a, true).await;
    let id = room["id"].as_str().unwrap();
    assert!(room["invite"].is_null(), "public rooms need no invitation");

    let list = c.req("GET", "/api/rooms", Some(&b), None).await;
    assert!(list.body.as_array().unwrap().iter().any(|r| r["id"] == id));
    // not a member yet
    let r = c.req("POST", &format!("/api/rooms/{id}/messages"), Some(&b), Some(json!({"text": "hi"}))).await;
    assert_eq!(r.status, 403);
    assert_eq!(c.req("POST", &format!("/api/rooms/{id}/join"), Some(&b), None).await.status, 200);
    let members = c.req("GET", &format!("/api/rooms/{id}"), Some(&b), None).await;
    assert_eq!(members.body["members"].as_array().unwrap().len(), 2);

    let mut ids = Vec::new();
    for i in 0..5 {
        let r = c
            .req(
                "POST",
                &format!("/api/rooms/{id}/messages"),
                Some(if i % 2 == 0 { &a } else { &b }),
                Some(json!({"text": format!("m{i}")})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let page = c.req("GET", &format!("/api/rooms/{id}/messages?limit=2"), Some(&b), None).await;
    let texts: Vec<_> =
        page.body["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect();
    assert_eq!(texts, ["m4", "m3"]);
    let before = page.body["next_before"].as_u64().unwrap();
    let page = c.req("GET", &format!("/api/rooms/{id}/messages?limit=10&before={before}"), Some(&b), None).await;
    let texts: Vec<_> =
        page.body["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect();
    assert_eq!(texts, ["m2", "m1", "m0"]);
    assert!(page.body["next_before"].is_null());
    assert_eq!(c.req("GET", &format!("/api/rooms/{id}/messages?before=abc"), Some(&b), None).await.status, 400);

    // edit and delete: own messages only
    let m0 = &ids[0];
    let r = c.req("PATCH", &format!("/api/rooms/{id}/messages/{m0}"), Some(&b), Some(json!({"text": "hijack"}))).await;
    assert_eq!(r.status, 403);
    let r =
        c.req("PATCH", &format!("/api/rooms/{id}/messages/{m0}"), Some(&a), Some(json!({"text": "m0 fixed"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["edited"], true);
    assert_eq!(c.req("DELETE", &format!("/api/rooms/{id}/messages/{m0}"), Some(&a), None).await.status, 204);
    assert_eq!(c.req("DELETE", &format!("/api/rooms/{id}/messages/{m0}"), Some(&a), None).await.status, 409);
    assert_eq!(c.req("DELETE", &format!("/api/rooms/{id}/messages/nope"), Some(&a), None).await.status, 404);
    let page = c.req("GET", &format!("/api/rooms/{id}/messages"), Some(&a), None).await;
    let oldest = page.body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(oldest["deleted"], true);
    assert_eq!(oldest["text"], "");

    // size limit: 64 KiB of text is fine, one byte more is 413
    let big = "x".repeat(64 * 1024);
    let r = c.req("POST", &format!("/api/rooms/{id}/messages"), Some(&a), Some(json!({"text": big}))).await;
    assert_eq!(r.status, 201);
    let r = c.req("POST", &format!("/api/rooms/{id}/messages"), Some(&a), Some(json!({"text": big + "x"}))).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.body["error"], "too_large");
    let r = c.req("POST", &format!("/api/rooms/{id}/messages"), Some(&a), Some(json!({"text": "  "}))).await;
    assert_eq!(r.status, 422);
    assert_eq!(c.req("GET", "/api/rooms/nosuchroom/messages", Some(&a), None).await.status, 404);

    // history survives a second front end: it folds the same streams
    let c2 = chat().await;
    let r = c2.req("POST", "/api/login", None, Some(json!({"username": _alice, "password": "hunter2hunter2"}))).await;
    assert_eq!(r.status, 200, "second front end knows the account: {}", r.body);
    let t2 = r.body["token"].as_str().unwrap();
    let page = c2.req("GET", &format!("/api/rooms/{id}/messages?limit=100"), Some(t2), None).await;
    assert_eq!(page.body["messages"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn private_rooms_invitations_and_direct_chats() {
    let c = chat().await;
    let (alice, a) = c.user("alice").await;
    let (bob, b) = c.user("bob").await;
    let (_eve, e) = c.user("eve").await;
    let room = c.room(&a, false).await;
    let id = room["id"].as_str().unwrap();
    let invite = room["invite"].as_str().unwrap();
    c.req("POST", &format!("/api/rooms/{id}/messages"), Some(&a), Some(json!({"text": "secret"}))).await;

    let list = c.req("GET", "/api/rooms", Some(&e), None).await;
    assert!(!list.body.as_array().unwrap().iter().any(|r| r["id"] == id), "private rooms are not listed");
    // to a non-member a private room does not exist: every route answers as for a missing room
    assert_hidden(&c, id, &e).await;
    let r = c.req("POST", &format!("/api/rooms/{id}/join"), Some(&b), Some(json!({"invite": invite}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let page = c.req("GET", &format!("/api/rooms/{id}/messages"), Some(&b), None).await;
    assert_eq!(page.body["messages"][0]["text"], "secret");
    assert_eq!(c.req("POST", &format!("/api/rooms/{id}/leave"), Some(&b), None).await.status, 204);
    assert_hidden(&c, id, &b).await;

    // 1:1
    let dm = c.req("POST", &format!("/api/dm/{bob}"), Some(&a), None).await;
    assert_eq!(dm.status, 200, "{}", dm.body);
    let dm_id = dm.body["id"].as_str().unwrap().to_owned();
    let again = c.req("POST", &format!("/api/dm/{alice}"), Some(&b), None).await;
    assert_eq!(again.body["id"], dm_id.as_str(), "the same room from both sides");
    let r = c.req("POST", &format!("/api/rooms/{dm_id}/messages"), Some(&b), Some(json!({"text": "psst"}))).await;
    assert_eq!(r.status, 201);
    assert_hidden(&c, &dm_id, &e).await;
    assert_eq!(c.req("POST", "/api/dm/nobody-at-all", Some(&a), None).await.status, 404);
}

/// Every route about room `id` answers `token`'s user exactly as it answers for a room that
/// does not exist (status and body, the id aside).
async fn assert_hidden(c: &common::Chat, id: &str, token: &str) {
    let missing = format!("r{:012x}", rand::random::<u64>() >> 16);
    let message = r#"{"text": "let me in"}"#.to_owned();
    let routes: [(&str, &str, Option<String>); 10] = [
        ("GET", "", None),
        ("GET", "/messages", None),
        ("GET", "/messages?limit=1", None),
        ("POST", "/messages", Some(message.clone())),
        ("PATCH", "/messages/some-id", Some(message)),
        ("DELETE", "/messages/some-id", None),
        ("POST", "/read", Some(r#"{"offset": 1}"#.into())),
        ("POST", "/join", None),
        ("POST", "/join", Some(r#"{"invite": "guess"}"#.into())),
        ("POST", "/leave", None),
    ];
    for (method, tail, body) in routes {
        let hidden = c.raw(method, &format!("/api/rooms/{id}{tail}"), Some(token), body.clone()).await;
        let absent = c.raw(method, &format!("/api/rooms/{missing}{tail}"), Some(token), body).await;
        assert_eq!(absent.status, 404, "{method} {tail}: {}", absent.body);
        assert_eq!(absent.body["error"], "not_found");
        assert_eq!(hidden.status, absent.status, "{method} {tail}: {}", hidden.body);
        assert_eq!(hidden.body.to_string().replace(id, &missing), absent.body.to_string(), "{method} {tail}");
    }
}

#[tokio::test]
async fn amqp_clients_interoperate() {
    let c = chat().await;
    let (alice, a) = c.user("alice").await;
    let room = c.room(&a, true).await;
    let id = room["id"].as_str().unwrap().to_owned();

    let bot_url = common::bot_amqp_url();
    let bot = common::url_user(&bot_url);
    let conn = Connection::connect(&bot_url, ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    // a consumer bound to room.# sees what web users send
    let q = ch
        .queue_declare("".into(), QueueDeclareOptions { exclusive: true, ..Default::default() }, FieldTable::default())
        .await
        .unwrap();
    ch.queue_bind(q.name().clone(), "chat".into(), "room.#".into(), QueueBindOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let mut consumer = ch
        .basic_consume(
            q.name().clone(),
            "".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let r = c.req("POST", &format!("/api/rooms/{id}/messages"), Some(&a), Some(json!({"text": "hello bots"}))).await;
    assert_eq!(r.status, 201);
    let d = loop {
        let d = tokio::time::timeout(Duration::from_secs(10), consumer.next()).await.unwrap().unwrap().unwrap();
        if d.routing_key.as_str() == format!("room.{id}") {
            break d;
        }
    };
    let body: serde_json::Value = serde_json::from_slice(&d.data).unwrap();
    assert_eq!(body["text"], "hello bots");
    assert_eq!(body["kind"], "message");
    assert_eq!(body["room"], id.as_str());
    let author = d.properties.headers().as_ref().unwrap().inner().get("x-chat-author").cloned();
    let author = match author {
        Some(lapin::types::AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => panic!("x-chat-author header: {other:?}"),
    };
    assert_eq!(author, alice);

    // a bot publishes JSON to `chat` with key room.<id>: shown as from its AMQP user
    let props =
        BasicProperties::default().with_content_type("application/json".into()).with_user_id(bot.as_str().into());
    ch.basic_publish(
        "chat".into(),
        format!("room.{id}").as_str().into(),
        BasicPublishOptions::default(),
        br#"{"text":"beep from a bot"}"#,
        props,
    )
    .await
    .unwrap();
    let mut found = None;
    for _ in 0..50 {
        let page = c.req("GET", &format!("/api/rooms/{id}/messages"), Some(&a), None).await;
        found = page.body["messages"].as_array().unwrap().iter().find(|m| m["text"] == "beep from a bot").cloned();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = found.expect("bot message in history");
    assert_eq!(m["bot"], true);
    assert_eq!(m["author"], bot.as_str());
    let _ = conn.close(200, "bye".into()).await;
}
