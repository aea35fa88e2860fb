//! The management HTTP API on the built binary, driven over HTTP as `rabbitmqadmin` and scripts
//! drive RabbitMQ's: objects declared, listed, published to, read and deleted; a connection
//! closed from the API reaches its lapin client as 320; users, vhosts and permissions with
//! RabbitMQ's tag rules; definitions moved to a fresh broker; RabbitMQ's error shapes.

mod common;

use std::time::Duration;

use common::Warren;
use futures_lite::StreamExt;
use hyper::header::HeaderValue;
use hyper::{Body, Client, HeaderMap, Method, Request};
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ErrorKind, Event};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer: status, headers, JSON body (Null when empty or not JSON).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

/// A client of one broker's management API.
struct Api {
    base: String,
    user: String,
    password: String,
}

impl Api {
    fn new(w: &Warren) -> Self {
        Self { base: format!("http://{}", w.management), user: "guest".into(), password: "guest".into() }
    }

    fn as_user(&self, user: &str, password: &str) -> Self {
        Self { base: self.base.clone(), user: user.into(), password: password.into() }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>, auth: bool) -> Answer {
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.base));
        if auth {
            req = req.header("authorization", basic(&self.user, &self.password));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
        let resp = Client::new().request(req.body(body).expect("request")).await.expect("http request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = hyper::body::to_bytes(resp.into_body()).await.expect("body");
        Answer { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, true).await
    }

    async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(Method::PUT, path, Some(body), true).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body), true).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.send(Method::DELETE, path, None, true).await
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().expect("a list").iter().map(|i| i["name"].as_str().unwrap_or_default().to_owned()).collect()
}

async fn connect(w: &Warren, user: &str, password: &str, vhost: &str, name: &str) -> lapin::Result<Connection> {
    let url = format!("amqp://{user}:{password}@{}/{}", w.amqp, vhost.replace('/', "%2f"));
    Connection::connect(&url, ConnectionProperties::default().with_connection_name(name.into())).await
}

