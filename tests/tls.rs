//! TLS end to end, on the real binary with a CA and certificate the test makes: AMQPS with
//! lapin, the chat over HTTPS and WSS (sign up, subscribe, a message posted over HTTPS arrives
//! on the WSS session), a chat front end on an `amqps://` URL with `--amqp-ca`, and bad
//! certificate files stopping warren with a clear error.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::pki::Pki;
use common::{ChatFrontEnd, Warren};
use futures_lite::StreamExt as _;
use futures_util::SinkExt;
use hyper::{Body, Method, Request};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);

/// A TLS connection to `addr` that trusts only the test's CA.
async fn tls_connect(pki: &Pki, addr: SocketAddr) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(pki.ca()).expect("CA")).expect("add CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake")
}

/// One HTTPS request on a connection of its own: (status, JSON body or the text as a string).
async fn https(
    pki: &Pki,
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (mut send, conn) = hyper::client::conn::handshake(tls_connect(pki, addr).await).await.expect("HTTP handshake");
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path).header("host", addr.to_string());
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
    let resp = tokio::time::timeout(WAIT, send.send_request(req.body(body).expect("request")))
        .await
        .expect("answer in time")
        .expect("HTTPS request");
    let status = resp.status().as_u16();
    let bytes = hyper::body::to_bytes(resp.into_body()).await.expect("body");
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

async fn amqps_round_trip(pki: &Pki, amqps: SocketAddr) {
    let url = format!("amqps://guest:guest@127.0.0.1:{}/%2f", amqps.port());
    let tls = OwnedTLSConfig { identity: None, cert_chain: Some(pki.ca_pem.clone()) };
    let runtime = lapin::runtime::default_runtime().expect("runtime");
    let conn = tokio::time::timeout(
        WAIT,
        Connection::connect_with_config(&url, ConnectionProperties::default(), tls, runtime),
    )
    .await
    .expect("connect in time")
    .expect("AMQPS connection");
    let ch = conn.create_channel().await.expect("channel");
    let q = ch.queue_declare("".into(), QueueDeclareOptions::default(), FieldTable::default()).await.expect("queue");
    ch.basic_publish(
        "".into(),
        q.name().clone(),
        BasicPublishOptions::default(),
        b"over TLS",
        BasicProperties::default(),
    )
    .await
    .expect("publish");
    let mut got = None;
    for _ in 0..100 {
        got = ch.basic_get(q.name().clone(), BasicGetOptions { no_ack: true }).await.expect("get");
        if got.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got.expect("message back").delivery.data, b"over TLS");
    conn.close(200, "bye".into()).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_https_and_wss_from_the_binary() {
    let pki = Pki::new();
    let (_w, amqps, https_addr) = Warren::start_tls(&pki, &[]);
    let https_addr = https_addr.expect("chat over HTTPS");
    amqps_round_trip(&pki, amqps).await;

    // the page, over HTTPS
    let (status, page) = https(&pki, https_addr, Method::GET, "/", None, None).await;
    assert_eq!(status, 200);
    assert!(page.as_str().is_some_and(|p| p.contains("<html") || p.contains("<!doctype")), "{page}");

    // sign up, create a room, all over HTTPS
    let creds = json!({"username": "tls-ada", "password": "hunter2hunter2"});
    let (status, body) = https(&pki, https_addr, Method::POST, "/api/register", None, Some(creds)).await;
    assert_eq!(status, 201, "register: {body}");
    let token = body["token"].as_str().expect("token").to_owned();
    let room = json!({"name": "secure", "public": true});
    let (status, body) = https(&pki, https_addr, Method::POST, "/api/rooms", Some(&token), Some(room)).await;
    assert_eq!(status, 201, "room: {body}");
    let room = body["id"].as_str().expect("room id").to_owned();

    // a WebSocket over TLS (WSS), subscribed to the room
    let url = format!("wss://{https_addr}/ws?token={token}");
    let (mut ws, _) =
        tokio_tungstenite::client_async(url, tls_connect(&pki, https_addr).await).await.expect("WSS upgrade");
    ws.send(Message::Text(json!({"type": "subscribe", "room": room}).to_string())).await.expect("subscribe");
    let mut posted = false;
    loop {
        let frame =
            tokio::time::timeout(WAIT, ws.next()).await.expect("an event in time").expect("open").expect("frame");
        let Message::Text(text) = frame else { continue };
        let event: Value = serde_json::from_str(&text).expect("JSON event");
        match event["type"].as_str() {
            Some("subscribed") if !posted => {
                let path = format!("/api/rooms/{room}/messages");
                let msg = json!({"text": "hello over wss"});
                let (status, body) = https(&pki, https_addr, Method::POST, &path, Some(&token), Some(msg)).await;
                assert_eq!(status, 201, "post: {body}");
                posted = true;
            }
            Some("message") if event["message"]["text"] == "hello over wss" => break,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_connects_to_an_amqps_url_trusting_amqp_ca() {
    let pki = Pki::new();
    let (_broker, amqps, _) = Warren::start_tls(&pki, &["--no-chat"]);
    let url = format!("amqps://guest:guest@127.0.0.1:{}/%2f", amqps.port());
    let ca = pki.ca();
    // The front end logs "chat on http://" only once it connected and declared its topology.
    let front = ChatFrontEnd::start_with(&url, &["--amqp-ca", ca.to_str().expect("utf-8 path")]);
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/api/register", front.base))
        .header("content-type", "application/json")
        .body(Body::from(json!({"username": "tls-bob", "password": "hunter2hunter2"}).to_string()))
        .expect("request");
    let resp = hyper::Client::new().request(req).await.expect("register");
    // 201: the account event was published to chat.directory and confirmed, over AMQPS
    assert_eq!(resp.status().as_u16(), 201);
}

/// Run warren with `args` (plus a data dir and loopback ports) and expect it to stop by itself
/// with a failure: its stderr.
fn fails_to_start(args: &[&str]) -> String {
    let data = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--amqp-bind", "127.0.0.1:0", "--http-bind", "127.0.0.1:0"])
        .args(["--amqps-bind", "127.0.0.1:0", "--https-bind", "127.0.0.1:0"])
        .args(["--management-bind", "127.0.0.1:0"])
        .args(args)
        .output()
        .expect("run warren");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "warren started with {args:?}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn bad_certificates_stop_warren_with_a_clear_error() {
    let pki = Pki::new();
    let (cert, key) = (pki.cert(), pki.key());
    let (cert, key) = (cert.to_str().expect("path"), key.to_str().expect("path"));
    let missing = pki.path("missing.pem");
    let err = fails_to_start(&["--tls-cert", missing.to_str().expect("path"), "--tls-key", key]);
    assert!(err.contains("missing.pem") && err.contains("certificate"), "{err}");

    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let err = fails_to_start(&["--tls-cert", garbage.to_str().expect("path"), "--tls-key", key]);
    assert!(err.contains("garbage.pem"), "{err}");

    // key and certificate swapped
    let err = fails_to_start(&["--tls-cert", key, "--tls-key", cert]);
    assert!(err.contains("server.key"), "{err}");

    let other = pki.path("other.key");
    std::fs::write(&other, rcgen::KeyPair::generate().expect("key").serialize_pem()).expect("write");
    let err = fails_to_start(&["--tls-cert", cert, "--tls-key", other.to_str().expect("path")]);
    assert!(err.contains("cannot be used together"), "{err}");
}
