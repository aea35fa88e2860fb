//! The fallback transport where WebSocket is blocked: Server-Sent Events on `/api/events` for
//! what the WebSocket pushes, `POST /api/events/<session>` for the frames a WebSocket client
//! sends. Same authentication, same events, same catch-up after a reconnect; a WebSocket user
//! and an event-stream user chat with each other.

mod common;

use std::time::Duration;

use common::{Chat, chat, is};
use hyper::{Body, Client, Request};
use serde_json::{Value, json};

/// An open event stream, read as `data:` events.
struct Events {
    body: Body,
    buf: String,
    /// Events already parsed, not yet taken.
    ready: std::collections::VecDeque<Value>,
}

impl Events {
    async fn open(c: &Chat, token: &str) -> Events {
        let req = Request::get(format!("{}/api/events?token={token}", c.base)).body(Body::empty()).unwrap();
        let resp = Client::new().request(req).await.expect("GET /api/events");
        assert_eq!(resp.status(), 200);
        let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert_eq!(ct, "text/event-stream");
        Events { body: resp.into_body(), buf: String::new(), ready: Default::default() }
    }

    /// The next event, within 10 s; `None` when the server ended the stream.
    async fn next_or_end(&mut self) -> Option<Value> {
        use hyper::body::HttpBody;
        loop {
            if let Some(v) = self.ready.pop_front() {
                return Some(v);
            }
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                if !data.is_empty() {
                    self.ready.push_back(serde_json::from_str(&data.join("\n")).expect("JSON event"));
                }
            }
            if !self.ready.is_empty() {
                continue;
            }
            let chunk =
                tokio::time::timeout(Duration::from_secs(10), self.body.data()).await.expect("an event within 10 s");
            match chunk {
                Some(Ok(bytes)) => self.buf.push_str(std::str::from_utf8(&bytes).expect("UTF-8 events")),
                Some(Err(e)) => panic!("event stream failed: {e}"),
                None => return None,
            }
        }
    }

    async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.next_or_end().await.expect("the event stream is open");
            if pred(&v) {
                return v;
            }
        }
    }
}

fn message_text(text: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == "message" && v["message"]["text"] == text
}

async fn post(c: &Chat, token: &str, session: &str, frames: Value) -> common::Resp {
    c.req("POST", &format!("/api/events/{session}"), Some(token), Some(frames)).await
}

