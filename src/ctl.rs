//! `warren ctl`: change a running broker's settings, as `rabbitmqctl` does for RabbitMQ. The
//! broker listens on a Unix socket in its data directory (`warren.sock`, mode 0600: whoever
//! may read the data may control the broker).
//!
//! Protocol: the client sends one line, its arguments as a JSON array of strings (a plain
//! line split at whitespace is accepted too), followed for `import_definitions` by the file's
//! bytes; then it shuts its side down. The answer is a status line, `ok`, `ok: <what was
//! done>` or `error: <why>`, followed by the command's output lines (listings: a header row
//! and tab-separated rows, as `rabbitmqctl --quiet`). Both directions are bounded.
//!
//! Commands (RabbitMQ's names and value forms); users, vhosts, permissions, listings and
//! definitions are in [`crate::ctl_access`]:
//! - `set_vm_memory_high_watermark <fraction>` or `set_vm_memory_high_watermark absolute <size>`
//! - `set_disk_free_limit <size>`
//! - `status`: the limits in force and the current alarm
//! - `close_all_connections <explanation>`: close every client connection with 320
//!   CONNECTION_FORCED and the explanation (a chat front end reconnects by itself)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

pub use crate::ctl_access::Reply;
use tokio::net::{UnixListener, UnixStream};
use warren_broker::Broker;
use warren_broker::alarm;

/// The control socket's file name inside the data directory.
const SOCKET: &str = "warren.sock";
/// The longest command line accepted.
const MAX_LINE: u64 = 64 * 1024;
/// The largest definitions file accepted by import_definitions, and the largest answer.
pub const MAX_BODY: u64 = 64 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct CtlCommand {
    /// The data directory of the running warren (its control socket is there).
    #[arg(long, env = "WARREN_DATA_DIR", default_value = "warren-data")]
    pub data_dir: PathBuf,

    /// The command and its arguments, e.g. `set_vm_memory_high_watermark 0.6`,
    /// `set_vm_memory_high_watermark absolute 2GB`, `set_disk_free_limit 1GB`, `status`,
    /// `close_all_connections "maintenance"`.
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// Send one command to the warren running on `data_dir`; print its answer.
pub async fn run(cmd: CtlCommand) -> anyhow::Result<()> {
    let path = socket_path(&cmd.data_dir);
    let mut request = serde_json::to_vec(&cmd.command)?;
    request.push(b'\n');
    // Files are read and written here, by the caller, not by the broker.
    let mut export_to = None;
    match cmd.command.as_slice() {
        [verb, file] if verb == "import_definitions" => {
            let body = if file == "-" {
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut std::io::Read::take(std::io::stdin(), MAX_BODY), &mut body)?;
                body
            } else {
                tokio::fs::read(file).await.map_err(|e| anyhow::anyhow!("cannot read {file}: {e}"))?
            };
            request.extend_from_slice(&body);
        }
        [verb, file] if verb == "export_definitions" && file != "-" => export_to = Some(file.clone()),
        _ => {}
    }
    let stream = UnixStream::connect(&path).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach a running warren at {}: {e} (is it running with --data-dir {}?)",
            path.display(),
            cmd.data_dir.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    write.write_all(&request).await?;
    write.shutdown().await?;
    let mut answer = String::new();
    read.take(MAX_BODY).read_to_string(&mut answer).await?;
    let (status, output) = answer.split_once('\n').unwrap_or((answer.as_str(), ""));
    if !status.starts_with("ok") {
        println!("{status}");
        return Err(anyhow::anyhow!("the command was refused"));
    }
    if status != "ok" {
        println!("{status}");
    }
    match export_to {
        Some(file) => tokio::fs::write(&file, output).await.map_err(|e| anyhow::anyhow!("cannot write {file}: {e}"))?,
        None => print!("{output}"),
    }
    Ok(())
}

/// Listen for control commands until the process ends.
pub fn serve(data_dir: &Path, broker: Arc<Broker>) -> anyhow::Result<()> {
    let path = socket_path(data_dir);
    // A socket file left by a process that is gone (kill -9) would make bind fail.
    if path.exists() {
        std::fs::remove_file(&path).map_err(|e| anyhow::anyhow!("cannot remove the stale {}: {e}", path.display()))?;
    }
    let listener =
        UnixListener::bind(&path).map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream, broker.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(())
}

async fn answer(stream: UnixStream, broker: Arc<Broker>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_LINE + MAX_BODY));
    let mut line = Vec::new();
    let reply = match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line).await {
        Ok(_) => match parse_request(&line) {
            Ok(args) => {
                let mut body = Vec::new();
                let read_body = if args.first().is_some_and(|a| a == "import_definitions") {
                    reader.read_to_end(&mut body).await.map(|_| ())
                } else {
                    Ok(())
                };
                match read_body {
                    Ok(()) => run_command(&broker, &args, &body),
                    Err(e) => format!("error: unreadable definitions: {e}\n"),
                }
            }
            Err(why) => format!("error: {why}\n"),
        },
        Err(e) => format!("error: unreadable command: {e}\n"),
    };
    let _ = write.write_all(reply.as_bytes()).await;
}

