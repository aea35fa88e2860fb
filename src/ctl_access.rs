//! `warren ctl` verbs for users, vhosts, permissions, listings and definitions, with
//! rabbitmqctl's names, arguments and output columns (tab-separated, a header row first, as
//! `rabbitmqctl --quiet` prints them; nothing at all for an empty listing).

use warren_broker::Broker;
use warren_broker::access::AccessError;
use warren_persistence::{PermissionDef, TopicPermissionDef};

/// The verbs this module knows.
pub const COMMANDS: &[&str] = &[
    "add_user",
    "delete_user",
    "change_password",
    "set_user_tags",
    "list_users",
    "add_vhost",
    "delete_vhost",
    "list_vhosts",
    "set_permissions",
    "clear_permissions",
    "list_permissions",
    "list_user_permissions",
    "set_topic_permissions",
    "clear_topic_permissions",
    "list_topic_permissions",
    "list_user_topic_permissions",
    "list_queues",
    "list_exchanges",
    "list_bindings",
    "list_connections",
    "list_consumers",
    "close_connection",
    "export_definitions",
    "import_definitions",
];

/// What a command answers: a summary for the status line and output lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub summary: Option<String>,
    pub lines: Vec<String>,
}

impl Reply {
    /// A change that prints nothing (rabbitmqctl --quiet).
    fn quiet() -> Self {
        Self::default()
    }

    /// A command whose status line says what it did.
    pub fn done(summary: String) -> Self {
        Self { summary: Some(summary), lines: Vec::new() }
    }

    /// A table: header and rows, or nothing when there are no rows.
    fn table(header: &[&str], rows: Vec<Vec<String>>) -> Self {
        if rows.is_empty() {
            return Self::default();
        }
        let mut lines = vec![header.join("\t")];
        lines.extend(rows.into_iter().map(|r| r.join("\t")));
        Self { summary: None, lines }
    }

    /// The answer on the wire: the status line, then the output.
    pub fn to_wire(&self) -> String {
        let mut out = match &self.summary {
            Some(s) => format!("ok: {s}\n"),
            None => "ok\n".to_owned(),
        };
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

fn err(e: AccessError) -> String {
    e.to_string()
}

/// `[-p vhost | --vhost vhost]` anywhere, and the other arguments in order.
fn split_vhost<'a>(args: &[&'a str]) -> Result<(String, Vec<&'a str>), String> {
    let mut vhost = "/".to_owned();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix("--vhost=") {
            vhost = v.to_owned();
        } else if *a == "-p" || *a == "--vhost" {
            vhost = it.next().ok_or("-p needs a vhost")?.to_string();
        } else {
            rest.push(*a);
        }
    }
    Ok((vhost, rest))
}

fn bool_text(b: bool) -> String {
    b.to_string()
}

/// Tags as rabbitmqctl prints them: `[administrator, management]`.
fn tags_text(tags: &[String]) -> String {
    format!("[{}]", tags.join(", "))
}

/// Arguments as a JSON object (`[]` when there are none, as rabbitmqctl prints an empty list).
fn args_text(args: &amq_protocol::types::FieldTable) -> String {
    let json = warren_broker::definitions::table_to_json(args);
    if json.is_empty() { "[]".into() } else { serde_json::Value::Object(json).to_string() }
}

