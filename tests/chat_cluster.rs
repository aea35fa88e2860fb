//! Chat front ends on a three-node RabbitMQ cluster (scripts/rabbitmq-cluster.sh), as one chat:
//! two front ends on two nodes share users, rooms, 1:1 chats, presence, typing and tokens;
//! a front end whose node is stopped moves to another node with every "sent" message kept
//! and none shown twice, and the node rejoins; a front end killed with SIGKILL leaves its
//! clients to carry on through the other one, catching up from their offsets.
//!
//! Needs the cluster: `scripts/rabbitmq-cluster.sh up`, then
//! `WARREN_CLUSTER_URLS=$(scripts/rabbitmq-cluster.sh urls) cargo test --test chat_cluster -- --ignored`
//! (scripts/test.sh does this). The tests take turns (one stops a node of the shared cluster).

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ChatFrontEnd, Http};
use futures_util::{SinkExt, StreamExt};
use hyper::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One test at a time on the shared cluster.
static CLUSTER: Mutex<()> = Mutex::const_new(());

fn urls() -> Vec<String> {
    let list = std::env::var("WARREN_CLUSTER_URLS")
        .expect("WARREN_CLUSTER_URLS: the cluster's address list (scripts/rabbitmq-cluster.sh urls)");
    let urls: Vec<String> = list.split(',').map(str::to_owned).collect();
    assert_eq!(urls.len(), 3, "three nodes: {list}");
    urls
}

/// The address list starting at node `first` (1-3): a front end connects to that node.
fn list_from(first: usize) -> String {
    let urls = urls();
    (0..3).map(|k| urls[(first - 1 + k) % 3].clone()).collect::<Vec<_>>().join(",")
}

fn port_of(node: usize) -> String {
    let url = &urls()[node - 1];
    url.rsplit_once(':').and_then(|(_, rest)| rest.split('/').next()).expect("port in URL").to_owned()
}

fn cluster(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/rabbitmq-cluster.sh");
    let status = Command::new(script).args(args).status().expect("run scripts/rabbitmq-cluster.sh");
    assert!(status.success(), "rabbitmq-cluster.sh {args:?}: {status}");
}

const CONNECTED: &str = "chat connected to the broker node=";

/// The node a front end connected to at start (its AMQP port).
fn node_port(front: &ChatFrontEnd) -> String {
    let line = front.startup_log.iter().rev().find_map(|l| l.split(CONNECTED).nth(1)).expect("connected line");
    line.rsplit_once(':').and_then(|(_, rest)| rest.split('/').next()).expect("port").to_owned()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}{}{}", std::process::id() % 10000, nanos % 100_000)
}

async fn register(http: &Http, user: &str) -> String {
    let (status, body) = http
        .req(Method::POST, "/api/register", None, Some(json!({"username": user, "password": "hunter2hunter2"})))
        .await;
    assert_eq!(status, 201, "register {user}: {body}");
    body["token"].as_str().expect("token").to_owned()
}

