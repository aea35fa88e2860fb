//! A configuration file in RabbitMQ's `rabbitmq.conf` format (the "new style" of RabbitMQ 3.7+,
//! sysctl-like, parsed by cuttlefish there): one `key = value` per line, `#` comments (whole
//! lines, or after a value), blank lines, whitespace around `=` ignored. A value is taken as
//! written up to a comment or the end of the line; in single quotes (`'a#b'`) it may hold `#`.
//!
//! [`parse`] turns the text into typed [`Entry`]s for the keys warren reads (see [`KEYS`]); an
//! unknown key or a bad value is an error naming the key and the line. Applying the entries to
//! the flags (below the environment and the command line) is `config`'s job.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use warren_broker::listen::ListenAddr;

/// The keys warren reads; `<name>` stands for any one name (RabbitMQ's listeners are named).
pub const KEYS: &[&str] = &[
    "listeners.tcp.<name>",
    "listeners.ssl.<name>",
    "ssl_options.certfile",
    "ssl_options.keyfile",
    "ssl_options.cacertfile",
    "ssl_options.verify",
    "ssl_options.fail_if_no_peer_cert",
    "ssl_handshake_timeout",
    "default_user",
    "default_pass",
    "loopback_users",
    "loopback_users.guest",
    "vm_memory_high_watermark.relative",
    "vm_memory_high_watermark.absolute",
    "disk_free_limit.relative",
    "disk_free_limit.absolute",
    "max_message_size",
    "heartbeat",
    "frame_max",
    "channel_max",
    "management.tcp.ip",
    "management.tcp.port",
    "prometheus.tcp.ip",
    "prometheus.tcp.port",
    "load_definitions",
    "definitions.local.path",
    "definitions.import_backend",
    "log.console.level",
];

/// One setting of the file, with the line it is on.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub line: usize,
    pub key: String,
    pub setting: Setting,
}

/// A setting warren acts on, its value checked and typed.
#[derive(Clone, Debug, PartialEq)]
pub enum Setting {
    /// `listeners.tcp.<name>` (one name only): `--amqp-bind`.
    AmqpListener(ListenAddr),
    /// `listeners.ssl.<name>` (one name only): `--amqps-bind`.
    AmqpsListener(ListenAddr),
    /// `ssl_options.certfile`: `--tls-cert`.
    TlsCert(PathBuf),
    /// `ssl_options.keyfile`: `--tls-key`.
    TlsKey(PathBuf),
    /// `ssl_options.cacertfile`: `--tls-ca`.
    TlsCa(PathBuf),
    /// `ssl_options.verify = verify_peer | verify_none`: `--tls-verify-peer`.
    TlsVerifyPeer(bool),
    /// `ssl_options.fail_if_no_peer_cert`: `--tls-fail-if-no-peer-cert`.
    TlsFailIfNoPeerCert(bool),
    /// `ssl_handshake_timeout`, in milliseconds: `--tls-handshake-timeout`.
    TlsHandshakeTimeout(u64),
    /// `default_user`: `--default-user`.
    DefaultUser(String),
    /// `default_pass`: `--default-pass`.
    DefaultPass(String),
    /// `loopback_users.guest = false` or `loopback_users = none` (true), `loopback_users.guest
    /// = true` (false): `--guest-remote`.
    GuestRemote(bool),
    /// `vm_memory_high_watermark.relative` / `.absolute`: `--memory-high-watermark`.
    MemoryHighWatermark(Limit),
    /// `disk_free_limit.relative` (of the machine's memory, as RabbitMQ) / `.absolute`:
    /// `--disk-free-limit`.
    DiskFreeLimit(Limit),
    /// `max_message_size`, in bytes: `--max-message-size`.
    MaxMessageSize(u64),
    /// `heartbeat`, in seconds: `--heartbeat`.
    Heartbeat(u16),
    /// `frame_max`, in bytes: `--frame-max`.
    FrameMax(u32),
    /// `channel_max`: `--channel-max`.
    ChannelMax(u16),
    /// `management.tcp.ip`: the address part of `--management-bind`.
    ManagementIp(IpAddr),
    /// `management.tcp.port`: the port part of `--management-bind`.
    ManagementPort(u16),
    /// `prometheus.tcp.ip`: the address part of `--prometheus-bind`.
    PrometheusIp(IpAddr),
    /// `prometheus.tcp.port`: the port part of `--prometheus-bind`.
    PrometheusPort(u16),
    /// `load_definitions` or `definitions.local.path`: `--load-definitions`.
    LoadDefinitions(PathBuf),
    /// `definitions.import_backend = local_filesystem` (the only backend warren has).
    DefinitionsBackend,
    /// `log.console.level`: `--log`, as a tracing filter (`warning` is `warn`, `none` is `off`).
    LogLevel(String),
}