/// Columns asked for, or the default ones; an unknown column is an error.
fn columns<'a>(asked: &[&'a str], default: &[&'a str], known: &[&str]) -> Result<Vec<&'a str>, String> {
    let cols: Vec<&str> = if asked.is_empty() { default.to_vec() } else { asked.to_vec() };
    match cols.iter().find(|c| !known.contains(c)) {
        Some(bad) => Err(format!("Invalid info key {bad}; valid keys are: {}", known.join(", "))),
        None => Ok(cols),
    }
}

/// Run a verb of this module; None when `args` is not one of them.
pub fn execute(broker: &Broker, args: &[&str], body: &[u8]) -> Option<Result<Reply, String>> {
    let (verb, rest) = args.split_first()?;
    if !COMMANDS.contains(verb) {
        return None;
    }
    Some(run(broker, verb, rest, body))
}

fn usage(verb: &str) -> String {
    let text = match verb {
        "add_user" | "change_password" => "<username> <password>",
        "delete_user" | "list_user_permissions" | "list_user_topic_permissions" => "<username>",
        "set_user_tags" => "<username> <tag> [...]",
        "add_vhost" | "delete_vhost" => "<vhost>",
        "set_permissions" => "[-p <vhost>] <username> <conf> <write> <read>",
        "clear_permissions" => "[-p <vhost>] <username>",
        "set_topic_permissions" => "[-p <vhost>] <username> <exchange> <write> <read>",
        "clear_topic_permissions" => "[-p <vhost>] <username> [<exchange>]",
        "close_connection" => "<connection name> <explanation>",
        "export_definitions" | "import_definitions" => "<file|->",
        _ => "[-p <vhost>] [<column> ...]",
    };
    format!("usage: {verb} {text}")
}

fn run(broker: &Broker, verb: &str, args: &[&str], body: &[u8]) -> Result<Reply, String> {
    let access = &broker.access;
    let (vhost, args) = split_vhost(args)?;
    let quiet = |r: Result<(), AccessError>| r.map(|()| Reply::quiet()).map_err(err);
    match (verb, args.as_slice()) {
        ("add_user", [user, password]) => quiet(access.add_user(user, password)),
        ("delete_user", [user]) => quiet(broker.delete_user(user)),
        ("change_password", [user, password]) => quiet(access.change_password(user, password)),
        ("set_user_tags", [user, tags @ ..]) => {
            let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
            quiet(access.set_user_tags(user, &tags))
        }
        ("list_users", []) => Ok(Reply::table(
            &["user", "tags"],
            access.users().into_iter().map(|u| vec![u.name, tags_text(&u.tags)]).collect(),
        )),
        ("add_vhost", [name]) => quiet(broker.add_vhost(name, "", Vec::new())),
        ("delete_vhost", [name]) => quiet(broker.delete_vhost(name)),
        ("list_vhosts", cols) => {
            let cols = columns(cols, &["name"], &["name", "description", "tags"])?;
            let rows = access
                .vhosts()
                .into_iter()
                .map(|v| {
                    cols.iter()
                        .map(|c| match *c {
                            "name" => v.name.clone(),
                            "description" => v.description.clone(),
                            _ => tags_text(&v.tags),
                        })
                        .collect()
                })
                .collect();
            Ok(Reply::table(&cols, rows))
        }
        ("set_permissions", [user, configure, write, read]) => quiet(access.set_permissions(PermissionDef {
            user: user.to_string(),
            vhost,
            configure: configure.to_string(),
            write: write.to_string(),
            read: read.to_string(),
        })),
        ("clear_permissions", [user]) => quiet(access.clear_permissions(user, &vhost)),
        ("list_permissions", []) => {
            check_vhost(broker, &vhost)?;
            let rows = access
                .permission_list()
                .into_iter()
                .filter(|p| p.vhost == vhost)
                .map(|p| vec![p.user, p.configure, p.write, p.read])
                .collect();
            Ok(Reply::table(&["user", "configure", "write", "read"], rows))
        }
        ("list_user_permissions", [user]) => {
            access.user(user).ok_or_else(|| err(AccessError::NoSuchUser(user.to_string())))?;
            let rows = access
                .permission_list()
                .into_iter()
                .filter(|p| p.user == *user)
                .map(|p| vec![p.vhost, p.configure, p.write, p.read])
                .collect();
            Ok(Reply::table(&["vhost", "configure", "write", "read"], rows))
        }
        ("set_topic_permissions", [user, exchange, write, read]) => {
            quiet(access.set_topic_permissions(TopicPermissionDef {
                user: user.to_string(),
                vhost,
                exchange: exchange.to_string(),
                write: write.to_string(),
                read: read.to_string(),
            }))
        }
        ("clear_topic_permissions", [user]) => quiet(access.clear_topic_permissions(user, &vhost, None)),
        ("clear_topic_permissions", [user, exchange]) => {
            quiet(access.clear_topic_permissions(user, &vhost, Some(exchange)))
        }
        ("list_topic_permissions", []) => {
            check_vhost(broker, &vhost)?;
            let rows = access
                .topic_permission_list()
                .into_iter()
                .filter(|p| p.vhost == vhost)
                .map(|p| vec![p.user, p.exchange, p.write, p.read])
                .collect();
            Ok(Reply::table(&["user", "exchange", "write", "read"], rows))
        }
        ("list_user_topic_permissions", [user]) => {
            access.user(user).ok_or_else(|| err(AccessError::NoSuchUser(user.to_string())))?;
            let rows = access
                .topic_permission_list()
                .into_iter()
                .filter(|p| p.user == *user)
                .map(|p| vec![p.vhost, p.exchange, p.write, p.read])
                .collect();
            Ok(Reply::table(&["vhost", "exchange", "write", "read"], rows))
        }
        ("list_queues", cols) => list_queues(broker, &vhost, cols),
        ("list_exchanges", cols) => list_exchanges(broker, &vhost, cols),
        ("list_bindings", cols) => list_bindings(broker, &vhost, cols),
        ("list_consumers", cols) => list_consumers(broker, &vhost, cols),
        ("list_connections", cols) => list_connections(broker, cols),
        ("close_connection", [name, explanation @ ..]) if !explanation.is_empty() => {
            if broker.close_connection(name, &explanation.join(" ")) {
                Ok(Reply::quiet())
            } else {
                Err(format!("no connection named {name:?} is open"))
            }
        }
        ("export_definitions", [_file]) => {
            let defs = broker.export_definitions();
            let json = serde_json::to_string(&defs).map_err(|e| e.to_string())?;
            Ok(Reply { summary: None, lines: vec![json] })
        }
        ("import_definitions", [_file]) => {
            let summary = broker.import_definitions(body).map_err(|e| e.to_string())?;
            Ok(Reply::done(format!("imported {summary}")))
        }
        _ => Err(usage(verb)),
    }
}

fn check_vhost(broker: &Broker, vhost: &str) -> Result<std::sync::Arc<warren_broker::vhost::VirtualHost>, String> {
    broker.vhost(vhost).ok_or_else(|| err(AccessError::NoSuchVhost(vhost.into())))
}

fn list_queues(broker: &Broker, vhost: &str, cols: &[&str]) -> Result<Reply, String> {
    const KNOWN: &[&str] = &[
        "name",
        "messages",
        "messages_ready",
        "consumers",
        "durable",
        "auto_delete",
        "exclusive",
        "arguments",
        "vhost",
        "type",
    ];
    let cols = columns(cols, &["name", "messages"], KNOWN)?;
    let v = check_vhost(broker, vhost)?;
    let rows = v
        .listed_queues()
        .into_iter()
        .map(|q| {
            let (messages, consumers) = q.counts();
            cols.iter()
                .map(|c| match *c {
                    "name" => q.name.to_string(),
                    "messages" | "messages_ready" => messages.to_string(),
                    "consumers" => consumers.to_string(),
                    "durable" => bool_text(q.durable),
                    "auto_delete" => bool_text(q.auto_delete),
                    "exclusive" => bool_text(q.exclusive_owner.is_some()),
                    "arguments" => args_text(&q.arguments),
                    "vhost" => q.vhost.clone(),
                    _ => (if q.is_stream() { "stream" } else { "classic" }).to_owned(),
                })
                .collect()
        })
        .collect();
    Ok(Reply::table(&cols, rows))
}

fn list_exchanges(broker: &Broker, vhost: &str, cols: &[&str]) -> Result<Reply, String> {
    const KNOWN: &[&str] = &["name", "type", "durable", "auto_delete", "internal", "arguments", "vhost"];
    let cols = columns(cols, &["name", "type"], KNOWN)?;
    let v = check_vhost(broker, vhost)?;
    let rows = v
        .exchange_list()
        .into_iter()
        .map(|x| {
            cols.iter()
                .map(|c| match *c {
                    "name" => x.name.to_string(),
                    "type" => x.kind.as_str().to_owned(),
                    "durable" => bool_text(x.durable),
                    "auto_delete" => bool_text(x.auto_delete),
                    "internal" => bool_text(x.internal),
                    "arguments" => args_text(&x.arguments),
                    _ => vhost.to_owned(),
                })
                .collect()
        })
        .collect();
    Ok(Reply::table(&cols, rows))
}

fn list_bindings(broker: &Broker, vhost: &str, cols: &[&str]) -> Result<Reply, String> {
    const KNOWN: &[&str] =
        &["source_name", "source_kind", "destination_name", "destination_kind", "routing_key", "arguments", "vhost"];
    let default = &KNOWN[..6];
    let cols = columns(cols, default, KNOWN)?;
    let v = check_vhost(broker, vhost)?;
    // (source, destination, destination kind, key, arguments); the default exchange's
    // implicit bindings first, as RabbitMQ lists them.
    let mut bindings: Vec<(String, String, &str, String, String)> = v
        .queue_list()
        .into_iter()
        .map(|q| (String::new(), q.name.to_string(), "queue", q.name.to_string(), "[]".to_owned()))
        .collect();
    for x in v.exchange_list().into_iter().filter(|x| !x.name.as_str().is_empty()) {
        for b in x.binding_list() {
            let (dest, kind) = match &b.dest {
                warren_broker::exchange::Destination::Queue(q) => (q.name.to_string(), "queue"),
                warren_broker::exchange::Destination::Exchange(d) => (d.name.to_string(), "exchange"),
            };
            bindings.push((x.name.to_string(), dest, kind, b.routing_key.to_string(), args_text(&b.arguments)));
        }
    }
    let rows = bindings
        .into_iter()
        .map(|(source, dest, kind, key, args)| {
            cols.iter()
                .map(|c| match *c {
                    "source_name" => source.clone(),
                    "source_kind" => "exchange".to_owned(),
                    "destination_name" => dest.clone(),
                    "destination_kind" => kind.to_owned(),
                    "routing_key" => key.clone(),
                    "arguments" => args.clone(),
                    _ => vhost.to_owned(),
                })
                .collect()
        })
        .collect();
    Ok(Reply::table(&cols, rows))
}

fn list_consumers(broker: &Broker, vhost: &str, cols: &[&str]) -> Result<Reply, String> {
    const KNOWN: &[&str] = &[
        "queue_name",
        "channel_pid",
        "consumer_tag",
        "ack_required",
        "prefetch_count",
        "active",
        "arguments",
        "exclusive",
    ];
    let cols = columns(cols, &KNOWN[..7], KNOWN)?;
    let v = check_vhost(broker, vhost)?;
    let mut rows = Vec::new();
    for q in v.queue_list() {
        for c in q.consumer_list() {
            rows.push(
                cols.iter()
                    .map(|col| match *col {
                        "queue_name" => q.name.to_string(),
                        // warren has no Erlang pids: connection id and channel number
                        "channel_pid" => format!("<{}.{}>", c.connection, c.channel),
                        "consumer_tag" => c.tag.to_string(),
                        "ack_required" => bool_text(c.ack_required),
                        "prefetch_count" => c.prefetch.to_string(),
                        "active" => "true".to_owned(),
                        "exclusive" => bool_text(c.exclusive),
                        _ => "[]".to_owned(),
                    })
                    .collect(),
            );
        }
    }
    Ok(Reply::table(&cols, rows))
}

fn list_connections(broker: &Broker, cols: &[&str]) -> Result<Reply, String> {
    const KNOWN: &[&str] = &["name", "user", "vhost", "peer_host", "peer_port", "state", "connected_at", "pid"];
    let cols = columns(cols, &["user", "peer_host", "peer_port", "state"], KNOWN)?;
    let rows = broker
        .connection_list()
        .into_iter()
        .map(|c| {
            cols.iter()
                .map(|col| match *col {
                    "name" => c.name(),
                    "user" => c.user.clone(),
                    "vhost" => c.vhost.clone(),
                    "peer_host" => c.peer.ip().to_string(),
                    "peer_port" => c.peer.port().to_string(),
                    "state" => "running".to_owned(),
                    "connected_at" => c.connected_at.to_string(),
                    _ => c.id.to_string(),
                })
                .collect()
        })
        .collect();
    Ok(Reply::table(&cols, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_ok(broker: &Broker, line: &[&str]) -> Vec<String> {
        execute(broker, line, b"").expect("a known verb").expect("succeeds").lines
    }

    #[tokio::test]
    async fn users_vhosts_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(Default::default(), dir.path()).unwrap();
        assert_eq!(run_ok(&broker, &["list_users"]), vec!["user\ttags", "guest\t[administrator]"]);
        run_ok(&broker, &["add_user", "bob", "s3cret"]);
        run_ok(&broker, &["set_user_tags", "bob", "monitoring", "management"]);
        run_ok(&broker, &["add_vhost", "v1"]);
        run_ok(&broker, &["set_permissions", "-p", "v1", "bob", "^bob", "", ".*"]);
        run_ok(&broker, &["set_topic_permissions", "-p", "v1", "bob", "amq.topic", "^{username}\\.", ".*"]);
        assert_eq!(run_ok(&broker, &["list_vhosts"]), vec!["name", "/", "v1"]);
        assert_eq!(
            run_ok(&broker, &["list_permissions", "-p", "v1"]),
            vec!["user\tconfigure\twrite\tread", "bob\t^bob\t\t.*"]
        );
        assert_eq!(
            run_ok(&broker, &["list_user_permissions", "bob"]),
            vec!["vhost\tconfigure\twrite\tread", "v1\t^bob\t\t.*"]
        );
        assert_eq!(
            run_ok(&broker, &["list_topic_permissions", "-p", "v1"]),
            vec!["user\texchange\twrite\tread", "bob\tamq.topic\t^{username}\\.\t.*"]
        );
        assert_eq!(run_ok(&broker, &["list_users"])[1], "bob\t[monitoring, management]");
        assert!(run_ok(&broker, &["list_queues"]).is_empty(), "an empty listing prints nothing");
        assert!(run_ok(&broker, &["list_exchanges", "-p", "v1"]).contains(&"amq.topic\ttopic".to_owned()));
        for bad in [
            vec!["add_user", "bob", "x"],
            vec!["set_permissions", "-p", "nope", "bob", ".*", ".*", ".*"],
            vec!["set_permissions", "nobody", ".*", ".*", ".*"],
            vec!["set_permissions", "bob", "(", ".*", ".*"],
            vec!["delete_user", "nobody"],
            vec!["list_queues", "-p", "nope"],
            vec!["list_queues", "bogus_column"],
            vec!["set_permissions", "bob"],
        ] {
            assert!(execute(&broker, &bad, b"").expect("known").is_err(), "{bad:?} should fail");
        }
        run_ok(&broker, &["clear_permissions", "-p", "v1", "bob"]);
        assert!(run_ok(&broker, &["list_permissions", "-p", "v1"]).is_empty());
        run_ok(&broker, &["delete_vhost", "v1"]);
        assert_eq!(run_ok(&broker, &["list_vhosts"]), vec!["name", "/"]);
        assert!(execute(&broker, &["frobnicate"], b"").is_none());
    }
}
