//! Start-up time: spawn a broker command and poll its AMQP port (a protocol header answered by
//! connection.start) until it accepts AMQP. The broker is left running; its pid is reported.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::PerfError;
use crate::usage;
use crate::wire::{self, Uri};

#[derive(Clone, Debug)]
pub struct Options {
    pub uri: Uri,
    /// The command and its arguments.
    pub command: Vec<String>,
    /// Where the command's stdout and stderr go.
    pub log: std::path::PathBuf,
    pub timeout: Duration,
    /// How long after accepting AMQP to wait before sampling the idle RSS.
    pub settle: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub pid: u32,
    pub startup_ms: f64,
    pub idle_rss_bytes: Option<u64>,
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "scenario": "startup",
            "pid": self.pid,
            "startup_ms": self.startup_ms,
            "idle_rss_bytes": self.idle_rss_bytes,
        })
    }

    pub fn summary(&self) -> String {
        format!(
            "pid {} accepted AMQP {:.1} ms after spawn; RSS after settling {:.1} MB",
            self.pid,
            self.startup_ms,
            self.idle_rss_bytes.unwrap_or(0) as f64 / 1e6
        )
    }
}

pub async fn run(opts: Options) -> Result<Report, PerfError> {
    let (program, args) = opts.command.split_first().ok_or_else(|| PerfError::Protocol("no command given".into()))?;
    if wire::accepts_amqp(&opts.uri.host, opts.uri.port).await {
        return Err(PerfError::Protocol(format!(
            "something already accepts AMQP on {}:{}",
            opts.uri.host, opts.uri.port
        )));
    }
    let log = std::fs::File::create(&opts.log)?;
    let started = Instant::now();
    let child = Command::new(program).args(args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()?;
    let pid = child.id();
    loop {
        if wire::accepts_amqp(&opts.uri.host, opts.uri.port).await {
            break;
        }
        if started.elapsed() > opts.timeout {
            return Err(PerfError::Protocol(format!(
                "no AMQP on {}:{} after {:?}",
                opts.uri.host, opts.uri.port, opts.timeout
            )));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let startup_ms = started.elapsed().as_secs_f64() * 1000.0;
    tokio::time::sleep(opts.settle).await;
    Ok(Report { pid, startup_ms, idle_rss_bytes: usage::sample(pid).map(|s| s.rss_bytes) })
}