/// A resource limit: a fraction of the machine's memory, or bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    Relative(f64),
    Absolute(u64),
}

/// What is wrong with a line.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfError {
    #[error("line {line}: expected `key = value`, found {text:?}")]
    Syntax { line: usize, text: String },
    #[error("line {line}: unknown key `{key}` ({hint})")]
    UnknownKey { line: usize, key: String, hint: String },
    #[error("line {line}: bad value {value:?} for `{key}`: {why}")]
    BadValue { line: usize, key: String, value: String, why: String },
    #[error("line {line}: `{key}`: {why}")]
    Unsupported { line: usize, key: String, why: String },
}

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("configuration file {path}, {error}")]
    Parse { path: PathBuf, error: ConfError },
}

/// Read and parse the file at `path`.
pub fn read(path: &Path) -> Result<Vec<Entry>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read { path: path.to_owned(), source })?;
    parse(&text).map_err(|error| FileError::Parse { path: path.to_owned(), error })
}

/// Parse a whole file; the first line in error stops it.
pub fn parse(text: &str) -> Result<Vec<Entry>, ConfError> {
    let mut entries = Vec::new();
    // RabbitMQ names its listeners; warren has one of each kind: (key, line) of the first.
    let mut tcp: Option<(String, usize)> = None;
    let mut ssl: Option<(String, usize)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let Some((key, value)) = split_line(line, raw)? else { continue };
        let setting = setting(line, key, &value)?;
        let first = match setting {
            Setting::AmqpListener(_) => Some(&mut tcp),
            Setting::AmqpsListener(_) => Some(&mut ssl),
            _ => None,
        };
        if let Some(first) = first {
            match first {
                Some((other, at)) if other != key => {
                    return Err(ConfError::Unsupported {
                        line,
                        key: key.to_owned(),
                        why: format!("warren has one listener of this kind, named by `{other}` on line {at}"),
                    });
                }
                _ => *first = Some((key.to_owned(), line)),
            }
        }
        entries.push(Entry { line, key: key.to_owned(), setting });
    }
    Ok(entries)
}

/// The key and value of a line; None for a blank or comment line.
fn split_line(line: usize, raw: &str) -> Result<Option<(&str, String)>, ConfError> {
    let text = raw.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let syntax = || ConfError::Syntax { line, text: text.to_owned() };
    let (key, rest) = text.split_once('=').ok_or_else(syntax)?;
    let key = key.trim();
    let key_chars = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if key.is_empty() || !key.split('.').all(|part| !part.is_empty() && part.chars().all(key_chars)) {
        return Err(syntax());
    }
    let rest = rest.trim_start();
    let value = if let Some(quoted) = rest.strip_prefix('\'') {
        let (value, after) = quoted.split_once('\'').ok_or_else(syntax)?;
        let after = after.trim_start();
        if !(after.is_empty() || after.starts_with('#')) {
            return Err(syntax());
        }
        value
    } else {
        rest.split_once('#').map_or(rest, |(value, _comment)| value).trim_end()
    };
    if value.is_empty() {
        return Err(syntax());
    }
    Ok(Some((key, value.to_owned())))
}

