//! Prometheus metrics on the built binary, scraped as Prometheus does: on `--prometheus-bind`
//! and on the management port, without credentials; RabbitMQ's names move as a lapin client
//! publishes, gets, consumes and acks; `/metrics/per-object` labels each queue; `promtool
//! check metrics` (when installed: scripts/test.sh installs Debian's prometheus) parses both.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::Warren;
use futures_lite::StreamExt;
use hyper::{Body, Client, Method, Request};
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

/// A scrape: status, Content-Type, body.
async fn scrape(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let req = Request::builder().method(Method::GET).uri(format!("http://{addr}{path}")).body(Body::empty()).unwrap();
    let resp = Client::new().request(req).await.expect("http request");
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let bytes = hyper::body::to_bytes(resp.into_body()).await.expect("body");
    (status, content_type, String::from_utf8(bytes.to_vec()).expect("UTF-8"))
}

/// Every sample: `name{labels}` -> value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// The metrics on `addr`, checked for format.
async fn metrics(addr: SocketAddr, path: &str) -> (String, HashMap<String, f64>) {
    let (status, content_type, text) = scrape(addr, path).await;
    assert_eq!(status, 200, "{path}: {text}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    promtool_check(&text);
    let s = samples(&text);
    (text, s)
}

/// `promtool check metrics` on `text`, when promtool is installed: a parse error fails; lint
/// warnings (exit code 3, which RabbitMQ's own output gets too) do not.
fn promtool_check(text: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("promtool is not installed: the exposition is not checked by it");
        return;
    };
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(matches!(out.status.code(), Some(0) | Some(3)), "promtool check metrics: {:?}\n{report}", out.status);
    assert!(!report.contains("error while linting"), "{report}");
}

fn value(s: &HashMap<String, f64>, series: &str) -> f64 {
    *s.get(series).unwrap_or_else(|| panic!("no {series}"))
}

const RECEIVED: &str = r#"rabbitmq_global_messages_received_total{protocol="amqp091"}"#;
const CONFIRMED: &str = r#"rabbitmq_global_messages_confirmed_total{protocol="amqp091"}"#;
const ROUTED: &str = r#"rabbitmq_global_messages_routed_total{protocol="amqp091"}"#;
const DELIVERED: &str = r#"rabbitmq_global_messages_delivered_total{protocol="amqp091"}"#;
const CONSUMED_MANUAL: &str = r#"rabbitmq_global_messages_delivered_consume_manual_ack_total{protocol="amqp091"}"#;
const GOT_AUTO: &str = r#"rabbitmq_global_messages_delivered_get_auto_ack_total{protocol="amqp091"}"#;
const ACKED: &str = r#"rabbitmq_global_messages_acknowledged_total{protocol="amqp091"}"#;
const DROPPED: &str = r#"rabbitmq_global_messages_unroutable_dropped_total{protocol="amqp091"}"#;

