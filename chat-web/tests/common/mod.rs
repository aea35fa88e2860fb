//! Test harness: a broker (WARREN_CHAT_AMQP_URL, or warren's embedded broker started in this
//! process on 127.0.0.1:0), a chat front end on 127.0.0.1:0, and small HTTP/WebSocket clients.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::{Body, Client, Method, Request};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};
use warren_chat::{ChatConfig, Server};

/// The chat's own service user on the embedded broker (bots and other clients log in as guest).
pub const SERVICE_USER: &str = "chat-service";
const SERVICE_PASS: &str = "chat-service-secret";

/// The broker under test, as the chat's service user: WARREN_CHAT_AMQP_URL, or warren's
/// embedded broker started in this process on 127.0.0.1:0.
pub fn amqp_url() -> String {
    if let Ok(url) = std::env::var("WARREN_CHAT_AMQP_URL") {
        return url;
    }
    format!("amqp://{SERVICE_USER}:{SERVICE_PASS}@{}/%2f", embedded_broker())
}

/// The same broker as another AMQP user (a bot, or anybody on the LAN who can reach port
/// 5672): WARREN_CHAT_BOT_AMQP_URL, or guest on the embedded broker. Against another broker the
/// variable is required: with one login for both, nothing tells the chat's messages from a
/// bot's.
pub fn bot_amqp_url() -> String {
    if std::env::var("WARREN_CHAT_AMQP_URL").is_ok() {
        return std::env::var("WARREN_CHAT_BOT_AMQP_URL")
            .expect("WARREN_CHAT_BOT_AMQP_URL: another user than WARREN_CHAT_AMQP_URL's, on the same broker");
    }
    format!("amqp://guest:guest@{}/%2f", embedded_broker())
}

/// The user name in an amqp:// URL.
pub fn url_user(url: &str) -> String {
    let after = url.split_once("://").map_or(url, |(_, rest)| rest);
    let userinfo = after.split_once('@').map_or("guest", |(u, _)| u);
    userinfo.split(':').next().unwrap_or("guest").to_owned()
}

fn embedded_broker() -> std::net::SocketAddr {
    static EMBEDDED: OnceLock<std::net::SocketAddr> = OnceLock::new();
    *EMBEDDED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let addr = listener.local_addr().expect("addr");
                let mut config = warren_broker::BrokerConfig::default();
                config
                    .users
                    .push(warren_broker::auth::User { name: SERVICE_USER.into(), password: SERVICE_PASS.into() });
                let broker = warren_broker::Broker::new(config);
                let (_keep, shutdown) = watch::channel(false);
                tx.send(addr).expect("send addr");
                warren_broker::serve(listener, broker, shutdown).await;
            });
        });
        rx.recv().expect("embedded broker started")
    })
}

pub struct Chat {
    pub server: Server,
    pub base: String,
    _stop: watch::Sender<bool>,
}

pub async fn chat_with(config: impl FnOnce(&mut ChatConfig)) -> Chat {
    chat_on(&amqp_url(), config).await
}

/// A chat front end on the broker at `url`.
pub async fn chat_on(url: &str, config: impl FnOnce(&mut ChatConfig)) -> Chat {
    let mut c = ChatConfig::new(url);
    config(&mut c);
    let (stop, rx) = watch::channel(false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = warren_chat::start(c, listener, rx)
        .await
        .expect("chat front end starts (does the broker support stream queues?)");
    let base = format!("http://{}", server.addr);
    Chat { server, base, _stop: stop }
}

pub async fn chat() -> Chat {
    chat_with(|_| {}).await
}

/// A unique user name for this run (RabbitMQ keeps the directory between runs).
pub fn name(prefix: &str) -> String {
    let n: u32 = rand::random();
    format!("{prefix}-{n:08x}")
}

pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Value,
}

impl Chat {
    pub async fn req(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        self.raw(method, path, token, body.map(|b| b.to_string())).await
    }

    pub async fn raw(&self, method: &str, path: &str, token: Option<&str>, body: Option<String>) -> Resp {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let has_body = body.is_some();
        if has_body {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(body.map(Body::from).unwrap_or_else(Body::empty)).unwrap();
        let resp = Client::new().request(req).await.expect("http request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = hyper::body::to_bytes(resp.into_body()).await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp { status, headers, body }
    }

    /// Register a fresh user; returns (name, token).
    pub async fn user(&self, prefix: &str) -> (String, String) {
        let n = name(prefix);
        let r =
            self.req("POST", "/api/register", None, Some(json!({"username": n, "password": "hunter2hunter2"}))).await;
        assert_eq!(r.status, 201, "register: {}", r.body);
        (n, r.body["token"].as_str().unwrap().to_owned())
    }

    pub async fn room(&self, token: &str, public: bool) -> Value {
        let r =
            self.req("POST", "/api/rooms", Some(token), Some(json!({"name": name("room"), "public": public}))).await;
        assert_eq!(r.status, 201, "create room: {}", r.body);
        r.body
    }

    /// A public room created by `owner` that `member` joined; returns its id.
    pub async fn shared_room(&self, owner: &str, member: &str) -> String {
        let id = self.room(owner, true).await["id"].as_str().unwrap().to_owned();
        assert_eq!(self.req("POST", &format!("/api/rooms/{id}/join"), Some(member), None).await.status, 200);
        id
    }

    pub async fn ws(&self, token: &str) -> Ws {
        let url = format!("{}/ws?token={token}", self.base.replace("http://", "ws://"));
        let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("ws connect");
        Ws { socket }
    }
}

pub struct Ws {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn send(&mut self, v: Value) {
        self.socket.send(Message::Text(v.to_string())).await.expect("ws send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.socket.send(m).await.expect("ws send");
    }

    /// The next JSON event, within 10 s.
    pub async fn next(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("ws event within 10 s")
                .expect("ws open")
                .expect("ws frame");
            if let Message::Text(t) = m {
                return serde_json::from_str(&t).expect("json event");
            }
        }
    }

    /// Skip events until one matches.
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.next().await;
            if pred(&v) {
                return v;
            }
        }
    }
}

/// A presence event: `user` is now `status`.
pub fn presence<'a>(user: &'a str, status: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v| v["type"] == "presence" && v["user"] == user && v["status"] == status
}

pub fn is(t: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == t
}
