//! Spawn the real `warren` binary on an ephemeral loopback port and wait until it is ready.
#![allow(dead_code)]

pub mod pki;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::{Body, Client, Method, Request};
use serde_json::{Value, json};

pub struct Warren {
    pub child: Child,
    pub amqp: SocketAddr,
    /// The management HTTP API.
    pub management: SocketAddr,
    /// Prometheus metrics (`--prometheus-bind`).
    pub prometheus: SocketAddr,
    pub data_dir: std::path::PathBuf,
    /// Started through a wrapper (strace): `child` is the wrapper, warren is its child.
    wrapped: bool,
    /// Removes the data directory when the test ends (None when the caller owns it).
    _temp: Option<tempfile::TempDir>,
    /// Its log lines not read yet.
    lines: std::sync::mpsc::Receiver<String>,
}

impl Warren {
    /// Start on a fresh temporary data directory.
    pub fn start(extra_args: &[&str]) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut w = Self::start_on(temp.path(), extra_args);
        w._temp = Some(temp);
        w
    }

    /// Start on `data_dir` (kept after the test, for restarts).
    pub fn start_on(data_dir: &std::path::Path, extra_args: &[&str]) -> Self {
        Self::start_under(&[], data_dir, extra_args)
    }

    /// Start through a wrapper command (`strace -f -o FILE`, say): `wrapper` comes first,
    /// then the binary and its arguments. `--amqp-bind` and `--http-bind` default to ephemeral
    /// loopback ports unless `extra_args` name them.
    pub fn start_under(wrapper: &[&str], data_dir: &std::path::Path, extra_args: &[&str]) -> Self {
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_warren"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_warren")),
        };
        command.arg("--data-dir").arg(data_dir);
        let (child, lines) = spawn_logged(command, extra_args);
        let addr = wait_for_line(&lines, "AMQP listening on ");
        let management = wait_for_line(&lines, "management API on http://");
        let prometheus = wait_for_line(&lines, "Prometheus metrics on http://");
        Self {
            child,
            amqp: addr.parse().expect("address"),
            management: management.parse().expect("address"),
            prometheus: prometheus.parse().expect("address"),
            data_dir: data_dir.to_owned(),
            wrapped: !wrapper.is_empty(),
            _temp: None,
            lines,
        }
    }

    /// The embedded chat's address, e.g. `http://127.0.0.1:40123`, once it serves.
    pub fn chat_base(&self) -> String {
        format!("http://{}", wait_for_line(&self.lines, "chat on http://"))
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.amqp)
    }

    /// Start with TLS on `pki`'s certificate (a fresh temporary data directory): returns the
    /// AMQPS address, and the chat's HTTPS address unless `extra_args` has --no-chat.
    pub fn start_tls(pki: &pki::Pki, extra_args: &[&str]) -> (Self, SocketAddr, Option<SocketAddr>) {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_warren"));
        command.arg("--data-dir").arg(temp.path());
        command.arg("--tls-cert").arg(pki.cert()).arg("--tls-key").arg(pki.key());
        let (child, lines) = spawn_logged(command, extra_args);
        let amqp = wait_for_line(&lines, "AMQP listening on ").parse().expect("address");
        let amqps = wait_for_line(&lines, "AMQPS listening on ").parse().expect("address");
        let management = wait_for_line(&lines, "management API on http://").parse().expect("address");
        let prometheus = wait_for_line(&lines, "Prometheus metrics on http://").parse().expect("address");
        let https = (!extra_args.contains(&"--no-chat"))
            .then(|| wait_for_line(&lines, "chat on https://").parse().expect("address"));
        let w = Self {
            child,
            amqp,
            management,
            prometheus,
            data_dir: temp.path().to_owned(),
            wrapped: false,
            _temp: Some(temp),
            lines,
        };
        (w, amqps, https)
    }

    /// Start with a rabbitmq.conf holding `conf` (`--config`, on a fresh temporary data
    /// directory) and the environment variables `envs`: the file names the AMQP listener, so
    /// no --amqp-bind is added.
    pub fn start_configured(conf: &str, extra_args: &[&str], envs: &[(&str, &str)]) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let conf_file = temp.path().join("rabbitmq.conf");
        std::fs::write(&conf_file, conf).expect("write rabbitmq.conf");
        let data_dir = temp.path().join("data");
        let mut command = Command::new(env!("CARGO_BIN_EXE_warren"));
        command.arg("--data-dir").arg(&data_dir).arg("--config").arg(&conf_file);
        command.envs(envs.iter().copied());
        let flags = ["--http-bind", "--amqps-bind", "--https-bind", "--management-bind", "--prometheus-bind"];
        let (child, lines) = spawn_binding(command, extra_args, &flags);
        let amqp = wait_for_line(&lines, "AMQP listening on ").parse().expect("address");
        let management = wait_for_line(&lines, "management API on http://").parse().expect("address");
        let prometheus = wait_for_line(&lines, "Prometheus metrics on http://").parse().expect("address");
        Self { child, amqp, management, prometheus, data_dir, wrapped: false, _temp: Some(temp), lines }
    }

    /// The pid of the warren process itself (the wrapper's child when started under one).
    pub fn warren_pid(&self) -> u32 {
        let pid = self.child.id();
        if !self.wrapped {
            return pid;
        }
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).expect("wrapper's children");
        children.split_whitespace().next().and_then(|c| c.parse().ok()).expect("warren runs under the wrapper")
    }

    /// Send SIGTERM to warren and wait for the exit status (the wrapper's, which follows it).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.warren_pid().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "warren did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A chat front end alone (`--amqp-url`): no embedded broker.
