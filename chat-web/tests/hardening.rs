//! Rate limits (sign-up, login, posting over REST and WebSocket) and sessions that end with
//! their token (logout, expiry).

mod common;

use std::time::{Duration, Instant};

use common::{Ws, chat, chat_with, is};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use warren_chat::ratelimit::{Limits, Rate};

/// The `Retry-After` of a 429, in seconds.
fn retry_after(r: &common::Resp) -> u64 {
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.body["error"], "rate_limited", "{}", r.body);
    let v = r.headers.get("retry-after").unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers));
    let secs: u64 = v.to_str().ok().and_then(|s| s.parse().ok()).expect("Retry-After in seconds");
    assert!(secs >= 1, "{secs}");
    secs
}

fn creds(user: &str) -> Value {
    json!({"username": user, "password": "hunter2hunter2"})
}

#[tokio::test]
async fn sign_ups_are_limited_per_address_and_loopback_gets_more() {
    // the defaults: 5 a minute per address, 10 times that from loopback (these tests' address)
    let c = chat().await;
    for _ in 0..8 {
        c.user("many").await;
    }
    // without the loopback allowance, the 4th sign-up of 3 a minute is refused
    let c = chat_with(|cfg| {
        cfg.limits = Limits { signup_per_addr: Rate::per_minute(3), loopback_factor: 1, ..Limits::default() }
    })
    .await;
    for _ in 0..3 {
        c.user("few").await;
    }
    let r = c.req("POST", "/api/register", None, Some(creds(&common::name("one-more")))).await;
    let wait = retry_after(&r);
    assert!((1..=20).contains(&wait), "one sign-up back every 20 s: {wait}");
}

#[tokio::test]
async fn logins_are_limited_per_account_and_address() {
    let c = chat_with(|cfg| {
        cfg.limits = Limits { login_per_account_addr: Rate::per_minute(2), loopback_factor: 1, ..Limits::default() }
    })
    .await;
    let (ann, _) = c.user("ann").await;
    let (bob, _) = c.user("bob").await;
    for _ in 0..2 {
        assert_eq!(c.req("POST", "/api/login", None, Some(creds(&ann))).await.status, 200);
    }
    // the right password, over budget: refused before any hashing
    retry_after(&c.req("POST", "/api/login", None, Some(creds(&ann))).await);
    // another account from the same address still logs in
    assert_eq!(c.req("POST", "/api/login", None, Some(creds(&bob))).await.status, 200);
}