async fn ws_connect(base: &str, token: &str) -> Ws {
    let url = format!("{}/ws?token={token}", base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws connect");
    loop {
        let e = next_event(&mut ws, Duration::from_secs(10)).await.expect("hello");
        if e["type"] == "hello" {
            return ws;
        }
    }
}

/// The next JSON event, None when the socket closed or nothing came within `within`.
async fn next_event(ws: &mut Ws, within: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(within, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) | Err(_) => return None,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Whether the server closes `ws` within `within` (whatever it sends before).
async fn closes_within(ws: &mut Ws, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => return false,
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Wait for an event matching `want`, skipping others.
async fn expect_event(ws: &mut Ws, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = next_event(ws, left).await.unwrap_or_else(|| panic!("no {what} within 15 s"));
        if want(&e) {
            return e;
        }
    }
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::Text(frame.to_string())).await.expect("ws send");
}

/// Subscribe to `room` from `since`; the catch-up's messages, then the socket is live.
async fn subscribe(ws: &mut Ws, room: &str, since: Option<u64>) -> Vec<Value> {
    send(ws, json!({"type": "subscribe", "room": room, "since": since})).await;
    let mut caught_up = Vec::new();
    loop {
        let e = next_event(ws, Duration::from_secs(15)).await.expect("subscribed");
        match e["type"].as_str() {
            Some("message") if e["room"] == room => caught_up.push(e["message"].clone()),
            Some("subscribed") if e["room"] == room => return caught_up,
            _ => {}
        }
    }
}

/// Join `room` on a front end that may not have folded its creation yet (front ends fold the
/// directory a few milliseconds apart).
async fn join(http: &Http, token: &str, room: &str, body: Option<Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, joined) =
            http.req(Method::POST, &format!("/api/rooms/{room}/join"), Some(token), body.clone()).await;
        if status == 200 {
            return joined;
        }
        assert!(status == 404 && Instant::now() < deadline, "join {room}: {status} {joined}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until a front end knows `room` (made on the other one).
async fn wait_room(http: &Http, token: &str, room: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while http.req(Method::GET, &format!("/api/rooms/{room}"), Some(token), None).await.0 != 200 {
        assert!(Instant::now() < deadline, "room {room} unknown after 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn history(http: &Http, token: &str, room: &str) -> Vec<Value> {
    let (status, page) =
        http.req(Method::GET, &format!("/api/rooms/{room}/messages?limit=1000"), Some(token), None).await;
    assert_eq!(status, 200, "{page}");
    page["messages"].as_array().expect("messages").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the three-node RabbitMQ cluster: scripts/rabbitmq-cluster.sh up (scripts/test.sh runs it)"]
async fn two_front_ends_on_two_nodes_are_one_chat() {
    let _turn = CLUSTER.lock().await;
    let a = ChatFrontEnd::start(&list_from(1));
    let b = ChatFrontEnd::start(&list_from(2));
    assert_eq!(node_port(&a), port_of(1));
    assert_eq!(node_port(&b), port_of(2));
    let (ha, hb) = (Http { base: a.base.clone() }, Http { base: b.base.clone() });
    let (alice, bob) = (unique("alice"), unique("bob"));
    let ta = register(&ha, &alice).await;
    let tb = register(&hb, &bob).await;

    // a token issued by one front end works on the other, and a logout on one holds on both
    let (status, me) = hb.req(Method::GET, "/api/me", Some(&ta), None).await;
    assert_eq!((status, me["username"].as_str()), (200, Some(alice.as_str())), "{me}");
    let (status, login) =
        hb.req(Method::POST, "/api/login", None, Some(json!({"username": alice, "password": "hunter2hunter2"}))).await;
    assert_eq!(status, 200, "{login}");
    let second = login["token"].as_str().expect("token").to_owned();
    assert_eq!(ha.req(Method::GET, "/api/me", Some(&second), None).await.0, 200);
    let mut ws_second = ws_connect(&a.base, &second).await;
    assert_eq!(hb.req(Method::POST, "/api/logout", Some(&second), None).await.0, 204);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ha.req(Method::GET, "/api/me", Some(&second), None).await.0 != 401 {
        assert!(Instant::now() < deadline, "a logout on B still not honoured on A after 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ... and ends the session it had on A
    assert!(closes_within(&mut ws_second, Duration::from_secs(5)).await, "A kept a logged-out session open");
    assert_eq!(ha.req(Method::GET, "/api/me", Some(&ta), None).await.0, 200, "the other token lives on");

    // a public room made on A, joined on B
    let (status, room) =
        ha.req(Method::POST, "/api/rooms", Some(&ta), Some(json!({"name": "ops", "public": true}))).await;
    assert_eq!(status, 201, "{room}");
    let public = room["id"].as_str().expect("id").to_owned();
    join(&hb, &tb, &public, None).await;
    // a private room, joined by invite; a 1:1 chat
    let (status, room) =
        ha.req(Method::POST, "/api/rooms", Some(&ta), Some(json!({"name": "secret", "public": false}))).await;
    assert_eq!(status, 201, "{room}");
    let private = room["id"].as_str().expect("id").to_owned();
    let invite = room["invite"].as_str().expect("invite").to_owned();
    join(&hb, &tb, &private, Some(json!({"invite": invite}))).await;
    let (status, dm) = hb.req(Method::POST, &format!("/api/dm/{alice}"), Some(&tb), None).await;
    assert!(status == 200 || status == 201, "{status} {dm}");
    let direct = dm["id"].as_str().expect("id").to_owned();
    wait_room(&ha, &ta, &direct).await;

    let mut wa = ws_connect(&a.base, &ta).await;
    for room in [&public, &private, &direct] {
        subscribe(&mut wa, room, None).await;
    }
    let mut wb = ws_connect(&b.base, &tb).await;
    // bob's session on B: alice's front end hears he is online
    expect_event(&mut wa, "bob's presence", |e| e["type"] == "presence" && e["user"] == bob.as_str()).await;
    for room in [&public, &private, &direct] {
        subscribe(&mut wb, room, None).await;
        send(&mut wb, json!({"type": "send", "room": room, "text": format!("hi in {room}"), "client_id": room})).await;
        expect_event(&mut wb, "sent", |e| e["type"] == "sent" && e["client_id"] == room.as_str()).await;
        let e = expect_event(&mut wa, "bob's message", |e| e["type"] == "message" && e["room"] == room.as_str()).await;
        assert_eq!(e["message"]["author"], bob.as_str(), "{e}");
        assert_eq!(e["message"]["text"], format!("hi in {room}"), "{e}");
    }
    send(&mut wb, json!({"type": "typing", "room": public})).await;
    expect_event(&mut wa, "bob typing", |e| e["type"] == "typing" && e["user"] == bob.as_str()).await;
    // and the other way round
    send(&mut wa, json!({"type": "send", "room": direct, "text": "hello bob", "client_id": "x1"})).await;
    // (bob's own "hi in direct" may still be queued on his socket: wait for alice's)
    let e = expect_event(&mut wb, "alice's message", |e| {
        e["type"] == "message" && e["room"] == direct.as_str() && e["message"]["author"] == alice.as_str()
    })
    .await;
    assert_eq!(e["message"]["text"], "hello bob");
    send(&mut wa, json!({"type": "typing", "room": private})).await;
    expect_event(&mut wb, "alice typing", |e| e["type"] == "typing" && e["user"] == alice.as_str()).await;
    drop(wb);
    expect_event(&mut wa, "bob offline", |e| {
        e["type"] == "presence" && e["user"] == bob.as_str() && e["status"] == "offline"
    })
    .await;
}

/// A client of the chat as the page is: sends with client ids, and after its socket closes
/// connects again (to the next base URL of `bases`, a load balancer's choice), subscribes from
/// its last offset and sends again what never came back "sent".
struct Client {
    bases: Vec<String>,
    token: String,
    room: String,
    ws: Option<Ws>,
    /// every message event, by id, with how often it came
    seen: HashMap<String, usize>,
    texts: Vec<String>,
    last_offset: Option<u64>,
    reconnects: usize,
}

impl Client {
    fn new(bases: &[&str], token: &str, room: &str) -> Client {
        Client {
            bases: bases.iter().map(|b| b.to_string()).collect(),
            token: token.to_owned(),
            room: room.to_owned(),
            ws: None,
            seen: HashMap::new(),
            texts: Vec::new(),
            last_offset: None,
            reconnects: 0,
        }
    }

    fn note(&mut self, e: &Value) {
        if e["type"] == "message" && e["room"] == self.room.as_str() {
            let id = e["message"]["id"].as_str().unwrap_or_default().to_owned();
            *self.seen.entry(id).or_default() += 1;
            self.texts.push(e["message"]["text"].as_str().unwrap_or_default().to_owned());
            self.last_offset = e["message"]["offset"].as_u64().max(self.last_offset);
        }
    }

    /// Connected and subscribed, trying the bases in turn for up to 60 s.
    async fn ensure(&mut self) -> &mut Ws {
        if self.ws.is_none() {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut k = self.reconnects;
            loop {
                let base = self.bases[k % self.bases.len()].clone();
                let url = format!("{}/ws?token={}", base.replace("http://", "ws://"), self.token);
                if let Ok(Ok((mut ws, _))) =
                    tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url)).await
                {
                    let frame = json!({"type": "subscribe", "room": self.room, "since": self.last_offset});
                    let mut ok = ws.send(Message::Text(frame.to_string())).await.is_ok();
                    while ok {
                        match next_event(&mut ws, Duration::from_secs(15)).await {
                            Some(e) if e["type"] == "subscribed" && e["room"] == self.room.as_str() => break,
                            Some(e) => self.note(&e),
                            None => ok = false,
                        }
                    }
                    if ok {
                        self.ws = Some(ws);
                        break;
                    }
                }
                assert!(Instant::now() < deadline, "no front end took the client back within 60 s");
                k += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            self.reconnects = k;
        }
        self.ws.as_mut().expect("connected")
    }

    /// Send `text` as `client_id` until it comes back "sent"; its message id.
    async fn send_until_sent(&mut self, text: &str, client_id: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            assert!(Instant::now() < deadline, "{client_id} not sent within 90 s");
            let frame = json!({"type": "send", "room": self.room, "text": text, "client_id": client_id});
            let ws = self.ensure().await;
            if ws.send(Message::Text(frame.to_string())).await.is_err() {
                self.lost();
                continue;
            }
            while let Some(ws) = self.ws.as_mut() {
                match next_event(ws, Duration::from_secs(15)).await {
                    Some(e) if e["type"] == "sent" && e["client_id"] == client_id => {
                        return e["id"].as_str().expect("id").to_owned();
                    }
                    Some(e) if e["type"] == "error" && e["client_id"] == client_id => {
                        // e.g. broker_unavailable while the front end moves: try again
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                    Some(e) => self.note(&e),
                    None => {
                        self.lost();
                        break;
                    }
                }
            }
        }
    }

    /// Read what is queued for up to `within`.
    async fn drain(&mut self, within: Duration) {
        while let Some(ws) = self.ws.as_mut() {
            match next_event(ws, within).await {
                Some(e) => self.note(&e),
                None => break,
            }
        }
    }

    fn lost(&mut self) {
        self.ws = None;
        self.reconnects += 1;
    }

    fn assert_no_duplicates(&self) {
        let twice: Vec<_> = self.seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "messages shown more than once: {twice:?}");
        let distinct: HashSet<_> = self.texts.iter().collect();
        assert_eq!(distinct.len(), self.texts.len(), "a text shown twice: {:?}", self.texts);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the three-node RabbitMQ cluster: scripts/rabbitmq-cluster.sh up (scripts/test.sh runs it)"]
async fn a_front_end_leaves_a_stopped_node_and_loses_nothing_sent() {
    let _turn = CLUSTER.lock().await;
    let a = ChatFrontEnd::start(&list_from(1));
    let b = ChatFrontEnd::start(&list_from(2));
    assert_eq!(node_port(&a), port_of(1));
    let (ha, hb) = (Http { base: a.base.clone() }, Http { base: b.base.clone() });
    let (carol, dave) = (unique("carol"), unique("dave"));
    let tc = register(&ha, &carol).await;
    let td = register(&hb, &dave).await;
    let (status, room) =
        ha.req(Method::POST, "/api/rooms", Some(&tc), Some(json!({"name": "flow", "public": true}))).await;
    assert_eq!(status, 201, "{room}");
    let room = room["id"].as_str().expect("id").to_owned();
    join(&hb, &td, &room, None).await;

    let mut writer = Client::new(&[&a.base], &tc, &room);
    let mut reader = Client::new(&[&b.base], &td, &room);
    reader.ensure().await;
    let mut sent = Vec::new();
    let mut stopped_at = None;
    let mut failover = None;
    for i in 0..60 {
        if i == 20 {
            // stop node 1 (A's) in the background while messages flow
            stopped_at = Some(Instant::now());
            std::thread::spawn(|| cluster(&["stop", "1"]));
        }
        let id = writer.send_until_sent(&format!("m{i}"), &format!("c{i}")).await;
        if i > 20 && failover.is_none() && writer.reconnects > 0 {
            failover = stopped_at.map(|t| t.elapsed());
        }
        sent.push(id);
        reader.drain(Duration::from_millis(20)).await;
    }
    let moved_to = a.next_log(CONNECTED, Duration::from_secs(1));
    eprintln!(
        "node 1 stopped: A's client reconnected {} time(s), first message sent after the move {failover:?} after the stop; A now on {moved_to:?}",
        writer.reconnects
    );
    assert!(writer.reconnects > 0, "A's sessions should have been closed when its node stopped");

    // every message confirmed as sent is in the history, on both front ends, once
    for (who, http, token) in [("A", &ha, &tc), ("B", &hb, &td)] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, _) = http.req(Method::GET, "/api/me", Some(token), None).await;
            if status == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "{who} not serving after the node stop");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let messages = history(http, token, &room).await;
        let ids: Vec<&str> = messages.iter().filter_map(|m| m["id"].as_str()).collect();
        let distinct: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len(), "{who}: duplicate ids in history");
        for id in &sent {
            assert!(distinct.contains(id.as_str()), "{who}: sent message {id} missing from history");
        }
        let texts: Vec<&str> = messages.iter().filter_map(|m| m["text"].as_str()).collect();
        assert_eq!(texts.len(), 60, "{who}: {texts:?}");
    }
    // the reader on B saw each message once (across its own reconnects, if any)
    reader.drain(Duration::from_millis(500)).await;
    reader.ensure().await;
    reader.drain(Duration::from_millis(500)).await;
    reader.assert_no_duplicates();
    for id in &sent {
        assert!(reader.seen.contains_key(id), "B's client never got {id}");
    }
    writer.assert_no_duplicates();

    // node 1 comes back and the cluster is whole again: three running nodes, and node 1
    // serves the chat's streams again (RabbitMQ reads a stream only from a replica on the
    // client's node; a restarted node's replicas catch up after it rejoined, and until then a
    // front end on it moves on to the next node)
    let back = Instant::now();
    cluster(&["start", "1"]);
    cluster(&["status"]);
    let rejoined = back.elapsed();
    loop {
        let probe = ChatFrontEnd::start(&list_from(1));
        if node_port(&probe) == port_of(1) {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(90),
            "node 1 does not serve the chat's streams 90 s after its start"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("node 1 rejoined in {rejoined:?}, served the chat's streams again after {:?}", back.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the three-node RabbitMQ cluster: scripts/rabbitmq-cluster.sh up (scripts/test.sh runs it)"]
async fn a_killed_front_ends_clients_carry_on_through_the_other() {
    let _turn = CLUSTER.lock().await;
    let mut a = ChatFrontEnd::start(&list_from(3));
    let b = ChatFrontEnd::start(&list_from(2));
    let (ha, hb) = (Http { base: a.base.clone() }, Http { base: b.base.clone() });
    let (erin, frank) = (unique("erin"), unique("frank"));
    let te = register(&ha, &erin).await;
    let tf = register(&hb, &frank).await;
    let (status, room) =
        hb.req(Method::POST, "/api/rooms", Some(&tf), Some(json!({"name": "lb", "public": true}))).await;
    assert_eq!(status, 201, "{room}");
    let room = room["id"].as_str().expect("id").to_owned();
    join(&ha, &te, &room, None).await;

    // erin's client goes through A first, B when A is gone (a load balancer's two backends)
    let mut client = Client::new(&[&a.base, &b.base], &te, &room);
    client.send_until_sent("before", "e1").await;
    assert_eq!(hb.post_message(&tf, &room, "one").await.0, 201);
    client.drain(Duration::from_millis(300)).await;

    a.child.kill().expect("SIGKILL front end A");
    a.child.wait().expect("reap A");
    let killed = Instant::now();
    // frank goes on talking on B while erin's client is away
    for text in ["two", "three"] {
        assert_eq!(hb.post_message(&tf, &room, text).await.0, 201);
    }
    client.drain(Duration::from_secs(2)).await;
    client.lost();
    client.send_until_sent("after", "e2").await;
    eprintln!("front end A killed: its client was back through B in {:?}", killed.elapsed());
    client.drain(Duration::from_millis(500)).await;
    assert_eq!(client.texts, ["before", "one", "two", "three", "after"]);
    client.assert_no_duplicates();
}
