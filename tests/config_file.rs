//! End-to-end: `warren --config rabbitmq.conf` takes its listener, limits, default user and
//! definitions from the file, below WARREN_* variables and flags; a bad file stops it with the
//! line named on stderr.

mod common;

use std::process::Command;

use common::Warren;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

/// A port free on loopback a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

#[tokio::test]
async fn a_rabbitmq_conf_configures_the_binary() {
    let port = free_port();
    let definitions = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rabbitmq-3.10.8-definitions.json");
    let conf = format!(
        "# warren, configured as a RabbitMQ node would be
listeners.tcp.default = 127.0.0.1:{port}

default_user = admin
default_pass = 'adm#n'   # quoted: the # is part of the password
heartbeat    = 17
frame_max    = 8192
channel_max  = 100
load_definitions = {definitions}
management.tcp.port = 15999
"
    );
    // frame_max: the variable beats the file; channel_max: the flag beats both
    let envs = [("WARREN_FRAME_MAX", "16384"), ("WARREN_CHANNEL_MAX", "70")];
    let w = Warren::start_configured(&conf, &["--channel-max", "50", "--no-chat"], &envs);
    assert_eq!(w.amqp, format!("127.0.0.1:{port}").parse().unwrap(), "the file's listener");

    let url = format!("amqp://admin:adm%23n@127.0.0.1:{port}/%2f");
    let conn = Connection::connect(&url, ConnectionProperties::default()).await.expect("the file's default user");
    let tuned = conn.configuration();
    assert_eq!((tuned.heartbeat(), tuned.frame_max(), tuned.channel_max()), (17, 16384, 50));
    conn.close(200, "bye".into()).await.unwrap();

    // load_definitions: imported at start, before clients came
    let url = format!("amqp://carol:carol-pw@127.0.0.1:{port}/shop");
    let conn = Connection::connect(&url, ConnectionProperties::default()).await.expect("an imported user");
    let ch = conn.create_channel().await.unwrap();
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    ch.queue_declare("orders".into(), passive, FieldTable::default()).await.expect("an imported queue");
    conn.close(200, "bye".into()).await.unwrap();
}

/// Run warren on a rabbitmq.conf holding `conf`, passed as `--config` or WARREN_CONFIG;
/// expect it to stop by itself with a failure: its stderr.
fn refused(conf: &str, by_variable: bool) -> String {
    let temp = tempfile::tempdir().expect("temp dir");
    let path = temp.path().join("rabbitmq.conf");
    std::fs::write(&path, conf).expect("write");
    let mut command = Command::new(env!("CARGO_BIN_EXE_warren"));
    command.arg("--data-dir").arg(temp.path().join("data")).args(["--amqp-bind", "127.0.0.1:0", "--no-chat"]);
    if by_variable {
        command.env("WARREN_CONFIG", &path);
    } else {
        command.arg("--config").arg(&path);
    }
    let out = command.output().expect("run warren");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "warren started with {conf:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "the file is named: {stderr}");
    stderr
}

#[test]
fn a_bad_config_file_stops_warren_naming_the_line() {
    let conf = "# fine so far\nheartbeat = 30\n\nlisteners.tcp.default = 5672\nqueue_master_locator = min-masters\n";
    let err = refused(conf, false);
    assert!(err.contains("line 5: unknown key `queue_master_locator`"), "{err}");

    let err = refused("heartbeat = 30\nframe_max = 100 # too small\n", true);
    assert!(err.contains("line 2: bad value \"100\" for `frame_max`: expected bytes, at least 4096"), "{err}");

    let err = refused("listeners.tcp.default = 5672\nlisteners.tcp.other = 5673\n", false);
    assert!(err.contains("line 2: `listeners.tcp.other`"), "{err}");
}
