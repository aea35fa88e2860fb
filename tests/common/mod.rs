//! Spawn the real `warren` binary on an ephemeral loopback port and wait until it is ready.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Warren {
    pub child: Child,
    pub amqp: SocketAddr,
    pub data_dir: std::path::PathBuf,
    /// Started through a wrapper (strace): `child` is the wrapper, warren is its child.
    wrapped: bool,
    /// Removes the data directory when the test ends (None when the caller owns it).
    _temp: Option<tempfile::TempDir>,
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
    /// then the binary and its arguments.
    pub fn start_under(wrapper: &[&str], data_dir: &std::path::Path, extra_args: &[&str]) -> Self {
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_warren"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_warren")),
        };
        let mut child = command
            .args(["--amqp-bind", "127.0.0.1:0"])
            // the chat too on an ephemeral loopback port: tests run in parallel, and never on 0.0.0.0
            .args(["--http-bind", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
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
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent && let Some(addr) = line.split("AMQP listening on ").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                    sent = true;
                }
                eprintln!("[warren] {line}");
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).expect("warren did not report its AMQP address");
        Self {
            child,
            amqp: addr.parse().expect("address"),
            data_dir: data_dir.to_owned(),
            wrapped: !wrapper.is_empty(),
            _temp: None,
        }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.amqp)
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

impl Drop for Warren {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