/// The typed setting of `key = value`.
fn setting(line: usize, key: &str, value: &str) -> Result<Setting, ConfError> {
    let bad =
        |why: &str| ConfError::BadValue { line, key: key.to_owned(), value: value.to_owned(), why: why.to_owned() };
    let int = |why: &str| value.parse::<u64>().map_err(|_| bad(why));
    let port = || value.parse::<u16>().map_err(|_| bad("expected a port, 0 to 65535"));
    let ip = || value.parse::<IpAddr>().map_err(|_| bad("expected an IP address, e.g. 127.0.0.1 or ::"));
    let path = || Ok(PathBuf::from(value));
    let boolean = || match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad("expected true or false")),
    };
    let fraction = || match value.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(Limit::Relative(f)),
        _ => Err(bad("expected a fraction of the machine's memory above 0, e.g. 0.4")),
    };
    let size = || warren_broker::alarm::parse_size(value).map(Limit::Absolute).map_err(|why| bad(&why));
    let setting = match key {
        "ssl_options.certfile" => Setting::TlsCert(path()?),
        "ssl_options.keyfile" => Setting::TlsKey(path()?),
        "ssl_options.cacertfile" => Setting::TlsCa(path()?),
        "ssl_options.verify" => match value {
            "verify_peer" => Setting::TlsVerifyPeer(true),
            "verify_none" => Setting::TlsVerifyPeer(false),
            _ => return Err(bad("expected verify_peer or verify_none")),
        },
        "ssl_options.fail_if_no_peer_cert" => Setting::TlsFailIfNoPeerCert(boolean()?),
        "ssl_handshake_timeout" => match int("expected milliseconds, above 0")? {
            0 => return Err(bad("expected milliseconds, above 0")),
            ms => Setting::TlsHandshakeTimeout(ms),
        },
        "default_user" => Setting::DefaultUser(value.to_owned()),
        "default_pass" => Setting::DefaultPass(value.to_owned()),
        "loopback_users" => match value {
            "none" => Setting::GuestRemote(true),
            _ => return Err(bad("expected none (or loopback_users.guest = true | false)")),
        },
        "loopback_users.guest" => Setting::GuestRemote(!boolean()?),
        "vm_memory_high_watermark.relative" => Setting::MemoryHighWatermark(fraction()?),
        "vm_memory_high_watermark.absolute" => Setting::MemoryHighWatermark(size()?),
        "disk_free_limit.relative" => Setting::DiskFreeLimit(fraction()?),
        "disk_free_limit.absolute" => Setting::DiskFreeLimit(size()?),
        "max_message_size" => match int("expected bytes, e.g. 134217728")? {
            n @ 1..=warren_broker::BrokerConfig::MAX_MESSAGE_SIZE_CAP => Setting::MaxMessageSize(n),
            _ => return Err(bad("expected 1 to 536870912 bytes (512 MiB, RabbitMQ's cap)")),
        },
        "heartbeat" => Setting::Heartbeat(value.parse().map_err(|_| bad("expected seconds, 0 to 65535"))?),
        "frame_max" => match value.parse::<u32>() {
            Ok(n) if n >= 4096 => Setting::FrameMax(n),
            _ => return Err(bad("expected bytes, at least 4096")),
        },
        "channel_max" => Setting::ChannelMax(value.parse().map_err(|_| bad("expected 0 to 65535"))?),
        "management.tcp.ip" => Setting::ManagementIp(ip()?),
        "management.tcp.port" => Setting::ManagementPort(port()?),
        "prometheus.tcp.ip" => Setting::PrometheusIp(ip()?),
        "prometheus.tcp.port" => Setting::PrometheusPort(port()?),
        "load_definitions" | "definitions.local.path" => Setting::LoadDefinitions(path()?),
        "definitions.import_backend" => match value {
            "local_filesystem" | "rabbit_definitions_import_local_filesystem" => Setting::DefinitionsBackend,
            _ => return Err(bad("warren imports definitions from a local file only (local_filesystem)")),
        },
        "log.console.level" => Setting::LogLevel(
            match value {
                "debug" | "info" | "error" => value,
                "warning" => "warn",
                "critical" => "error",
                "none" => "off",
                _ => return Err(bad("expected debug, info, warning, error, critical or none")),
            }
            .to_owned(),
        ),
        _ => match listener(key) {
            Some(Kind::Tcp) => Setting::AmqpListener(listen_addr(value).map_err(|why| bad(&why))?),
            Some(Kind::Ssl) => Setting::AmqpsListener(listen_addr(value).map_err(|why| bad(&why))?),
            None => return Err(ConfError::UnknownKey { line, key: key.to_owned(), hint: hint(key) }),
        },
    };
    Ok(setting)
}

/// What to say about an unknown key: the keys warren reads that start like it, or where the
/// list is.
fn hint(key: &str) -> String {
    let head = key.split('.').next().unwrap_or(key);
    let alike: Vec<&str> = KEYS.iter().copied().filter(|k| k.split('.').next() == Some(head)).collect();
    if alike.is_empty() {
        "`warren --help` lists the keys warren reads, under --config".to_owned()
    } else {
        format!("warren reads {}", alike.join(", "))
    }
}

