//! RabbitMQ's own CLI for its HTTP API, `rabbitmqadmin` v2 (the Rust crate), drives warren's
//! management API end to end: listings, declares and deletes, publish and get, purge,
//! definitions export and import, closing a connection.
//!
//! The CLI is installed by scripts/test.sh (`cargo install rabbitmqadmin --root
//! target/tools`); `WARREN_RABBITMQADMIN` names another copy. Without it this test fails and
//! says how to install it.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::Warren;
use lapin::{Connection, ConnectionProperties};

fn cli_path() -> PathBuf {
    match std::env::var_os("WARREN_RABBITMQADMIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin/rabbitmqadmin"),
    }
}

/// Run the CLI against `w`'s management API; its stdout, or a failure with its stderr.
fn admin(w: &Warren, args: &[&str]) -> String {
    let cli = cli_path();
    assert!(
        cli.exists(),
        "rabbitmqadmin v2 not found at {}: run scripts/test.sh, or `cargo install rabbitmqadmin --locked --version 2.35.0 --root target/tools`",
        cli.display()
    );
    let out = Command::new(&cli)
        .args(["--host", &w.management.ip().to_string(), "--port", &w.management.port().to_string()])
        .args(["--username", "guest", "--password", "guest", "--non-interactive"])
        .args(args)
        .output()
        .expect("run rabbitmqadmin");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "rabbitmqadmin {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The rows of a listing, each split at runs of whitespace.
fn rows(listing: &str) -> Vec<Vec<String>> {
    listing
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|r| !r.is_empty())
        .collect()
}

fn has_row(listing: &str, cells: &[&str]) -> bool {
    rows(listing).iter().any(|row| cells.iter().all(|c| row.iter().any(|cell| cell == c)))
}

#[tokio::test]
async fn rabbitmqadmin_v2_drives_warren() {
    let w = Warren::start(&["--no-chat"]);
    admin(&w, &["declare", "queue", "--name", "jobs", "--durable", "true"]);
    admin(&w, &["declare", "exchange", "--name", "work", "--type", "direct"]);
    let bind = ["--source", "work", "--destination-type", "queue", "--destination", "jobs", "--routing-key", "k"];
    admin(&w, &[&["declare", "binding"][..], &bind[..]].concat());
    let listing = admin(&w, &["list", "queues"]);
    assert!(has_row(&listing, &["jobs", "/", "classic", "true"]), "{listing}");
    assert!(has_row(&admin(&w, &["list", "exchanges"]), &["work", "direct"]));
    assert!(has_row(&admin(&w, &["list", "users"]), &["guest", "administrator"]));
    assert!(has_row(&admin(&w, &["list", "vhosts"]), &["/"]));
    assert!(has_row(&admin(&w, &["list", "bindings"]), &["work", "jobs", "queue", "k"]));

    // publish and get through the API
    let published =
        admin(&w, &["publish", "message", "--exchange", "work", "--routing-key", "k", "--payload", "hello"]);
    assert!(published.contains("routed"), "{published}");
    let got = admin(&w, &["get", "messages", "--queue", "jobs", "--count", "1", "--ack-mode", "ack_requeue_true"]);
    assert!(has_row(&got, &["hello", "work", "k"]), "{got}");
    assert!(has_row(&admin(&w, &["list", "queues"]), &["jobs", "1"]), "requeued: one message ready");
    admin(&w, &["purge", "queue", "--name", "jobs"]);
    let got = admin(&w, &["get", "messages", "--queue", "jobs", "--count", "1"]);
    assert!(!got.contains("hello"), "purged: {got}");

    // definitions out, objects deleted, definitions in: they are back
    let defs = tempfile::tempdir().expect("temp dir");
    let file = defs.path().join("definitions.json");
    let file = file.to_str().expect("utf-8 path");
    admin(&w, &["definitions", "export", "--file", file]);
    admin(&w, &["delete", "queue", "--name", "jobs"]);
    admin(&w, &["delete", "exchange", "--name", "work"]);
    assert!(!has_row(&admin(&w, &["list", "queues"]), &["jobs"]));
    admin(&w, &["definitions", "import", "--file", file]);
    assert!(has_row(&admin(&w, &["list", "queues"]), &["jobs"]));
    assert!(has_row(&admin(&w, &["list", "bindings"]), &["work", "jobs", "queue", "k"]));

    // a client connection is listed, and closed with 320 by name
    let conn = Connection::connect(&w.url(), ConnectionProperties::default()).await.expect("connect");
    let name = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let listing = admin(&w, &["list", "connections"]);
            if let Some(row) = rows(&listing).into_iter().find(|r| r.iter().any(|c| c == "guest")) {
                // RabbitMQ's connection name, `peer -> local`: the first three cells
                break row[..3].join(" ");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the connection is listed");
    assert!(name.contains(" -> "), "{name}");

    // its channel (in confirm mode) and consumer are listed too
    let channel = conn.create_channel().await.expect("channel");
    channel.confirm_select(Default::default()).await.expect("confirm.select");
    channel
        .basic_consume("jobs".into(), "admin-test-consumer".into(), Default::default(), Default::default())
        .await
        .expect("consume");
    let channels = admin(&w, &["list", "channels"]);
    assert!(has_row(&channels, &[name.split(" ").next().unwrap_or_default(), "running", "true"]), "{channels}");
    let consumers = admin(&w, &["list", "consumers"]);
    assert!(has_row(&consumers, &["jobs", "admin-test-consumer"]), "{consumers}");
    // the node, the overview and what warren does not have (an empty listing, as RabbitMQ
    // shows with none defined)
    assert!(admin(&w, &["list", "nodes"]).contains("warren@"));
    assert!(has_row(&admin(&w, &["show", "overview"]), &["Product", "name", "warren"]));
    for absent in ["policies", "operator_policies", "parameters", "feature_flags", "vhost_limits", "user_limits"] {
        admin(&w, &["list", absent]);
    }

    admin(&w, &["close", "connection", "--name", &name]);
    tokio::time::timeout(Duration::from_secs(5), async {
        while conn.status().connected() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("closed by the broker");
}