pub struct ChatFrontEnd {
    pub child: Child,
    /// e.g. `http://127.0.0.1:40123`
    pub base: String,
    /// What it logged up to serving HTTP.
    pub startup_log: Vec<String>,
    /// Its log lines not read yet.
    lines: std::sync::mpsc::Receiver<String>,
}

impl ChatFrontEnd {
    pub fn start(amqp_url: &str) -> Self {
        Self::start_with(amqp_url, &[])
    }

    pub fn start_with(amqp_url: &str, extra_args: &[&str]) -> Self {
        let args: Vec<&str> = ["--amqp-url", amqp_url].into_iter().chain(extra_args.iter().copied()).collect();
        let (child, lines) = spawn_logged(Command::new(env!("CARGO_BIN_EXE_warren")), &args);
        let mut startup_log = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).expect("the chat front end serves HTTP within 30 s");
            if let Some(rest) = line.split("chat on http://").nth(1) {
                break rest.trim().to_owned();
            }
            startup_log.push(line);
        };
        Self { child, base: format!("http://{addr}"), startup_log, lines }
    }

    /// The next log line containing `marker` within `within`: the text after the marker.
    pub fn next_log(&self, marker: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            if let Some(rest) = line.split(marker).nth(1) {
                return Some(rest.trim().to_owned());
            }
        }
    }
}

impl Drop for ChatFrontEnd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawn `command` with `extra_args`, on ephemeral loopback ports where `extra_args` name
/// none (tests run in parallel, and never on 0.0.0.0); its stdout goes to stderr line by line
/// and to the returned channel.
fn spawn_logged(command: Command, extra_args: &[&str]) -> (Child, std::sync::mpsc::Receiver<String>) {
    spawn_binding(
        command,
        extra_args,
        &["--amqp-bind", "--http-bind", "--amqps-bind", "--https-bind", "--management-bind", "--prometheus-bind"],
    )
}

/// [`spawn_logged`], putting on an ephemeral loopback port only the listeners of `bind_flags`.
fn spawn_binding(
    mut command: Command,
    extra_args: &[&str],
    bind_flags: &[&str],
) -> (Child, std::sync::mpsc::Receiver<String>) {
    for &flag in bind_flags {
        if !extra_args.contains(&flag) {
            command.args([flag, "127.0.0.1:0"]);
        }
    }
    let mut child = command
        .env("WARREN_LOG", "info")
        .args(extra_args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn warren");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("[warren] {line}");
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// What follows `marker` in the first log line that has it, within 10 s.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, marker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).unwrap_or_else(|_| panic!("warren did not log {marker:?} within 10 s"));
        if let Some(rest) = line.split(marker).nth(1) {
            return rest.trim().to_owned();
        }
    }
}

impl Drop for Warren {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small JSON client for the chat's HTTP API.
pub struct Http {
    pub base: String,
}

impl Http {
    pub async fn req(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
        let resp = Client::new().request(req.body(body).expect("request")).await.expect("http request");
        let status = resp.status().as_u16();
        let bytes = hyper::body::to_bytes(resp.into_body()).await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn post_message(&self, token: &str, room: &str, text: &str) -> (u16, Value) {
        self.req(Method::POST, &format!("/api/rooms/{room}/messages"), Some(token), Some(json!({"text": text}))).await
    }
}

/// `warren ctl ARGS` on a data directory; (success, stdout).
pub fn ctl(data_dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("ctl")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run warren ctl");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn ctl_ok(data_dir: &Path, args: &[&str]) -> String {
    let (ok, out) = ctl(data_dir, args);
    assert!(ok, "warren ctl {args:?} failed: {out}");
    out
}