enum Kind {
    Tcp,
    Ssl,
}

/// `listeners.tcp.<name>` or `listeners.ssl.<name>`.
fn listener(key: &str) -> Option<Kind> {
    let (kind, name) = key.strip_prefix("listeners.")?.split_once('.')?;
    if name.contains('.') {
        return None;
    }
    match kind {
        "tcp" => Some(Kind::Tcp),
        "ssl" => Some(Kind::Ssl),
        _ => None,
    }
}

/// A listener as rabbitmq.conf writes it: a port alone (every interface), `ip:port`,
/// `[ipv6]:port`, `ipv6:port` without brackets (`::1:5672`, split at the last colon as
/// RabbitMQ does), or `host:port`.
fn listen_addr(value: &str) -> Result<ListenAddr, String> {
    let expected = "expected a port, ip:port, [ipv6]:port or host:port";
    if let Some((host, port)) = value.rsplit_once(':')
        && !host.starts_with('[')
        && host.contains(':')
    {
        let ip: std::net::Ipv6Addr =
            host.parse().map_err(|_| format!("{host:?} is not an IPv6 address; {expected}"))?;
        let port: u16 = port.parse().map_err(|_| format!("{port:?} is not a port; {expected}"))?;
        return Ok(ListenAddr::Given(std::net::SocketAddr::from((ip, port)).to_string()));
    }
    let addr: ListenAddr = value.parse().map_err(|e| format!("{e}"))?;
    if let ListenAddr::Given(text) = &addr
        && text.starts_with('[')
        && text.parse::<std::net::SocketAddr>().is_err()
    {
        return Err(format!("{text:?} is not an [ipv6]:port address"));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Setting {
        let entries = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries.into_iter().next().map(|e| e.setting).unwrap()
    }

    fn error(text: &str) -> ConfError {
        parse(text).expect_err(text)
    }

    #[test]
    fn comments_blank_lines_and_whitespace() {
        let text = "# a comment\n\n   \t\n  heartbeat=30\r\n\tframe_max   =   8192   # inline comment\n  # indented\n";
        let entries = parse(text).unwrap();
        assert_eq!(
            entries,
            [
                Entry { line: 4, key: "heartbeat".into(), setting: Setting::Heartbeat(30) },
                Entry { line: 5, key: "frame_max".into(), setting: Setting::FrameMax(8192) },
            ]
        );
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn values_are_taken_as_written_or_in_single_quotes() {
        assert_eq!(one("default_pass = s3cret with spaces"), Setting::DefaultPass("s3cret with spaces".into()));
        assert_eq!(one("default_pass = 'has#hash' # comment"), Setting::DefaultPass("has#hash".into()));
        assert_eq!(one("default_pass = \"dq\""), Setting::DefaultPass("\"dq\"".into()), "double quotes are data");
        assert_eq!(one("default_pass = a#b"), Setting::DefaultPass("a".into()), "# starts a comment, as in cuttlefish");
        assert!(matches!(error("default_pass = 'open"), ConfError::Syntax { line: 1, .. }));
        assert!(matches!(error("default_pass = 'x' junk"), ConfError::Syntax { line: 1, .. }));
        assert!(matches!(error("default_pass ="), ConfError::Syntax { line: 1, .. }));
    }

    #[test]
    fn lines_that_are_not_settings_are_syntax_errors() {
        assert_eq!(error("heartbeat = 1\njust words"), ConfError::Syntax { line: 2, text: "just words".into() });
        assert!(matches!(error("include /etc/rabbitmq/conf.d/*.conf"), ConfError::Syntax { line: 1, .. }));
        assert!(matches!(error("= 5"), ConfError::Syntax { .. }));
        assert!(matches!(error("bad key = 5"), ConfError::Syntax { .. }));
        assert!(matches!(error("a..b = 5"), ConfError::Syntax { .. }));
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let e = error("heartbeat = 10\n\n# c\ncluster_formation.peer_discovery_backend = classic_config\n");
        assert!(
            matches!(&e, ConfError::UnknownKey { line: 4, key, .. } if key == "cluster_formation.peer_discovery_backend")
        );
        let text = e.to_string();
        assert!(text.contains("line 4") && text.contains("`cluster_formation.peer_discovery_backend`"), "{text}");
        assert!(text.contains("warren --help"), "{text}");
        let text = error("management.ssl.port = 15671").to_string();
        assert!(text.contains("warren reads management.tcp.ip, management.tcp.port"), "{text}");
        assert!(matches!(error("Heartbeat = 10"), ConfError::UnknownKey { .. }), "keys are case-sensitive");
        assert!(matches!(error("listeners.tcp.a.b = 5672"), ConfError::UnknownKey { .. }));
        assert!(matches!(error("listeners.tcp = none"), ConfError::UnknownKey { .. }));
    }

    #[test]
    fn bad_values_say_key_line_and_why() {
        let e = error("\nheartbeat = soon");
        assert!(matches!(&e, ConfError::BadValue { line: 2, key, value, .. } if key == "heartbeat" && value == "soon"));
        assert!(e.to_string().contains("expected seconds"), "{e}");
        assert!(matches!(error("frame_max = 100"), ConfError::BadValue { .. }));
        assert!(matches!(error("max_message_size = 536870913"), ConfError::BadValue { .. }));
        assert!(matches!(error("max_message_size = 128MB"), ConfError::BadValue { .. }), "an integer, as in RabbitMQ");
        assert!(matches!(error("vm_memory_high_watermark.relative = -1"), ConfError::BadValue { .. }));
        assert!(matches!(error("vm_memory_high_watermark.absolute = lots"), ConfError::BadValue { .. }));
        assert!(matches!(error("loopback_users.guest = maybe"), ConfError::BadValue { .. }));
        assert!(matches!(error("ssl_options.verify = verify_maybe"), ConfError::BadValue { .. }));
        assert!(matches!(error("management.tcp.port = 70000"), ConfError::BadValue { .. }));
        assert!(matches!(error("management.tcp.ip = localhost"), ConfError::BadValue { .. }));
        assert!(matches!(error("log.console.level = loud"), ConfError::BadValue { .. }));
    }

    #[test]
    fn sizes_in_each_form() {
        let absolute = |v: &str| one(&format!("vm_memory_high_watermark.absolute = {v}"));
        assert_eq!(absolute("1073741824"), Setting::MemoryHighWatermark(Limit::Absolute(1 << 30)));
        assert_eq!(absolute("1024MiB"), Setting::MemoryHighWatermark(Limit::Absolute(1 << 30)));
        assert_eq!(absolute("2GB"), Setting::MemoryHighWatermark(Limit::Absolute(2_000_000_000)));
        assert_eq!(absolute("2G"), Setting::MemoryHighWatermark(Limit::Absolute(2_000_000_000)));
        assert_eq!(absolute("512Mi"), Setting::MemoryHighWatermark(Limit::Absolute(512 << 20)));
        assert_eq!(absolute("100kB"), Setting::MemoryHighWatermark(Limit::Absolute(100_000)));
        assert_eq!(absolute("1KiB"), Setting::MemoryHighWatermark(Limit::Absolute(1024)));
        assert_eq!(one("vm_memory_high_watermark.relative = 0.6"), Setting::MemoryHighWatermark(Limit::Relative(0.6)));
        assert_eq!(one("disk_free_limit.absolute = 50MB"), Setting::DiskFreeLimit(Limit::Absolute(50_000_000)));
        assert_eq!(one("disk_free_limit.relative = 1.5"), Setting::DiskFreeLimit(Limit::Relative(1.5)));
        assert_eq!(one("max_message_size = 134217728"), Setting::MaxMessageSize(128 << 20));
    }

    #[test]
    fn listeners_in_each_form() {
        let tcp = |v: &str| one(&format!("listeners.tcp.default = {v}"));
        assert_eq!(tcp("5672"), Setting::AmqpListener(ListenAddr::Any(5672)));
        assert_eq!(tcp("127.0.0.1:5673"), Setting::AmqpListener(ListenAddr::Given("127.0.0.1:5673".into())));
        assert_eq!(tcp("[::1]:5672"), Setting::AmqpListener(ListenAddr::Given("[::1]:5672".into())));
        assert_eq!(tcp("::1:5672"), Setting::AmqpListener(ListenAddr::Given("[::1]:5672".into())));
        assert_eq!(tcp(":::5672"), Setting::AmqpListener(ListenAddr::Given("[::]:5672".into())));
        assert_eq!(tcp("localhost:5672"), Setting::AmqpListener(ListenAddr::Given("localhost:5672".into())));
        assert_eq!(one("listeners.tcp.local = 5672"), Setting::AmqpListener(ListenAddr::Any(5672)));
        assert_eq!(one("listeners.ssl.default = 5671"), Setting::AmqpsListener(ListenAddr::Any(5671)));
        for bad in ["70000", "host", "[::1]", "[nope]:5672", "1.2.3.4:port", "fe80::zz:5672"] {
            assert!(matches!(error(&format!("listeners.tcp.default = {bad}")), ConfError::BadValue { .. }), "{bad}");
        }
        // the same name again is fine (the last wins); a second listener is not
        assert_eq!(parse("listeners.tcp.default = 1\nlisteners.tcp.default = 2").unwrap().len(), 2);
        let e = error("listeners.tcp.default = 5672\nlisteners.tcp.other = 5673");
        assert!(matches!(&e, ConfError::Unsupported { line: 2, key, .. } if key == "listeners.tcp.other"), "{e}");
        assert!(parse("listeners.tcp.a = 5672\nlisteners.ssl.b = 5671").is_ok());
    }

    #[test]
    fn every_other_key() {
        assert_eq!(one("ssl_options.certfile = /etc/c.pem"), Setting::TlsCert("/etc/c.pem".into()));
        assert_eq!(one("ssl_options.keyfile = k.pem"), Setting::TlsKey("k.pem".into()));
        assert_eq!(one("ssl_options.cacertfile = ca.pem"), Setting::TlsCa("ca.pem".into()));
        assert_eq!(one("ssl_options.verify = verify_peer"), Setting::TlsVerifyPeer(true));
        assert_eq!(one("ssl_options.fail_if_no_peer_cert = true"), Setting::TlsFailIfNoPeerCert(true));
        assert_eq!(one("ssl_handshake_timeout = 7000"), Setting::TlsHandshakeTimeout(7000));
        assert_eq!(one("default_user = admin"), Setting::DefaultUser("admin".into()));
        assert_eq!(one("loopback_users.guest = false"), Setting::GuestRemote(true));
        assert_eq!(one("loopback_users.guest = true"), Setting::GuestRemote(false));
        assert_eq!(one("loopback_users = none"), Setting::GuestRemote(true));
        assert_eq!(one("channel_max = 128"), Setting::ChannelMax(128));
        assert_eq!(one("management.tcp.ip = ::"), Setting::ManagementIp("::".parse().unwrap()));
        assert_eq!(one("management.tcp.port = 15673"), Setting::ManagementPort(15673));
        assert_eq!(one("prometheus.tcp.ip = 0.0.0.0"), Setting::PrometheusIp("0.0.0.0".parse().unwrap()));
        assert_eq!(one("prometheus.tcp.port = 15693"), Setting::PrometheusPort(15693));
        assert_eq!(one("load_definitions = /etc/d.json"), Setting::LoadDefinitions("/etc/d.json".into()));
        assert_eq!(one("definitions.local.path = d.json"), Setting::LoadDefinitions("d.json".into()));
        assert_eq!(one("definitions.import_backend = local_filesystem"), Setting::DefinitionsBackend);
        assert_eq!(one("log.console.level = warning"), Setting::LogLevel("warn".into()));
    }

    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../README.md");
        let section = readme.split("## Configuration file").nth(1).expect("the README's section");
        let example = section.split("```ini\n").nth(1).and_then(|s| s.split("```").next()).expect("its example");
        let entries = parse(example).unwrap_or_else(|e| panic!("{e}"));
        assert!(entries.len() > 10, "{entries:?}");
    }

    #[test]
    fn every_listed_key_parses() {
        let sample = |key: &str| match key {
            k if k.starts_with("listeners.") => "5672",
            k if k.starts_with("ssl_options.verify") => "verify_none",
            k if k.ends_with(".relative") => "0.5",
            k if k.ends_with(".ip") => "127.0.0.1",
            "loopback_users" => "none",
            "loopback_users.guest" | "ssl_options.fail_if_no_peer_cert" => "false",
            "definitions.import_backend" => "local_filesystem",
            "log.console.level" => "info",
            _ => "8192",
        };
        for key in KEYS {
            let key = key.replace("<name>", "default");
            parse(&format!("{key} = {}", sample(&key))).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }
}