#[tokio::test]
async fn counters_move_on_both_ports_and_per_object_labels_queues() {
    let w = Warren::start(&["--no-chat"]);
    let (_, before) = metrics(w.prometheus, "/metrics").await;
    assert_eq!(value(&before, RECEIVED), 0.0);
    assert_eq!(value(&before, "rabbitmq_queues"), 0.0);

    let conn = Connection::connect(&w.url(), ConnectionProperties::default()).await.expect("connect");
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    ch.queue_declare("metered".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    for i in 0..5 {
        let body = format!("m{i}");
        let confirm = ch
            .basic_publish(
                "".into(),
                "metered".into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap();
        confirm.await.unwrap();
    }
    // one to nowhere (dropped), one taken by basic.get without ack
    ch.basic_publish("".into(), "nowhere".into(), BasicPublishOptions::default(), b"x", BasicProperties::default())
        .await
        .unwrap()
        .await
        .unwrap();
    let got = ch.basic_get("metered".into(), BasicGetOptions { no_ack: true }).await.unwrap();
    assert!(got.is_some());
    // consumed with manual ack, prefetch 2: two delivered, one acked, so a third delivered
    ch.basic_qos(2, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume("metered".into(), "c1".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), consumer.next()).await.unwrap().unwrap().unwrap();
    let _second = tokio::time::timeout(Duration::from_secs(5), consumer.next()).await.unwrap().unwrap().unwrap();
    first.ack(BasicAckOptions::default()).await.unwrap();
    let _third = tokio::time::timeout(Duration::from_secs(5), consumer.next()).await.unwrap().unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    for addr in [w.prometheus, w.management] {
        let (text, s) = metrics(addr, "/metrics").await;
        assert_eq!(value(&s, RECEIVED), 6.0, "{text}");
        assert_eq!(value(&s, CONFIRMED), 6.0, "{text}");
        assert_eq!(value(&s, DROPPED), 1.0, "{text}");
        assert_eq!(value(&s, ROUTED), 5.0, "{text}");
        assert_eq!(value(&s, GOT_AUTO), 1.0, "{text}");
        assert_eq!(value(&s, CONSUMED_MANUAL), 3.0, "{text}");
        assert_eq!(value(&s, DELIVERED), 4.0, "{text}");
        assert_eq!(value(&s, ACKED), 1.0, "{text}");
        assert_eq!(value(&s, "rabbitmq_connections"), 1.0, "{text}");
        assert_eq!(value(&s, "rabbitmq_channels"), 1.0, "{text}");
        assert_eq!(value(&s, "rabbitmq_consumers"), 1.0, "{text}");
        assert_eq!(value(&s, "rabbitmq_queues"), 1.0, "{text}");
        // 5 in: 1 got, 3 delivered (1 acked): 1 ready, 2 unacked
        assert_eq!(value(&s, "rabbitmq_queue_messages_ready"), 1.0, "{text}");
        assert_eq!(value(&s, "rabbitmq_queue_messages_unacked"), 2.0, "{text}");
        assert_eq!(value(&s, "rabbitmq_channel_messages_unacked"), 2.0, "{text}");
        assert_eq!(value(&s, "rabbitmq_queue_messages"), 3.0, "{text}");
        assert_eq!(value(&s, "rabbitmq_queue_messages_published_total"), 5.0, "{text}");
        assert_eq!(value(&s, "rabbitmq_channel_messages_unconfirmed"), 0.0, "{text}");
        // at least the protocol header and connection.start-ok / start each way
        assert!(value(&s, "rabbitmq_connection_incoming_bytes_total") > 8.0, "{text}");
        assert!(value(&s, "rabbitmq_connection_outgoing_bytes_total") > 8.0, "{text}");
        assert!(value(&s, "rabbitmq_process_resident_memory_bytes") > 0.0, "{text}");
        assert!(value(&s, "rabbitmq_disk_space_available_bytes") > 0.0, "{text}");
        assert!(text.contains("rabbitmq_identity_info{rabbitmq_node=\"warren@"), "{text}");
        assert!(text.contains("product_name=\"warren\""), "{text}");
    }

    for addr in [w.prometheus, w.management] {
        let (text, s) = metrics(addr, "/metrics/per-object").await;
        let q = r#"{vhost="/",queue="metered"}"#;
        assert_eq!(value(&s, &format!("rabbitmq_queue_messages_ready{q}")), 1.0, "{text}");
        assert_eq!(value(&s, &format!("rabbitmq_queue_messages_unacked{q}")), 2.0, "{text}");
        assert_eq!(value(&s, &format!("rabbitmq_queue_consumers{q}")), 1.0, "{text}");
        assert_eq!(value(&s, &format!("rabbitmq_queue_messages_published_total{q}")), 5.0, "{text}");
    }

    // Only the metrics on the Prometheus port; the API stays behind its credentials.
    assert_eq!(scrape(w.prometheus, "/api/overview").await.0, 404);
    assert_eq!(scrape(w.prometheus, "/metrics/detailed").await.0, 404);
    assert_eq!(scrape(w.management, "/api/overview").await.0, 401);
    // The listener is listed, and the health check finds it, as RabbitMQ's.
    let req = Request::builder()
        .uri(format!("http://{}/api/health/checks/protocol-listener/prometheus", w.management))
        .header("authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=") // guest:guest
        .body(Body::empty())
        .unwrap();
    let resp = Client::new().request(req).await.expect("health check");
    assert_eq!(resp.status().as_u16(), 200);
    conn.close(200, "bye".into()).await.unwrap();
}

#[test]
fn a_taken_prometheus_port_is_logged_and_warren_runs_on() {
    use std::io::{BufRead, BufReader};
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let data = tempfile::tempdir().expect("temp dir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["--no-chat", "--amqp-bind", "127.0.0.1:0", "--management-bind", "127.0.0.1:0"])
        .args(["--prometheus-bind", &addr])
        .env("NO_COLOR", "1")
        .env("WARREN_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn warren");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines().map_while(Result::ok);
    let mut seen = Vec::new();
    let served = lines.by_ref().take(50).find(|l| {
        seen.push(l.clone());
        l.contains("management API on http://")
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(served.is_some(), "the management API serves: {seen:#?}");
    let error = format!("Prometheus metrics disabled: cannot listen for Prometheus metrics on {addr}");
    assert!(seen.iter().any(|l| l.contains("ERROR") && l.contains(&error)), "{seen:#?}");
}