#[tokio::test]
async fn posting_too_fast_is_refused_over_rest_and_websocket() {
    // a burst of 3, then one every 2 s: slow enough that no request of the test comes back
    // into budget by itself, however slow the machine
    let every = Duration::from_secs(2);
    let c = chat_with(|cfg| {
        cfg.limits = Limits { post_per_user: Rate { burst: 3, every }, loopback_factor: 1, ..Limits::default() }
    })
    .await;
    let (_, a) = c.user("fast").await;
    let (_, b) = c.user("calm").await;
    let (_, w) = c.user("socket").await;
    let room = c.shared_room(&a, &b).await;
    assert_eq!(c.req("POST", &format!("/api/rooms/{room}/join"), Some(&w), None).await.status, 200);
    let path = format!("/api/rooms/{room}/messages");
    for i in 0..3 {
        let r = c.req("POST", &path, Some(&a), Some(json!({"text": format!("burst {i}")}))).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = c.req("POST", &path, Some(&a), Some(json!({"text": "one too many"}))).await;
    assert!((1..=2).contains(&retry_after(&r)));
    // edits and deletes come out of the same budget
    let r = c.req("DELETE", &format!("{path}/whatever"), Some(&a), None).await;
    assert_eq!(r.status, 429);
    // another user is not affected
    assert_eq!(c.req("POST", &path, Some(&b), Some(json!({"text": "hi"}))).await.status, 201);

    // over the WebSocket: an error event per refused frame, and the socket stays up
    let mut ws = c.ws(&w).await;
    ws.until(is("hello")).await;
    for i in 0..6 {
        ws.send(json!({"type": "send", "room": room, "text": format!("ws {i}"), "client_id": format!("c{i}")})).await;
    }
    let (mut sent, mut refused) = (0, Vec::new());
    while sent + refused.len() < 6 {
        let v = ws.next().await;
        match v["type"].as_str() {
            Some("sent") => sent += 1,
            Some("error") => {
                assert_eq!(v["status"], 429, "{v}");
                assert_eq!(v["error"], "rate_limited");
                assert_eq!(v["room"], room.as_str());
                refused.push(v["client_id"].as_str().unwrap_or_default().to_owned());
            }
            _ => {}
        }
    }
    assert_eq!(sent, 3, "the burst of 3 goes through");
    assert_eq!(refused, ["c3", "c4", "c5"]);
    ws.send(json!({"type": "ping"})).await;
    ws.until(is("pong")).await;
    tokio::time::sleep(every).await;
    ws.send(json!({"type": "send", "room": room, "text": "later", "client_id": "later"})).await;
    let v = ws.until(|v| v["type"] == "sent" || v["type"] == "error").await;
    assert_eq!(v["type"], "sent", "the budget comes back: {v}");
}

/// Wait for the server to close `ws`: a close frame or the end of the stream. Returns the close
/// code if there was a frame, and whether an `unauthorized` error event came first.
async fn closed_by_server(ws: &mut Ws, within: Duration) -> (Option<CloseCode>, bool) {
    let deadline = Instant::now() + within;
    let mut told = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.socket.next()).await {
            Err(_) => panic!("the WebSocket is still open after {within:?}"),
            Ok(Some(Ok(Message::Close(frame)))) => return (frame.map(|f| f.code), told),
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap_or_default();
                told |= v["type"] == "error" && v["error"] == "unauthorized";
            }
            Ok(Some(Ok(_))) => {}
            Ok(None) | Ok(Some(Err(_))) => return (None, told),
        }
    }
}

#[tokio::test]
async fn logout_closes_that_tokens_websockets() {
    let c = chat().await;
    let (user, t1) = c.user("leaver").await;
    let r = c.req("POST", "/api/login", None, Some(creds(&user))).await;
    let t2 = r.body["token"].as_str().expect("second token").to_owned();
    let mut first = c.ws(&t1).await;
    first.until(is("hello")).await;
    let mut also_first = c.ws(&t1).await;
    also_first.until(is("hello")).await;
    let mut second = c.ws(&t2).await;
    second.until(is("hello")).await;

    assert_eq!(c.req("POST", "/api/logout", Some(&t1), None).await.status, 204);
    for ws in [&mut first, &mut also_first] {
        let (code, told) = closed_by_server(ws, Duration::from_secs(1)).await;
        assert_eq!(code, Some(CloseCode::Policy));
        assert!(told, "an unauthorized error event before the close");
    }
    // the same user's other token keeps its socket
    second.send(json!({"type": "ping"})).await;
    second.until(is("pong")).await;
    assert_eq!(c.req("GET", "/api/me", Some(&t2), None).await.status, 200);
}

#[tokio::test]
async fn token_expiry_closes_its_websockets() {
    let ttl = Duration::from_millis(2500);
    let c = chat_with(|cfg| cfg.token_ttl = ttl).await;
    let issued = Instant::now();
    let (_, token) = c.user("brief").await;
    let mut ws = c.ws(&token).await;
    ws.until(is("hello")).await;
    ws.send(json!({"type": "ping"})).await;
    ws.until(is("pong")).await;
    let (code, told) = closed_by_server(&mut ws, ttl + Duration::from_secs(1)).await;
    let at = issued.elapsed();
    assert_eq!(code, Some(CloseCode::Policy));
    assert!(told);
    assert!(at >= ttl - Duration::from_millis(500), "closed after {at:?}, before the token expired");
}