/// The arguments of a request line: a JSON array of strings, or words.
fn parse_request(line: &[u8]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "the command is not UTF-8".to_owned())?.trim();
    if text.starts_with('[') {
        return serde_json::from_str(text).map_err(|e| format!("unreadable command: {e}"));
    }
    Ok(text.split_whitespace().map(String::from).collect())
}

/// Run a command; the answer as it goes on the wire.
fn run_command(broker: &Broker, args: &[String], body: &[u8]) -> String {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match crate::ctl_access::execute(broker, &words, body) {
        Some(result) => result,
        None => execute(broker, &words.join(" ")).map(Reply::done),
    };
    match result {
        Ok(reply) => {
            let logged: Vec<&str> = words.iter().take(2).copied().collect();
            tracing::info!(command = logged.join(" "), "control: {}", reply.summary.as_deref().unwrap_or("done"));
            reply.to_wire()
        }
        Err(why) => format!("error: {}\n", why.replace('\n', " ")),
    }
}

/// Run one command line against the broker; the text says what was done.
pub fn execute(broker: &Broker, line: &str) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["set_vm_memory_high_watermark", "absolute", size] => {
            let bytes = alarm::parse_size(size)?;
            set_memory(broker, bytes)
        }
        ["set_vm_memory_high_watermark", fraction] => {
            let f: f64 = fraction.parse().map_err(|_| {
                format!("{fraction:?} is not a fraction (e.g. 0.4); for a size use `absolute {fraction}`")
            })?;
            if !(f > 0.0 && f <= 1.0) {
                return Err(format!("{fraction}: the fraction must be above 0 and at most 1"));
            }
            set_memory(broker, alarm::parse_watermark(fraction)?)
        }
        ["set_disk_free_limit", size] => {
            let bytes = alarm::parse_size(size)?;
            if !broker.set_disk_free_limit(bytes) {
                return Err("this broker does not watch resources".into());
            }
            Ok(format!("disk free limit set to {bytes} bytes"))
        }
        ["status"] => {
            let limits = broker.limits().ok_or("this broker does not watch resources")?;
            let memory = limits.memory.map_or("none".to_owned(), |b| format!("{b} bytes"));
            let disk = limits.disk.map_or("none".to_owned(), |(_, b)| format!("{b} bytes"));
            let alarm = broker.alarm().borrow().unwrap_or("none");
            let resident = alarm::resident_bytes().map_or("?".to_owned(), |b| b.to_string());
            Ok(format!(
                "memory high watermark {memory}, disk free limit {disk}, resident {resident} bytes, alarm: {alarm}"
            ))
        }
        ["close_all_connections", explanation @ ..] if !explanation.is_empty() => {
            let explanation = explanation.join(" ");
            let told = broker.close_all_connections(&explanation);
            Ok(format!("closing {told} connections: {explanation}"))
        }
        ["close_all_connections"] => Err("close_all_connections needs an explanation".into()),
        [] => Err("empty command".into()),
        [other, ..] => Err(format!(
            "unknown command {other:?} (known: set_vm_memory_high_watermark, set_disk_free_limit, status, \
             close_all_connections, {})",
            crate::ctl_access::COMMANDS.join(", ")
        )),
    }
}

fn set_memory(broker: &Broker, bytes: u64) -> Result<String, String> {
    if !broker.set_memory_high_watermark(Some(bytes)) {
        return Err("this broker does not watch resources".into());
    }
    Ok(format!("memory high watermark set to {bytes} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_change_the_limits_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(Default::default(), dir.path()).unwrap();
        assert_eq!(
            execute(&broker, "set_vm_memory_high_watermark absolute 2MB\n"),
            Ok("memory high watermark set to 2000000 bytes".into())
        );
        assert_eq!(broker.limits().and_then(|l| l.memory), Some(2_000_000));
        assert!(execute(&broker, "set_vm_memory_high_watermark 0.5").is_ok());
        assert!(execute(&broker, "set_disk_free_limit 1GB").is_ok());
        assert_eq!(broker.limits().and_then(|l| l.disk).map(|(_, b)| b), Some(1_000_000_000));
        for bad in [
            "",
            "frobnicate",
            "set_vm_memory_high_watermark 7",
            "set_vm_memory_high_watermark lots",
            "set_disk_free_limit 5XB",
        ] {
            assert!(execute(&broker, bad).is_err(), "{bad:?} should be refused");
        }
        assert!(execute(&broker, "status").is_ok_and(|s| s.contains("disk free limit 1000000000 bytes")));
        assert_eq!(
            execute(&broker, "close_all_connections  time to  go\n"),
            Ok("closing 0 connections: time to go".into())
        );
        assert!(execute(&broker, "close_all_connections").is_err());
    }
}