#[tokio::test]
async fn events_frames_and_catch_up_over_the_fallback() {
    let c = chat().await;
    let (alice, a) = c.user("alice").await;
    let (bob, b) = c.user("bob").await;
    let id = c.shared_room(&a, &b).await;

    // the same authentication as the WebSocket: a token, refused with 401 JSON without one
    for path in ["/api/events", "/api/events?token=nope"] {
        let r = c.req("GET", path, None, None).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.body["error"], "unauthorized", "{path}");
    }

    let mut ea = Events::open(&c, &a).await;
    let session = ea.until(is("session")).await["id"].as_str().expect("session id").to_owned();
    let hello = ea.until(is("hello")).await;
    assert_eq!(hello["user"], alice.as_str());
    assert!(hello["rooms"].as_array().unwrap().iter().any(|r| r["id"] == id.as_str()));
    assert_eq!(post(&c, &a, &session, json!({"type": "subscribe", "room": id})).await.status, 202);
    ea.until(is("subscribed")).await;

    // bob on a WebSocket, alice on the fallback: each sees what the other does
    let mut wb = c.ws(&b).await;
    wb.until(is("hello")).await;
    wb.send(json!({"type": "subscribe", "room": id})).await;
    wb.until(is("subscribed")).await;
    let r = post(
        &c,
        &a,
        &session,
        json!([{"type": "typing", "room": id}, {"type": "send", "room": id, "text": "hi from the fallback", "client_id": "c1"}]),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(wb.until(is("typing")).await["user"], alice.as_str());
    let m = wb.until(message_text("hi from the fallback")).await;
    assert_eq!(m["message"]["author"], alice.as_str());
    assert_eq!(ea.until(is("sent")).await["client_id"], "c1");
    wb.send(json!({"type": "send", "room": id, "text": "hi from the socket", "client_id": "b1"})).await;
    let m = ea.until(message_text("hi from the socket")).await;
    assert_eq!(m["message"]["author"], bob.as_str());
    let seen = m["message"]["offset"].as_u64().expect("offset");
    let mid = m["message"]["id"].as_str().unwrap().to_owned();
    post(&c, &a, &session, json!({"type": "delivered", "room": id, "id": mid})).await;
    assert_eq!(wb.until(is("receipt")).await["user"], alice.as_str());
    post(&c, &a, &session, json!({"type": "read", "room": id, "offset": seen})).await;
    wb.until(|v| v["type"] == "read" && v["user"] == alice.as_str()).await;
    // an action's failure comes back as an error event on the stream, as over the WebSocket
    post(&c, &a, &session, json!({"type": "send", "room": "no-such-room", "text": "x", "client_id": "c2"})).await;
    let e = ea.until(is("error")).await;
    assert_eq!(e["client_id"], "c2");

    // bad frames: a JSON error and the stream stays up
    let r = post(&c, &a, &session, json!({"type": "nope"})).await;
    assert_eq!((r.status, r.body["error"].as_str()), (422, Some("unprocessable")));
    let r = c.raw("POST", &format!("/api/events/{session}"), Some(&a), Some("{".into())).await;
    assert_eq!(r.status, 422);
    let r = post(&c, &a, &session, Value::Array(vec![json!({"type": "ping"}); 65])).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = c.req("POST", &format!("/api/events/{session}"), None, Some(json!({"type": "ping"}))).await;
    assert_eq!(r.status, 401);
    // another user's session is as unknown as a closed one
    for (token, sid) in [(&b, session.as_str()), (&a, "no-such-session")] {
        let r = post(&c, token, sid, json!({"type": "ping"})).await;
        assert_eq!((r.status, r.body["error"].as_str()), (404, Some("not_found")));
    }
    assert_eq!(post(&c, &a, &session, json!({"type": "ping"})).await.status, 202);
    ea.until(is("pong")).await;

    // catch-up: alice's stream drops, its session ends; bob writes meanwhile; a new stream
    // subscribed since her last offset gets what she missed, then live events
    drop(ea);
    let closed = async {
        while post(&c, &a, &session, json!({"type": "ping"})).await.status != 404 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), closed).await.expect("the session ends with its stream");
    for text in ["missed one", "missed two"] {
        wb.send(json!({"type": "send", "room": id, "text": text, "client_id": text})).await;
        wb.until(|v| v["type"] == "sent" && v["client_id"] == text).await;
    }
    let mut ea = Events::open(&c, &a).await;
    let session2 = ea.until(is("session")).await["id"].as_str().unwrap().to_owned();
    assert_ne!(session, session2);
    ea.until(is("hello")).await;
    post(&c, &a, &session2, json!({"type": "subscribe", "room": id, "since": seen})).await;
    let one = ea.until(is("message")).await;
    let two = ea.until(is("message")).await;
    assert_eq!((&one["message"]["text"], &one["catchup"]), (&json!("missed one"), &json!(true)), "{one}");
    assert_eq!((&two["message"]["text"], &two["catchup"]), (&json!("missed two"), &json!(true)), "{two}");
    ea.until(is("subscribed")).await;
    wb.send(json!({"type": "send", "room": id, "text": "live again", "client_id": "b3"})).await;
    let live = ea.until(message_text("live again")).await;
    assert_eq!(live["catchup"], Value::Null);

    // the stream ends with its token: logout sends an unauthorized error, then the end
    assert_eq!(c.req("POST", "/api/logout", Some(&a), None).await.status, 204);
    assert_eq!(ea.until(is("error")).await["error"], "unauthorized");
    assert_eq!(ea.next_or_end().await, None);
}