#[tokio::test]
async fn queues_exchanges_and_bindings_are_declared_published_to_read_and_deleted() {
    let w = Warren::start(&["--no-chat"]);
    let api = Api::new(&w);

    assert_eq!(
        api.put("/api/queues/%2F/orders", json!({"durable": true, "arguments": {"x-max-length": 100}})).await.status,
        201
    );
    assert_eq!(
        api.put("/api/queues/%2F/orders", json!({"durable": true, "arguments": {"x-max-length": 100}})).await.status,
        204
    );
    let inequivalent = api.put("/api/queues/%2F/orders", json!({"durable": false})).await;
    assert_eq!(inequivalent.status, 400);
    assert_eq!(
        inequivalent.body,
        json!({"error": "bad_request",
               "reason": "inequivalent arg 'durable' for queue 'orders' in vhost '/': received 'false' but current is 'true'"})
    );
    assert_eq!(api.put("/api/queues/%2F/other", json!({})).await.status, 201);
    assert_eq!(api.put("/api/exchanges/%2F/shop", json!({"type": "topic", "durable": true})).await.status, 201);
    let bound = api.post("/api/bindings/%2F/e/shop/q/orders", json!({"routing_key": "order.#"})).await;
    assert_eq!(bound.status, 201);
    assert_eq!(bound.headers.get("location"), Some(&HeaderValue::from_static("orders/order.%2523")));

    let q = api.get("/api/queues/%2F/orders").await;
    assert_eq!(q.status, 200);
    assert_eq!(q.body["durable"], true);
    assert_eq!(q.body["arguments"], json!({"x-max-length": 100}));
    assert_eq!(q.body["type"], "classic");
    let x = api.get("/api/exchanges/%2F/shop").await.body;
    assert_eq!((x["type"].as_str(), x["durable"].as_bool()), (Some("topic"), Some(true)));
    let listed = api.get("/api/queues?columns=name,vhost").await.body;
    assert_eq!(listed, json!([{"name": "orders", "vhost": "/"}, {"name": "other", "vhost": "/"}]));
    let page = api.get("/api/exchanges/%2F?page=2&page_size=3&columns=name").await.body;
    assert_eq!(page["total_count"], 8);
    assert_eq!(page["page_count"], 3);
    assert_eq!(page["items"], json!([{"name": "amq.headers"}, {"name": "amq.match"}, {"name": "amq.rabbitmq.trace"}]));
    let bindings = api.get("/api/bindings/%2F/e/shop/q/orders").await.body;
    assert_eq!(
        bindings,
        json!([{"source": "shop", "vhost": "/", "destination": "orders", "destination_type": "queue",
                "routing_key": "order.#", "arguments": {}, "properties_key": "order.%23"}])
    );
    assert_eq!(api.get("/api/queues/%2F/orders/bindings").await.body.as_array().map(Vec::len), Some(2));
    assert_eq!(api.get("/api/exchanges/%2F/shop/bindings/source").await.body.as_array().map(Vec::len), Some(1));

    let publish = |key: &str, payload: &str| {
        json!({"routing_key": key, "payload": payload, "payload_encoding": "string",
               "properties": {"delivery_mode": 2, "headers": {"n": 1}, "content_type": "text/plain"}})
    };
    assert_eq!(
        api.post("/api/exchanges/%2F/shop/publish", publish("order.new", "first")).await.body,
        json!({"routed": true})
    );
    assert_eq!(
        api.post("/api/exchanges/%2F/shop/publish", publish("order.new", "second")).await.body,
        json!({"routed": true})
    );
    assert_eq!(
        api.post("/api/exchanges/%2F/shop/publish", publish("nothing", "x")).await.body,
        json!({"routed": false})
    );
    let base64 = json!({"routing_key": "other", "payload": "/w==", "payload_encoding": "base64", "properties": {}});
    assert_eq!(api.post("/api/exchanges/%2F/amq.default/publish", base64).await.body, json!({"routed": true}));
    assert_eq!(api.get("/api/queues/%2F/orders").await.body["messages"], 2);

    let peek = json!({"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 3});
    let got = api.post("/api/queues/%2F/orders/get", peek.clone()).await.body;
    assert_eq!(got.as_array().map(Vec::len), Some(2));
    assert_eq!(got[0]["payload"], "fir");
    assert_eq!(got[0]["payload_bytes"], 5);
    assert_eq!(got[0]["payload_encoding"], "string");
    assert_eq!(got[0]["redelivered"], false);
    assert_eq!(got[0]["exchange"], "shop");
    assert_eq!(got[0]["routing_key"], "order.new");
    assert_eq!(got[0]["message_count"], 1);
    assert_eq!(got[0]["properties"], json!({"delivery_mode": 2, "headers": {"n": 1}, "content_type": "text/plain"}));
    let again = api.post("/api/queues/%2F/orders/get", peek).await.body;
    assert_eq!(again[0]["redelivered"], true, "requeued");
    let binary = api
        .post("/api/queues/%2F/other/get", json!({"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}))
        .await
        .body;
    assert_eq!((binary[0]["payload"].as_str(), binary[0]["payload_encoding"].as_str()), (Some("/w=="), Some("base64")));
    assert_eq!(binary[0]["properties"], json!([]), "no properties: RabbitMQ's empty list");
    assert_eq!(api.get("/api/queues/%2F/other").await.body["messages"], 0, "acked away");
    let take = json!({"count": 1, "ackmode": "ack_requeue_false", "encoding": "base64"});
    let taken = api.post("/api/queues/%2F/orders/get", take).await.body;
    assert_eq!(taken[0]["payload"], "Zmlyc3Q=");
    assert_eq!(api.get("/api/queues/%2F/orders").await.body["messages"], 1);

    let not_empty = api.delete("/api/queues/%2F/orders?if-empty=true").await;
    assert_eq!(not_empty.status, 400);
    assert_eq!(not_empty.body["reason"], "queue 'orders' in vhost '/' not empty");
    assert_eq!(api.delete("/api/queues/%2F/orders/contents").await.status, 204);
    assert_eq!(api.get("/api/queues/%2F/orders").await.body["messages"], 0, "purged");

    assert_eq!(api.delete("/api/exchanges/%2F/shop?if-unused=true").await.status, 400);
    assert_eq!(api.delete("/api/bindings/%2F/e/shop/q/orders/order.%2523").await.status, 204);
    assert_eq!(api.delete("/api/bindings/%2F/e/shop/q/orders/order.%2523").await.status, 404);
    assert_eq!(api.delete("/api/exchanges/%2F/shop?if-unused=true").await.status, 204);
    assert_eq!(api.delete("/api/exchanges/%2F/shop").await.status, 404);
    assert_eq!(api.delete("/api/queues/%2F/orders?if-empty=true").await.status, 204);
    assert_eq!(api.delete("/api/queues/%2F/other").await.status, 204);
    assert_eq!(api.get("/api/queues").await.body, json!([]));

    // exchange-to-exchange bindings and a binding with arguments
    api.put("/api/exchanges/%2F/a", json!({"type": "fanout"})).await;
    api.put("/api/exchanges/%2F/b", json!({"type": "headers"})).await;
    let e2e = api.post("/api/bindings/%2F/e/a/e/b", json!({"routing_key": "", "arguments": {"x-match": "any"}})).await;
    assert_eq!(e2e.status, 201);
    let key = api.get("/api/bindings/%2F/e/a/e/b").await.body[0]["properties_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with('~'), "{key}");
    let location = e2e.headers.get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(location, format!("b/{key}"));
    assert_eq!(
        api.get(&format!("/api/bindings/%2F/e/a/e/{location}")).await.body["arguments"],
        json!({"x-match": "any"})
    );
    assert_eq!(api.get("/api/exchanges/%2F/b/bindings/destination").await.body.as_array().map(Vec::len), Some(1));
    assert_eq!(api.delete(&format!("/api/bindings/%2F/e/a/e/{location}")).await.status, 204);
    assert_eq!(api.get("/api/bindings/%2F/e/a/e/b").await.body, json!([]));
}

#[tokio::test]
async fn connections_channels_and_consumers_are_listed_and_a_closed_one_sees_320() {
    let w = Warren::start(&["--no-chat"]);
    let api = Api::new(&w);
    let conn = connect(&w, "guest", "guest", "/", "holder").await.expect("connect");
    let mut events = Box::pin(conn.events_listener());
    let ch = conn.create_channel().await.unwrap();
    ch.basic_qos(7, BasicQosOptions::default()).await.unwrap();
    ch.queue_declare("work".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    let _consumer = ch
        .basic_consume("work".into(), "ctag".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let confirms = conn.create_channel().await.unwrap();
    confirms.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    for payload in ["a", "b"] {
        let msg = json!({"routing_key": "work", "payload": payload, "payload_encoding": "string", "properties": {}});
        assert_eq!(api.post("/api/exchanges/%2F/amq.default/publish", msg).await.body["routed"], true);
    }
    // delivered to the consumer (which never acks): unacknowledged on its channel and queue
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while api.get("/api/queues/%2F/work").await.body["messages_unacknowledged"] != 2 {
        assert!(std::time::Instant::now() < deadline, "the deliveries were not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let work = api.get("/api/queues/%2F/work").await.body;
    assert_eq!((work["messages"].as_u64(), work["messages_ready"].as_u64()), (Some(2), Some(0)));
    assert_eq!(work["message_bytes_unacknowledged"], 2);
    assert_eq!(work["consumer_details"][0]["consumer_tag"], "ctag");

    let list = api.get("/api/connections").await.body;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let c = &list[0];
    assert_eq!(c["user_provided_name"], "holder");
    assert_eq!((c["user"].as_str(), c["vhost"].as_str()), (Some("guest"), Some("/")));
    assert_eq!(c["protocol"], "AMQP 0-9-1");
    assert_eq!(c["channels"], 2);
    assert_eq!(c["port"], w.amqp.port());
    assert_eq!(c["client_properties"]["connection_name"], "holder");
    // its socket's bytes: at least the channel.open-ok frames out, the channel.opens in
    assert!(c["recv_oct"].as_u64().is_some_and(|n| n > 0), "{c}");
    assert!(c["send_oct"].as_u64().is_some_and(|n| n > 0), "{c}");
    let name = c["name"].as_str().unwrap().to_owned();
    let path = format!("/api/connections/{}", name.replace(' ', "%20").replace('>', "%3E"));
    assert_eq!(api.get(&path).await.body["name"], name.as_str());

    let channels = api.get("/api/channels").await.body;
    assert_eq!(names(&channels), vec![format!("{name} (1)"), format!("{name} (2)")]);
    assert_eq!(channels[0]["consumer_count"], 1);
    assert_eq!(channels[0]["prefetch_count"], 7);
    assert_eq!(channels[0]["messages_unacknowledged"], 2);
    assert_eq!(channels[1]["confirm"], true);
    assert_eq!(api.get(&format!("{path}/channels")).await.body.as_array().map(Vec::len), Some(2));
    let consumers = api.get("/api/consumers/%2F").await.body;
    assert_eq!(consumers[0]["consumer_tag"], "ctag");
    assert_eq!(consumers[0]["queue"], json!({"name": "work", "vhost": "/"}));
    assert_eq!(consumers[0]["channel_details"]["connection_name"], name.as_str());
    let overview = api.get("/api/overview").await.body;
    assert_eq!(
        overview["object_totals"],
        json!({"channels": 2, "connections": 1, "consumers": 1, "exchanges": 7, "queues": 1})
    );
    assert_eq!(overview["queue_totals"], json!({"messages": 2, "messages_ready": 0, "messages_unacknowledged": 2}));
    // message_stats: the queue's counts and the broker's totals (API publishes included)
    let stats = &api.get("/api/queues/%2F/work").await.body["message_stats"];
    assert_eq!((stats["publish"].as_u64(), stats["deliver"].as_u64()), (Some(2), Some(2)), "{stats}");
    assert_eq!(stats["deliver_get"], 2);
    assert!(stats["publish_details"]["rate"].is_number());
    let totals = &overview["message_stats"];
    assert_eq!((totals["publish"].as_u64(), totals["deliver_get"].as_u64()), (Some(2), Some(2)), "{totals}");
    assert_eq!(overview["rates_mode"], "basic");

    assert_eq!(api.delete(&path).await.status, 204);
    let error = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.next().await {
                Some(Event::Error(e)) => return e,
                Some(_) => continue,
                None => panic!("events ended without an error"),
            }
        }
    })
    .await
    .expect("the client is told");
    match error.kind() {
        ErrorKind::ProtocolError(e) => {
            assert_eq!(e.get_id(), 320);
            assert!(e.get_message().as_str().contains("Closed via management plugin"), "{e:?}");
        }
        other => panic!("expected 320, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(api.get("/api/connections").await.body, json!([]));
    assert_eq!(api.delete(&path).await.status, 404);
}

#[tokio::test]
async fn users_vhosts_and_permissions_follow_rabbitmqs_tag_rules() {
    let w = Warren::start(&["--no-chat"]);
    let api = Api::new(&w);
    assert_eq!(api.get("/api/whoami").await.body, json!({"name": "guest", "tags": ["administrator"]}));

    assert_eq!(api.put("/api/vhosts/team", json!({"description": "the team's"})).await.status, 201);
    assert_eq!(api.put("/api/vhosts/team", json!({"description": "ours", "tags": "a,b"})).await.status, 204);
    assert_eq!(api.get("/api/vhosts/team").await.body["metadata"], json!({"description": "ours", "tags": ["a", "b"]}));
    assert_eq!(api.put("/api/vhosts/secret", json!({})).await.status, 201);
    // the creator gets full permissions on a new vhost, as in RabbitMQ
    assert_eq!(
        api.get("/api/permissions/team/guest").await.body,
        json!({"user": "guest", "vhost": "team", "configure": ".*", "write": ".*", "read": ".*"})
    );

    assert_eq!(api.put("/api/users/ann", json!({"password": "pw1", "tags": "management"})).await.status, 201);
    assert_eq!(api.put("/api/users/ann", json!({"password": "pw2", "tags": ["management"]})).await.status, 204);
    assert_eq!(api.put("/api/users/bob", json!({"password": "pw"})).await.body["reason"], "tags_not_present");
    assert_eq!(api.put("/api/users/mon", json!({"password": "pw", "tags": "monitoring"})).await.status, 201);
    assert_eq!(api.put("/api/users/plain", json!({"password": "pw", "tags": ""})).await.status, 201);
    let hash = api.get("/api/users/ann").await.body;
    assert_eq!(hash["hashing_algorithm"], "rabbit_password_hashing_sha256");
    // a user made from another's hash logs in with that password
    let copy = json!({"password_hash": hash["password_hash"], "tags": "management"});
    assert_eq!(api.put("/api/users/ann2", copy).await.status, 201);
    assert_eq!(api.as_user("ann2", "pw2").get("/api/whoami").await.body["name"], "ann2");
    assert_eq!(
        api.put("/api/permissions/team/ann", json!({"configure": "^ann\\.", "write": ".*", "read": ".*"})).await.status,
        201
    );
    assert_eq!(
        api.put("/api/permissions/team/ann", json!({"configure": "^ann\\."})).await.body["reason"],
        "[{key_missing,write},{key_missing,read}]"
    );
    assert_eq!(
        api.put("/api/permissions/team/nobody", json!({"configure": "", "write": "", "read": ""})).await.status,
        400
    );
    assert_eq!(api.get("/api/users/ann/permissions").await.body.as_array().map(Vec::len), Some(1));
    assert_eq!(api.get("/api/vhosts/team/permissions").await.body.as_array().map(Vec::len), Some(2));
    let topic = json!({"exchange": "amq.topic", "write": "^ann\\.", "read": ".*"});
    assert_eq!(api.put("/api/topic-permissions/team/ann", topic).await.status, 201);
    assert_eq!(api.get("/api/topic-permissions/team/ann").await.body[0]["write"], "^ann\\.");
    assert_eq!(api.get("/api/topic-permissions").await.body.as_array().map(Vec::len), Some(1));

    // the password set over HTTP is the AMQP one, and the permissions hold there too
    let amqp = connect(&w, "ann", "pw2", "team", "ann").await.expect("ann logs in over AMQP");
    let ch = amqp.create_channel().await.unwrap();
    ch.queue_declare("ann.q".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    assert!(connect(&w, "ann", "pw2", "/", "ann").await.is_err(), "no permissions on /");

    // management: its own vhosts' objects, its own connections, no users or nodes
    let ann = api.as_user("ann", "pw2");
    api.put("/api/queues/secret/hidden", json!({})).await;
    assert_eq!(ann.get("/api/whoami").await.body, json!({"name": "ann", "tags": ["management"]}));
    assert_eq!(names(&ann.get("/api/queues").await.body), vec!["ann.q"]);
    assert_eq!(names(&ann.get("/api/vhosts").await.body), vec!["team"]);
    let refused = ann.get("/api/queues/secret").await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.body,
        json!({"error": "not_authorised", "reason": "User not authorised to access virtual host"})
    );
    assert_eq!(ann.get("/api/queues/secret/hidden").await.status, 401);
    assert_eq!(ann.get("/api/users").await.body["reason"], "Not administrator user");
    assert_eq!(ann.get("/api/nodes").await.body["reason"], "Not monitor user");
    assert_eq!(ann.get("/api/definitions").await.status, 401);
    assert_eq!(ann.get("/api/connections").await.body.as_array().map(Vec::len), Some(1));
    assert_eq!(api.as_user("plain", "pw").get("/api/overview").await.body["reason"], "Not management user");
    // its permissions apply to what it does through the API
    assert_eq!(ann.put("/api/queues/team/ann.two", json!({})).await.status, 201);
    let denied = ann.put("/api/queues/team/bob.q", json!({})).await;
    assert_eq!(denied.status, 401);
    assert_eq!(denied.body["reason"], "Access refused.");
    let mut denied_get = ann
        .post("/api/queues/team/ann.q/get", json!({"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}))
        .await;
    assert_eq!(denied_get.status, 200, "read is allowed: {}", denied_get.body);
    api.put("/api/permissions/team/ann", json!({"configure": "^ann\\.", "write": ".*", "read": "^$"})).await;
    denied_get = ann
        .post("/api/queues/team/ann.q/get", json!({"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}))
        .await;
    assert_eq!(denied_get.status, 401);
    assert_eq!(
        denied_get.body["reason"],
        "ACCESS_REFUSED - access to queue 'ann.q' in vhost 'team' refused for user 'ann'"
    );

    // monitoring: every vhost in listings, the nodes, but not per vhost without permissions
    let mon = api.as_user("mon", "pw");
    assert_eq!(names(&mon.get("/api/queues").await.body), vec!["hidden", "ann.q", "ann.two"], "by vhost, then name");
    assert_eq!(mon.get("/api/connections").await.body.as_array().map(Vec::len), Some(1));
    assert_eq!(mon.get("/api/nodes").await.status, 200);
    assert_eq!(mon.get("/api/queues/secret").await.status, 401);
    assert_eq!(mon.put("/api/vhosts/x", json!({})).await.status, 401);

    assert_eq!(api.delete("/api/topic-permissions/team/ann").await.status, 204);
    assert_eq!(api.delete("/api/topic-permissions/team/ann").await.status, 404);
    assert_eq!(api.delete("/api/permissions/team/ann").await.status, 204);
    assert_eq!(api.delete("/api/permissions/team/ann").await.status, 404);
    assert_eq!(names(&api.get("/api/users/without-permissions").await.body), vec!["ann", "ann2", "mon", "plain"]);
    assert_eq!(api.post("/api/users/bulk-delete", json!({"users": ["ann2", "plain"]})).await.status, 204);
    assert_eq!(api.delete("/api/users/ann").await.status, 204);
    assert_eq!(api.delete("/api/users/ann").await.status, 404);
    assert_eq!(names(&api.get("/api/users").await.body), vec!["guest", "mon"]);
    assert_eq!(api.delete("/api/vhosts/team").await.status, 204);
    assert_eq!(api.get("/api/vhosts/team").await.status, 404);
    assert_eq!(names(&api.get("/api/vhosts").await.body), vec!["/", "secret"]);
}

#[tokio::test]
async fn definitions_exported_from_one_broker_import_into_a_fresh_one() {
    let a = Warren::start(&["--no-chat"]);
    let api = Api::new(&a);
    api.put("/api/vhosts/shop", json!({"description": "the shop"})).await;
    api.put("/api/users/ann", json!({"password": "pw", "tags": "management"})).await;
    api.put("/api/permissions/shop/ann", json!({"configure": ".*", "write": ".*", "read": ".*"})).await;
    api.put("/api/queues/shop/orders", json!({"durable": true, "arguments": {"x-message-ttl": 60000}})).await;
    api.put("/api/exchanges/shop/in", json!({"type": "topic", "durable": true})).await;
    api.post("/api/bindings/shop/e/in/q/orders", json!({"routing_key": "order.*"})).await;
    let export = api.get("/api/definitions").await;
    assert_eq!(export.status, 200);
    let defs = export.body;
    assert_eq!(defs["rabbit_version"], "3.10.8");
    assert_eq!(defs["product_name"], "warren");
    assert!(names(&defs["users"]).contains(&"ann".to_owned()));
    assert_eq!(defs["queues"][0]["name"], "orders");
    let shop = api.get("/api/definitions/shop").await.body;
    assert_eq!(
        shop["queues"],
        json!([{"name": "orders", "durable": true, "auto_delete": false, "type": "classic",
                                         "arguments": {"x-message-ttl": 60000}}])
    );
    assert_eq!(shop["bindings"][0]["routing_key"], "order.*");
    assert!(shop.get("users").is_none());

    let b = Warren::start(&["--no-chat"]);
    let fresh = Api::new(&b);
    assert_eq!(fresh.post("/api/definitions", defs).await.status, 204);
    assert_eq!(fresh.get("/api/queues/shop/orders").await.body["arguments"], json!({"x-message-ttl": 60000}));
    assert_eq!(fresh.get("/api/bindings/shop/e/in/q/orders").await.body[0]["routing_key"], "order.*");
    assert_eq!(fresh.get("/api/vhosts/shop").await.body["description"], "the shop");
    assert_eq!(fresh.as_user("ann", "pw").get("/api/whoami").await.status, 200, "ann's hash came along");
    // a vhost's file into another vhost
    fresh.put("/api/vhosts/copy", json!({})).await;
    assert_eq!(fresh.post("/api/definitions/copy", shop).await.status, 204);
    assert_eq!(fresh.get("/api/queues/copy/orders").await.status, 200);
    assert_eq!(fresh.get("/api/exchanges/copy/in").await.body["type"], "topic");
    // unreadable or impossible files
    let bad = fresh.send(Method::POST, "/api/definitions", None, true).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["reason"], "failed_to_parse_json");
    let long = json!({"queues": [{"name": "q".repeat(300), "vhost": "/", "durable": true}]});
    assert_eq!(fresh.post("/api/definitions", long).await.status, 400);
    assert_eq!(fresh.post("/api/definitions/nope", json!({})).await.status, 404);
}

#[tokio::test]
async fn errors_and_health_checks_look_like_rabbitmqs() {
    let w = Warren::start(&["--no-chat"]);
    let api = Api::new(&w);

    let anonymous = api.send(Method::GET, "/api/overview", None, false).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.body, Value::Null, "empty body");
    assert_eq!(
        anonymous.headers.get("www-authenticate"),
        Some(&HeaderValue::from_static("Basic realm=\"RabbitMQ Management\""))
    );
    let wrong = api.as_user("guest", "nope").get("/api/overview").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body, json!({"error": "not_authorized", "reason": "Login failed"}));
    let not_found = json!({"error": "Object Not Found", "reason": "Not Found"});
    assert_eq!(api.get("/api/nonexistent").await.body, not_found);
    assert_eq!(api.get("/api/queues/%2F/nope").await.status, 404);
    assert_eq!(api.get("/api/queues/nohost").await.body, not_found);
    assert_eq!(api.get("/not-api").await.status, 404);
    let no_vhost = api.put("/api/queues/nohost/q", json!({})).await;
    assert_eq!(no_vhost.body, json!({"error": "not_found", "reason": "vhost_not_found"}));
    let not_json = api.send(Method::PUT, "/api/queues/%2F/q", Some(json!([1])), true).await;
    assert_eq!(not_json.body, json!({"error": "bad_request", "reason": "not_json"}));
    assert_eq!(
        api.put("/api/exchanges/%2F/x", json!({"type": "bogus"})).await.body["reason"],
        "invalid exchange type 'bogus'"
    );
    assert_eq!(api.put("/api/queues/%2F/amq.q", json!({})).await.body["reason"], "Access refused.");
    assert_eq!(api.put(&format!("/api/queues/%2F/{}", "q".repeat(256)), json!({})).await.status, 400);
    assert_eq!(api.delete("/api/overview").await.status, 405);
    let pages = api.get("/api/queues?page=0").await;
    assert_eq!(pages.body["error"], "invalid_pagination_parameters");
    let get = api
        .post("/api/queues/%2F/nope/get", json!({"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}))
        .await;
    assert_eq!(get.body, json!({"error": "not_found", "reason": "NOT_FOUND - no queue 'nope' in vhost '/'"}));
    let publish = api
        .post(
            "/api/exchanges/%2F/nope/publish",
            json!({"routing_key": "", "payload": "", "payload_encoding": "string", "properties": {}}),
        )
        .await;
    assert_eq!(publish.body["reason"], "404 NOT_FOUND - no exchange 'nope' in vhost '/'");

    // a body larger than the cap is refused from its announced length, before it is read
    let mut raw = tokio::net::TcpStream::connect(w.management).await.unwrap();
    let head = format!(
        "PUT /api/queues/%2F/big HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ncontent-length: 100000000\r\n\r\n",
        basic("guest", "guest")
    );
    raw.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut answer)).await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );

    let ok = json!({"status": "ok"});
    assert_eq!(api.get("/api/health/checks/alarms").await.body, ok);
    assert_eq!(api.get("/api/health/checks/local-alarms").await.body, ok);
    assert_eq!(api.get("/api/health/checks/virtual-hosts").await.body, ok);
    let port = w.amqp.port();
    assert_eq!(
        api.get(&format!("/api/health/checks/port-listener/{port}")).await.body,
        json!({"status": "ok", "port": port})
    );
    let missing = api.get("/api/health/checks/port-listener/1").await;
    assert_eq!((missing.status, missing.body["reason"].as_str()), (503, Some("No active listener")));
    assert_eq!(api.get("/api/health/checks/port-listener/x").await.body["reason"], "Invalid port");
    assert_eq!(
        api.get("/api/health/checks/protocol-listener/amqp091").await.body,
        json!({"status": "ok", "protocol": "amqp"})
    );
    assert_eq!(api.get("/api/health/checks/protocol-listener/mqtt").await.status, 503);
    assert_eq!(api.get("/api/aliveness-test/%2F").await.body, ok);
    assert_eq!(api.get("/api/aliveness-test/nope").await.status, 404);
    let node = api.get("/api/nodes").await.body;
    assert_eq!(node[0]["running"], true);
    assert!(node[0]["mem_used"].as_u64().is_some_and(|m| m > 0));
    let name = node[0]["name"].as_str().unwrap().to_owned();
    assert_eq!(api.get(&format!("/api/nodes/{name}")).await.body["name"], name.as_str());
    let overview = api.get("/api/overview").await.body;
    assert_eq!(overview["node"], name.as_str());
    assert_eq!(overview["rabbitmq_version"], "3.10.8");
    assert_eq!(overview["product_name"], "warren");
    let protocols: Vec<&str> =
        overview["listeners"].as_array().unwrap().iter().filter_map(|l| l["protocol"].as_str()).collect();
    assert_eq!(protocols, vec!["amqp", "http/prometheus", "http"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amqps_connection_is_listed_as_ssl() {
    let pki = common::pki::Pki::new();
    let (w, amqps, _) = Warren::start_tls(&pki, &["--no-chat"]);
    let api = Api::new(&w);
    let url = format!("amqps://guest:guest@127.0.0.1:{}/%2f", amqps.port());
    let tls = lapin::tcp::OwnedTLSConfig { identity: None, cert_chain: Some(pki.ca_pem.clone()) };
    let runtime = lapin::runtime::default_runtime().expect("runtime");
    let _conn = Connection::connect_with_config(&url, ConnectionProperties::default(), tls, runtime)
        .await
        .expect("AMQPS connection");
    let list = api.get("/api/connections").await.body;
    assert_eq!(list[0]["ssl"], true);
    assert_eq!(list[0]["peer_host"], "127.0.0.1");
    let listener = api.get("/api/health/checks/protocol-listener/amqps").await.body;
    assert_eq!(listener, json!({"status": "ok", "protocol": "amqp/ssl"}));
    assert_eq!(api.get(&format!("/api/health/checks/port-listener/{}", amqps.port())).await.status, 200);
}
