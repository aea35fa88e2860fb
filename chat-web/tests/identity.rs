//! Who a chat message or directory event is from is what the broker vouches for: the chat takes
//! `x-chat-author` and `chat.directory` events only from its own service user. Another AMQP
//! client (a bot, or anybody who can reach port 5672) cannot post as a web user, edit a web
//! user's message, register an account or join a private room by publishing to the broker.

mod common;

use std::time::Duration;

use common::{bot_amqp_url, chat, name, url_user};
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::{Value, json};

async fn bot_channel() -> (Connection, Channel, String) {
    let url = bot_amqp_url();
    let conn = Connection::connect(&url, ConnectionProperties::default()).await.expect("bot connects");
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(Default::default()).await.expect("confirm.select");
    (conn, ch, url_user(&url))
}

/// Publish `body` as the bot (its own `user_id`, as the broker requires), claiming to be
/// `claimed` in `x-chat-author`.
async fn publish_as_bot(ch: &Channel, bot: &str, exchange: &str, key: &str, body: &Value, claimed: Option<&str>) {
    let mut props = BasicProperties::default().with_content_type("application/json".into()).with_user_id(bot.into());
    if let Some(claimed) = claimed {
        let mut headers = FieldTable::default();
        headers.insert("x-chat-author".into(), AMQPValue::LongString(LongString::from(claimed)));
        props = props.with_headers(headers);
    }
    let confirm = ch
        .basic_publish(exchange.into(), key.into(), BasicPublishOptions::default(), body.to_string().as_bytes(), props)
        .await
        .expect("publish")
        .await
        .expect("confirm");
    assert!(confirm.is_ack(), "the broker took the bot's message");
}

async fn history(c: &common::Chat, room: &str, token: &str) -> Vec<Value> {
    let page = c.req("GET", &format!("/api/rooms/{room}/messages"), Some(token), None).await;
    assert_eq!(page.status, 200, "history: {}", page.body);
    page.body["messages"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_bot_cannot_post_as_a_web_user_or_edit_their_messages() {
    let c = chat().await;
    let (alice, a) = c.user("alice").await;
    let room = c.room(&a, true).await;
    let id = room["id"].as_str().unwrap().to_owned();
    let r = c.req("POST", &format!("/api/rooms/{id}/messages"), Some(&a), Some(json!({"text": "alice's own"}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let alice_msg = r.body["id"].as_str().unwrap().to_owned();

    let (conn, ch, bot) = bot_channel().await;
    let key = format!("room.{id}");
    publish_as_bot(
        &ch,
        &bot,
        "chat",
        &key,
        &json!({"id": name("m"), "kind": "message", "text": "I am alice"}),
        Some(&alice),
    )
    .await;
    let edit = json!({"id": name("e"), "kind": "edit", "target": alice_msg, "text": "hijacked"});
    publish_as_bot(&ch, &bot, "chat", &key, &edit, Some(&alice)).await;
    let delete = json!({"id": name("d"), "kind": "delete", "target": alice_msg});
    publish_as_bot(&ch, &bot, "chat", &key, &delete, Some(&alice)).await;
    // a last message from the bot: once it is in the history, everything before it was folded
    publish_as_bot(&ch, &bot, "chat", &key, &json!({"text": "done"}), None).await;

    let mut messages = Vec::new();
    for _ in 0..100 {
        messages = history(&c, &id, &a).await;
        if messages.iter().any(|m| m["text"] == "done") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let claimed = messages.iter().find(|m| m["text"] == "I am alice").expect("the bot's message is shown");
    assert_eq!(claimed["author"], bot.as_str(), "shown as from the bot's login, not as alice");
    assert_eq!(claimed["bot"], true, "with the bot badge");
    let own = messages.iter().find(|m| m["id"] == alice_msg.as_str()).expect("alice's message");
    assert_eq!(own["text"], "alice's own", "not edited by the bot");
    assert_eq!(own["author"], alice.as_str());
    assert_ne!(own["deleted"], true, "not deleted by the bot");
    let _ = conn.close(200, "bye".into()).await;
}

#[tokio::test]
async fn directory_events_from_another_client_are_ignored() {
    let c = chat().await;
    let (alice, a) = c.user("alice").await;
    let (mallory, m) = c.user("mallory").await;
    let private = c.room(&a, false).await;
    let id = private["id"].as_str().unwrap().to_owned();
    assert_eq!(c.req("GET", &format!("/api/rooms/{id}"), Some(&m), None).await.status, 404);

    let (conn, ch, bot) = bot_channel().await;
    // join mallory to alice's private room, and register an account with a known password
    let join = json!({"kind": "member_joined", "id": name("ev"), "room": id, "user": mallory});
    publish_as_bot(&ch, &bot, "", "chat.directory", &join, None).await;
    let eve = name("eve");
    let register = json!({"kind": "user_registered", "id": name("ev"), "user": eve, "password_hash": "x"});
    publish_as_bot(&ch, &bot, "", "chat.directory", &register, None).await;
    let _ = conn.close(200, "bye".into()).await;

    // A second front end folds the whole directory before it serves (up to a marker it
    // publishes after the bot's events), so what it shows is settled.
    let c2 = chat().await;
    let login =
        c2.req("POST", "/api/login", None, Some(json!({"username": mallory, "password": "hunter2hunter2"}))).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let m2 = login.body["token"].as_str().unwrap().to_owned();
    for (front, token) in [(&c2, &m2), (&c, &m)] {
        let r = front.req("GET", &format!("/api/rooms/{id}"), Some(token), None).await;
        assert_eq!(r.status, 404, "mallory is not a member of alice's private room: {}", r.body);
        let r = front.req("GET", &format!("/api/rooms/{id}/messages"), Some(token), None).await;
        assert_eq!(r.status, 404, "nor can she read it: {}", r.body);
    }
    let r = c2.req("POST", "/api/register", None, Some(json!({"username": eve, "password": "hunter2hunter2"}))).await;
    assert_eq!(r.status, 201, "the name the bot 'registered' is still free: {}", r.body);
    assert_eq!(c2.req("GET", &format!("/api/rooms/{id}"), Some(&a_token(&c2, &alice).await), None).await.status, 200);
}

async fn a_token(c: &common::Chat, user: &str) -> String {
    let r = c.req("POST", "/api/login", None, Some(json!({"username": user, "password": "hunter2hunter2"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["token"].as_str().unwrap().to_owned()
}
