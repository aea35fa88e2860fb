//! A chat front end (`--amqp-url`) outlives its broker: the broker process is killed with
//! SIGKILL and started again on the same port and data directory; the front end's sessions
//! close, REST answers 503 meanwhile, then the front end reconnects by itself. Sign-ins carry
//! over and nothing confirmed before the crash is lost.

mod common;

use std::time::{Duration, Instant};

use common::{ChatFrontEnd, Http, Warren};
use futures_util::{SinkExt, StreamExt};
use hyper::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_event(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame within 10 s") {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).expect("json event")),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn subscribe(base: &str, token: &str, room: &str) -> (Ws, Vec<String>) {
    let url = format!("{}/ws?token={token}", base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws connect");
    ws.send(Message::Text(json!({"type": "subscribe", "room": room}).to_string())).await.expect("subscribe");
    let mut caught_up = Vec::new();
    loop {
        let event = next_event(&mut ws).await.expect("session open until subscribed");
        match event["type"].as_str() {
            Some("message") => caught_up.push(event["message"]["text"].as_str().unwrap_or_default().to_owned()),
            Some("subscribed") => return (ws, caught_up),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_reconnects_after_its_broker_is_killed_and_restarted() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut broker = Warren::start_on(data.path(), &["--no-chat"]);
    let port = broker.amqp.port();
    let front = ChatFrontEnd::start(&broker.url());
    let http = Http { base: front.base.clone() };

    let (status, body) = http
        .req(Method::POST, "/api/register", None, Some(json!({"username": "ada", "password": "hunter2hunter2"})))
        .await;
    assert_eq!(status, 201, "register: {body}");
    let token = body["token"].as_str().expect("token").to_owned();
    let (status, room) =
        http.req(Method::POST, "/api/rooms", Some(&token), Some(json!({"name": "ops", "public": true}))).await;
    assert_eq!(status, 201, "create room: {room}");
    let room = room["id"].as_str().expect("room id").to_owned();
    assert_eq!(http.post_message(&token, &room, "before the crash").await.0, 201);
    let (mut ws, _) = subscribe(&front.base, &token, &room).await;

    broker.child.kill().expect("SIGKILL the broker");
    broker.child.wait().expect("reap the broker");

    // The live session ends, so that the browser reconnects to the state that replaces it.
    let closed_by = Instant::now() + Duration::from_secs(10);
    while next_event(&mut ws).await.is_some() {
        assert!(Instant::now() < closed_by, "the WebSocket stayed open after the broker died");
    }
    let (status, body) = http.post_message(&token, &room, "while the broker is down").await;
    assert_eq!(status, 503, "posting without a broker: {body}");
    assert_eq!(body["error"], "broker_unavailable", "{body}");

    let _broker = Warren::start_on(data.path(), &["--no-chat", "--amqp-bind", &format!("127.0.0.1:{port}")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = http.post_message(&token, &room, "after the restart").await;
        if status == 201 {
            break;
        }
        assert_eq!(status, 503, "while reconnecting: {body}");
        assert!(Instant::now() < deadline, "the chat did not reconnect within 30 s: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The token issued before the crash still works, and the room's history is whole.
    let (status, me) = http.req(Method::GET, "/api/me", Some(&token), None).await;
    assert_eq!(status, 200, "{me}");
    let (_ws, caught_up) = subscribe(&front.base, &token, &room).await;
    assert_eq!(caught_up, ["before the crash", "after the restart"]);
    let (status, page) = http.req(Method::GET, &format!("/api/rooms/{room}/messages"), Some(&token), None).await;
    assert_eq!(status, 200, "{page}");
    let texts: Vec<&str> =
        page["messages"].as_array().expect("messages").iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(texts, ["after the restart", "before the crash"], "newest first");
}
