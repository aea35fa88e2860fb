//! The embedded chat's privacy does not depend on who can reach port 5672: the chat keeps its
//! rooms and directory in the vhost `chat`, where only its own service user has permissions.
//! The default user (guest) finds nothing of the chat in `/` and may not open `chat`; a bot
//! user set up as the README says posts to a room and is shown as itself with the bot badge,
//! whatever `x-chat-author` it claims, and can read neither a room's stream nor the directory.

mod common;

use std::time::Duration;

use common::{Http, Warren, ctl_ok};
use hyper::Method;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ErrorKind};
use serde_json::{Value, json};

fn code(err: &lapin::Error) -> u16 {
    match err.kind() {
        ErrorKind::ProtocolError(e) => e.get_id(),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

async fn sign_up(http: &Http, name: &str) -> String {
    let body = json!({"username": name, "password": "hunter2hunter2"});
    let (status, body) = http.req(Method::POST, "/api/register", None, Some(body)).await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

async fn room(http: &Http, token: &str, name: &str, public: bool) -> String {
    let body = json!({"name": name, "public": public});
    let (status, body) = http.req(Method::POST, "/api/rooms", Some(token), Some(body)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("room id").to_owned()
}

/// Try `op` on a fresh channel of `conn`; the reply code it fails with.
async fn refused<F, Fut, T>(conn: &Connection, what: &str, op: F) -> u16
where
    F: FnOnce(lapin::Channel) -> Fut,
    Fut: std::future::Future<Output = lapin::Result<T>>,
{
    let ch = conn.create_channel().await.expect("channel");
    match op(ch).await {
        Ok(_) => panic!("the broker allowed {what}"),
        Err(e) => code(&e),
    }
}

#[tokio::test]
async fn guest_and_bots_cannot_read_the_chat_or_speak_for_its_users() {
    let w = Warren::start(&[]);
    let http = Http { base: w.chat_base() };
    // the chat's password is kept in the data directory, for its owner only
    let kept = w.data_dir.join("chat-service-password");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&kept).expect("kept").permissions());
    assert_eq!(mode & 0o777, 0o600);
    let alice = sign_up(&http, "alice").await;
    let private = room(&http, &alice, "plans", false).await;
    let public = room(&http, &alice, "lobby", true).await;
    let (status, _) = http.post_message(&alice, &private, "the secret plan").await;
    assert_eq!(status, 201);

    // guest, the default user: nothing of the chat in `/`, and no way into `chat`
    let guest = Connection::connect(&w.url(), ConnectionProperties::default()).await.expect("guest logs in");
    for queue in [format!("chat.room.{private}"), "chat.directory".to_owned()] {
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        let code = refused(&guest, "guest's passive declare", |ch| async move {
            ch.queue_declare(queue.as_str().into(), passive, FieldTable::default()).await
        })
        .await;
        assert_eq!(code, 404, "the chat's streams are not in guest's vhost");
    }
    let into_chat = format!("amqp://guest:guest@{}/chat", w.amqp);
    let err =
        Connection::connect(&into_chat, ConnectionProperties::default()).await.expect_err("guest may not open chat");
    assert_eq!(code(&err), 530);

    // a bot user, as the README sets one up: it may publish to `chat` and nothing else
    ctl_ok(&w.data_dir, &["add_user", "weatherbot", "s3cret"]);
    ctl_ok(&w.data_dir, &["set_permissions", "-p", "chat", "weatherbot", "^$", "^chat$", "^$"]);
    let bot_url = format!("amqp://weatherbot:s3cret@{}/chat", w.amqp);
    let bot = Connection::connect(&bot_url, ConnectionProperties::default()).await.expect("the bot logs in");
    let room_queue = format!("chat.room.{private}");
    let opts = BasicConsumeOptions { no_ack: true, ..Default::default() };
    let code = refused(&bot, "the bot's consume", |ch| async move {
        ch.basic_qos(10, BasicQosOptions::default()).await?;
        let mut args = FieldTable::default();
        args.insert("x-stream-offset".into(), AMQPValue::LongString(LongString::from("first")));
        ch.basic_consume(room_queue.as_str().into(), "".into(), opts, args).await
    })
    .await;
    assert_eq!(code, 403, "the bot may not read a room's stream");
    let code = refused(&bot, "the bot's get", |ch| async move {
        ch.basic_get("chat.directory".into(), BasicGetOptions::default()).await
    })
    .await;
    assert_eq!(code, 403, "nor the directory");
    let code = refused(&bot, "the bot's publish to the directory", |ch| async move {
        // (with confirms, so that the refusal comes before the publish counts as done)
        ch.confirm_select(Default::default()).await?;
        ch.basic_publish("".into(), "chat.directory".into(), Default::default(), b"{}", BasicProperties::default())
            .await?
            .await
    })
    .await;
    assert_eq!(code, 403, "nor write to the directory");

    let ch = bot.create_channel().await.expect("channel");
    ch.confirm_select(Default::default()).await.expect("confirms");
    let mut headers = FieldTable::default();
    headers.insert("x-chat-author".into(), AMQPValue::LongString(LongString::from("alice")));
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_user_id("weatherbot".into())
        .with_headers(headers);
    let key = format!("room.{public}");
    let body = json!({"text": "sunny, says alice"}).to_string();
    let confirm =
        ch.basic_publish("chat".into(), key.as_str().into(), Default::default(), body.as_bytes(), props).await;
    assert!(confirm.expect("publish").await.expect("confirm").is_ack());
    let mut shown: Option<Value> = None;
    for _ in 0..100 {
        let (status, page) = http.req(Method::GET, &format!("/api/rooms/{public}/messages"), Some(&alice), None).await;
        assert_eq!(status, 200);
        shown = page["messages"].as_array().and_then(|m| m.iter().find(|m| m["text"] == "sunny, says alice").cloned());
        if shown.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let shown = shown.expect("the bot's message is shown");
    assert_eq!(shown["author"], "weatherbot");
    assert_eq!(shown["bot"], true);
}
