//! Prometheus text exposition (format 0.0.4) of the broker's state, with the names, types and
//! HELP texts of RabbitMQ 3.10's `rabbitmq_prometheus` plugin, so that its Grafana dashboards
//! and alert rules work unchanged: `/metrics` aggregates (one series per family, as the
//! plugin's default mode), `/metrics/per-object` adds a `{vhost, queue}` series per queue.
//!
//! [`Snapshot::take`] reads the broker once per scrape; [`Snapshot::render`] is a pure function
//! of it (unit-tested below).
//!
//! Differences from RabbitMQ: the `rabbitmq_global_*` counters carry `protocol="amqp091"`
//! but no `queue_type` (warren counts per connection, not per queue type); the
//! `rabbitmq_channel_*` counters count over every connection ever (RabbitMQ's drop a
//! channel's share when it closes); `rabbitmq_queue_messages_published_total` per object is
//! labelled `{vhost, queue}` (RabbitMQ's adds the channel and exchange). Erlang-only families
//! (reductions, GC, schedulers, Mnesia, Raft) and the churn counters are left out.

use std::fmt::Write as _;

use warren_broker::alarm;
use warren_broker::stats::Counts;

use crate::{Ctx, RABBITMQ_VERSION, overview};

/// The Content-Type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One queue's figures (per-object series).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueRow {
    pub vhost: String,
    pub name: String,
    pub ready: u64,
    pub unacked: u64,
    pub paged_out: u64,
    pub consumers: u64,
    pub published: u64,
}

/// Everything a scrape shows, read from the broker at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub node: String,
    pub cluster: String,
    /// Message counts over every connection ever.
    pub totals: Counts,
    pub connections: u64,
    pub channels: u64,
    /// Unacknowledged deliveries over every open channel.
    pub channel_unacked: u64,
    /// Publishes not confirmed yet over every open channel.
    pub channel_unconfirmed: u64,
    /// Bytes read from and written to the open connections' sockets.
    pub connection_bytes_in: u64,
    pub connection_bytes_out: u64,
    pub queues: Vec<QueueRow>,
    pub resident_bytes: Option<u64>,
    pub memory_limit: Option<u64>,
    pub disk_free: Option<u64>,
    pub disk_limit: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub uptime_seconds: f64,
    pub alarm: alarm::AlarmState,
}

impl Snapshot {
    /// Read the broker's state now.
    pub fn take(ctx: &Ctx) -> Self {
        let broker = &ctx.broker;
        let outstanding = broker.outstanding();
        let queues = broker
            .vhost_list()
            .iter()
            .flat_map(|v| v.listed_queues())
            .map(|q| {
                let stats = q.stats();
                QueueRow {
                    vhost: q.vhost.clone(),
                    name: q.name.as_str().to_owned(),
                    ready: stats.ready,
                    unacked: outstanding.of(&q).0,
                    paged_out: stats.paged_out,
                    consumers: stats.consumers as u64,
                    published: q.message_stats().publish.get(),
                }
            })
            .collect();
        let connections = broker.connection_list();
        let (mut channels, mut channel_unacked, mut channel_unconfirmed) = (0u64, 0u64, 0u64);
        let (mut connection_bytes_in, mut connection_bytes_out) = (0u64, 0u64);
        for c in &connections {
            connection_bytes_in += c.sink.octets.recv.get();
            connection_bytes_out += c.sink.octets.send.get();
            for ch in c.channels() {
                channels += 1;
                channel_unacked += ch.unacked as u64;
                channel_unconfirmed += ch.unconfirmed;
            }
        }
        let limits = broker.limits();
        let disk = limits.as_ref().and_then(|l| l.disk.clone());
        let disk_dir = disk.as_ref().map(|(dir, _)| dir.clone()).or_else(|| ctx.config.data_dir.clone());
        let (open_fds, max_fds) = overview::file_descriptors();
        Self {
            node: ctx.node.clone(),
            cluster: ctx.node.clone(),
            totals: broker.message_totals(),
            connections: connections.len() as u64,
            channels,
            channel_unacked,
            channel_unconfirmed,
            connection_bytes_in,
            connection_bytes_out,
            queues,
            resident_bytes: alarm::resident_bytes().ok(),
            memory_limit: limits.as_ref().and_then(|l| l.memory),
            disk_free: disk_dir.and_then(|dir| alarm::free_disk_bytes(&dir).ok()),
            disk_limit: disk.map(|(_, limit)| limit),
            open_fds,
            max_fds,
            uptime_seconds: ctx.started.elapsed().as_secs_f64(),
            alarm: *broker.alarm().borrow(),
        }
    }

    /// The exposition: aggregated, or with a series per queue (`per_object`).
    pub fn render(&self, per_object: bool) -> String {
        let mut out = Exposition::default();
        self.node_families(&mut out);
        self.queue_families(&mut out, per_object);
        self.channel_families(&mut out);
        self.global_families(&mut out);
        self.identity_families(&mut out);
        out.text
    }

    fn node_families(&self, out: &mut Exposition) {
        let mut gauge = |name: &str, help: &str, value: Option<u64>| {
            if let Some(v) = value {
                out.single(name, Kind::Gauge, help, &[], Value::Int(v));
            }
        };
        gauge("rabbitmq_process_open_fds", "Open file descriptors", self.open_fds);
        gauge("rabbitmq_process_open_tcp_sockets", "Open TCP sockets", Some(self.connections));
        gauge("rabbitmq_process_resident_memory_bytes", "Memory used in bytes", self.resident_bytes);
        gauge("rabbitmq_disk_space_available_bytes", "Disk space available in bytes", self.disk_free);
        gauge("rabbitmq_process_max_fds", "Open file descriptors limit", self.max_fds);
        gauge("rabbitmq_resident_memory_limit_bytes", "Memory high watermark in bytes", self.memory_limit);
        gauge("rabbitmq_disk_space_available_limit_bytes", "Free disk space low watermark in bytes", self.disk_limit);
        out.single(
            "rabbitmq_erlang_uptime_seconds",
            Kind::Gauge,
            "Node uptime",
            &[],
            Value::Float(self.uptime_seconds),
        );
        let flag = |on: bool| Value::Int(u64::from(on));
        let fd = "is 1 if file descriptor limit alarm is in effect";
        out.single("rabbitmq_alarms_file_descriptor_limit", Kind::Untyped, fd, &[], flag(false));
        let disk = self.alarm == Some(alarm::LOW_ON_DISK);
        out.single(
            "rabbitmq_alarms_free_disk_space_watermark",
            Kind::Untyped,
            "is 1 if free disk space watermark alarm is in effect",
            &[],
            flag(disk),
        );
        let memory = self.alarm == Some(alarm::LOW_ON_MEMORY);
        out.single(
            "rabbitmq_alarms_memory_used_watermark",
            Kind::Untyped,
            "is 1 if VM memory watermark alarm is in effect",
            &[],
            flag(memory),
        );
    }

    fn queue_families(&self, out: &mut Exposition, per_object: bool) {
        type Field = fn(&QueueRow) -> u64;
        let families: [(&str, Kind, &str, Field); 6] = [
            ("rabbitmq_queue_messages_ready", Kind::Gauge, "Messages ready to be delivered to consumers", |q| q.ready),
            (
                "rabbitmq_queue_messages_unacked",
                Kind::Gauge,
                "Messages delivered to consumers but not yet acknowledged",
                |q| q.unacked,
            ),
            (
                "rabbitmq_queue_messages",
                Kind::Gauge,
                "Sum of ready and unacknowledged messages - total queue depth",
                |q| q.ready + q.unacked,
            ),
            ("rabbitmq_queue_messages_paged_out", Kind::Gauge, "Messages paged out to disk", |q| q.paged_out),
            ("rabbitmq_queue_consumers", Kind::Gauge, "Consumers on a queue", |q| q.consumers),
            (
                "rabbitmq_queue_messages_published_total",
                Kind::Counter,
                "Total number of messages published to queues",
                |q| q.published,
            ),
        ];
        for (name, kind, help, field) in families {
            out.header(name, kind, help);
            if per_object {
                for q in &self.queues {
                    out.sample(name, &[("vhost", &q.vhost), ("queue", &q.name)], Value::Int(field(q)));
                }
            } else {
                out.sample(name, &[], Value::Int(self.queues.iter().map(field).sum()));
            }
        }
    }

    fn channel_families(&self, out: &mut Exposition) {
        let t = &self.totals;
        let consumers: u64 = self.queues.iter().map(|q| q.consumers).sum();
        let gauges = [
            ("rabbitmq_connections", "Connections currently open", self.connections),
            ("rabbitmq_channels", "Channels currently open", self.channels),
            ("rabbitmq_consumers", "Consumers currently connected", consumers),
            ("rabbitmq_queues", "Queues available", self.queues.len() as u64),
            ("rabbitmq_connection_channels", "Channels on a connection", self.channels),
            ("rabbitmq_channel_consumers", "Consumers on a channel", consumers),
            ("rabbitmq_channel_messages_unacked", "Delivered but not yet acknowledged messages", self.channel_unacked),
            (
                "rabbitmq_channel_messages_unconfirmed",
                "Published but not yet confirmed messages",
                self.channel_unconfirmed,
            ),
        ];
        for (name, help, value) in gauges {
            out.single(name, Kind::Gauge, help, &[], Value::Int(value));
        }
        let counters = [
            (
                "rabbitmq_connection_incoming_bytes_total",
                "Total number of bytes received on a connection",
                self.connection_bytes_in,
            ),
            (
                "rabbitmq_connection_outgoing_bytes_total",
                "Total number of bytes sent on a connection",
                self.connection_bytes_out,
            ),
            (
                "rabbitmq_channel_messages_published_total",
                "Total number of messages published into an exchange on a channel",
                t.publish,
            ),
            (
                "rabbitmq_channel_messages_confirmed_total",
                "Total number of messages published into an exchange and confirmed on the channel",
                t.confirm,
            ),
            (
                "rabbitmq_channel_messages_unroutable_returned_total",
                "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable",
                t.return_unroutable,
            ),
            (
                "rabbitmq_channel_messages_unroutable_dropped_total",
                "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
                t.drop_unroutable,
            ),
            (
                "rabbitmq_channel_get_ack_total",
                "Total number of messages fetched with basic.get in manual acknowledgement mode",
                t.get,
            ),
            (
                "rabbitmq_channel_get_total",
                "Total number of messages fetched with basic.get in automatic acknowledgement mode",
                t.get_no_ack,
            ),
            (
                "rabbitmq_channel_messages_delivered_ack_total",
                "Total number of messages delivered to consumers in manual acknowledgement mode",
                t.deliver,
            ),
            (
                "rabbitmq_channel_messages_delivered_total",
                "Total number of messages delivered to consumers in automatic acknowledgement mode",
                t.deliver_no_ack,
            ),
            (
                "rabbitmq_channel_messages_redelivered_total",
                "Total number of messages redelivered to consumers",
                t.redeliver,
            ),
            ("rabbitmq_channel_messages_acked_total", "Total number of messages acknowledged by consumers", t.ack),
        ];
        for (name, help, value) in counters {
            out.single(name, Kind::Counter, help, &[], Value::Int(value));
        }
    }

    fn global_families(&self, out: &mut Exposition) {
        let t = &self.totals;
        let routed = t.publish.saturating_sub(t.return_unroutable + t.drop_unroutable);
        let consumers: u64 = self.queues.iter().map(|q| q.consumers).sum();
        let families = [
            ("messages_received_total", Kind::Counter, "Total number of messages received from publishers", t.publish),
            ("messages_routed_total", Kind::Counter, "Total number of messages routed to queues or streams", routed),
            (
                "messages_unroutable_dropped_total",
                Kind::Counter,
                "Total number of messages published as non-mandatory into an exchange and dropped as unroutable",
                t.drop_unroutable,
            ),
            (
                "messages_unroutable_returned_total",
                Kind::Counter,
                "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable",
                t.return_unroutable,
            ),
            ("messages_confirmed_total", Kind::Counter, "Total number of messages confirmed to publishers", t.confirm),
            ("consumers", Kind::Gauge, "Current number of consumers", consumers),
            (
                "messages_delivered_total",
                Kind::Counter,
                "Total number of messages delivered to consumers",
                t.deliver_get(),
            ),
            (
                "messages_delivered_consume_manual_ack_total",
                Kind::Counter,
                "Total number of messages delivered to consumers using basic.consume with manual acknowledgment",
                t.deliver,
            ),
            (
                "messages_delivered_consume_auto_ack_total",
                Kind::Counter,
                "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment",
                t.deliver_no_ack,
            ),
            (
                "messages_delivered_get_manual_ack_total",
                Kind::Counter,
                "Total number of messages delivered to consumers using basic.get with manual acknowledgment",
                t.get,
            ),
            (
                "messages_delivered_get_auto_ack_total",
                Kind::Counter,
                "Total number of messages delivered to consumers using basic.get with automatic acknowledgment",
                t.get_no_ack,
            ),
            (
                "messages_redelivered_total",
                Kind::Counter,
                "Total number of messages redelivered to consumers",
                t.redeliver,
            ),
            ("messages_acknowledged_total", Kind::Counter, "Total number of messages acknowledged by consumers", t.ack),
        ];
        for (name, kind, help, value) in families {
            let name = format!("rabbitmq_global_{name}");
            out.single(&name, kind, help, &[("protocol", "amqp091")], Value::Int(value));
        }
    }

    fn identity_families(&self, out: &mut Exposition) {
        let product_version = env!("CARGO_PKG_VERSION");
        let build = [
            ("product_name", "warren"),
            ("product_version", product_version),
            ("rabbitmq_version", RABBITMQ_VERSION),
            ("prometheus_plugin_version", RABBITMQ_VERSION),
        ];
        out.single("rabbitmq_build_info", Kind::Untyped, "RabbitMQ & Erlang/OTP version info", &build, Value::Int(1));
        let identity = [("rabbitmq_node", self.node.as_str()), ("rabbitmq_cluster", self.cluster.as_str())];
        out.single(
            "rabbitmq_identity_info",
            Kind::Untyped,
            "RabbitMQ node & cluster identity info",
            &identity,
            Value::Int(1),
        );
    }
}

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Untyped,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
        }
    }
}

/// A sample's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

/// The text being written: `# HELP` and `# TYPE` once per family, then its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    pub text: String,
}

impl Exposition {
    pub fn header(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.as_str());
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: Value) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{label}=\"{}\"", escape_label(v));
            }
            self.text.push('}');
        }
        let _ = match value {
            Value::Int(n) => writeln!(self.text, " {n}"),
            Value::Float(f) if f.is_nan() => writeln!(self.text, " NaN"),
            Value::Float(f) if f.is_infinite() => writeln!(self.text, " {}Inf", if f > 0.0 { "+" } else { "-" }),
            Value::Float(f) => writeln!(self.text, " {f}"),
        };
    }

    /// A family of one sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, labels: &[(&str, &str)], value: Value) {
        self.header(name, kind, help);
        self.sample(name, labels, value);
    }
}

/// A label value: backslash, double quote and line feed escaped.
pub fn escape_label(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

/// A HELP text: backslash and line feed escaped.
pub fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn snapshot() -> Snapshot {
        let totals = Counts {
            publish: 10,
            confirm: 9,
            deliver: 4,
            deliver_no_ack: 3,
            get: 2,
            get_no_ack: 1,
            ack: 5,
            redeliver: 1,
            return_unroutable: 1,
            drop_unroutable: 2,
            ..Counts::default()
        };
        let q = |vhost: &str, name: &str, ready, unacked| QueueRow {
            vhost: vhost.into(),
            name: name.into(),
            ready,
            unacked,
            paged_out: 0,
            consumers: 1,
            published: ready + unacked,
        };
        Snapshot {
            node: "warren@host".into(),
            cluster: "warren@host".into(),
            totals,
            connections: 2,
            channels: 3,
            channel_unacked: 4,
            queues: vec![q("/", "orders", 5, 1), q("chat", "we\"ird\\name\nx", 2, 3)],
            resident_bytes: Some(1 << 20),
            disk_free: Some(1 << 30),
            uptime_seconds: 1.5,
            ..Snapshot::default()
        }
    }

    /// Every sample line: name{labels} -> value.
    fn samples(text: &str) -> HashMap<String, String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').expect("a sample line");
                (series.to_owned(), value.to_owned())
            })
            .collect()
    }

    #[test]
    fn aggregated_names_and_values_are_rabbitmqs() {
        let text = snapshot().render(false);
        let s = samples(&text);
        let get = |k: &str| s.get(k).unwrap_or_else(|| panic!("no {k} in\n{text}")).as_str();
        assert_eq!(get("rabbitmq_connections"), "2");
        assert_eq!(get("rabbitmq_channels"), "3");
        assert_eq!(get("rabbitmq_consumers"), "2");
        assert_eq!(get("rabbitmq_queues"), "2");
        assert_eq!(get("rabbitmq_queue_messages_ready"), "7");
        assert_eq!(get("rabbitmq_queue_messages_unacked"), "4");
        assert_eq!(get("rabbitmq_queue_messages"), "11");
        assert_eq!(get("rabbitmq_queue_messages_published_total"), "11");
        assert_eq!(get(r#"rabbitmq_global_messages_received_total{protocol="amqp091"}"#), "10");
        assert_eq!(get(r#"rabbitmq_global_messages_routed_total{protocol="amqp091"}"#), "7");
        assert_eq!(get(r#"rabbitmq_global_messages_confirmed_total{protocol="amqp091"}"#), "9");
        assert_eq!(get(r#"rabbitmq_global_messages_delivered_total{protocol="amqp091"}"#), "10");
        assert_eq!(get(r#"rabbitmq_global_messages_delivered_consume_manual_ack_total{protocol="amqp091"}"#), "4");
        assert_eq!(get(r#"rabbitmq_global_messages_delivered_consume_auto_ack_total{protocol="amqp091"}"#), "3");
        assert_eq!(get(r#"rabbitmq_global_messages_delivered_get_manual_ack_total{protocol="amqp091"}"#), "2");
        assert_eq!(get(r#"rabbitmq_global_messages_delivered_get_auto_ack_total{protocol="amqp091"}"#), "1");
        assert_eq!(get(r#"rabbitmq_global_messages_redelivered_total{protocol="amqp091"}"#), "1");
        assert_eq!(get(r#"rabbitmq_global_messages_acknowledged_total{protocol="amqp091"}"#), "5");
        assert_eq!(get(r#"rabbitmq_global_messages_unroutable_dropped_total{protocol="amqp091"}"#), "2");
        assert_eq!(get(r#"rabbitmq_global_messages_unroutable_returned_total{protocol="amqp091"}"#), "1");
        assert_eq!(get("rabbitmq_process_resident_memory_bytes"), "1048576");
        assert_eq!(get("rabbitmq_disk_space_available_bytes"), "1073741824");
        assert_eq!(get("rabbitmq_erlang_uptime_seconds"), "1.5");
        assert_eq!(get(r#"rabbitmq_identity_info{rabbitmq_node="warren@host",rabbitmq_cluster="warren@host"}"#), "1");
        assert!(text.contains("rabbitmq_build_info{product_name=\"warren\","), "{text}");
        // Unknown figures are left out, not shown as 0.
        assert!(!text.contains("rabbitmq_resident_memory_limit_bytes"), "{text}");
        // Aggregated: no per-queue series.
        assert!(!text.contains("queue=\""), "{text}");
    }

    #[test]
    fn help_and_type_come_once_per_family_before_its_samples() {
        for per_object in [false, true] {
            let text = snapshot().render(per_object);
            let mut seen = std::collections::HashSet::new();
            let mut current = String::new();
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("# HELP ") {
                    let name = rest.split(' ').next().unwrap().to_owned();
                    assert!(seen.insert(name.clone()), "HELP twice for {name}");
                    current = name;
                } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                    let (name, kind) = rest.split_once(' ').unwrap();
                    assert_eq!(name, current, "TYPE follows its HELP");
                    assert!(["counter", "gauge", "untyped"].contains(&kind), "{line}");
                } else {
                    let name = line.split(['{', ' ']).next().unwrap();
                    assert_eq!(name, current, "a sample of {name} under {current}'s header");
                }
            }
            assert!(text.ends_with('\n'));
            assert!(seen.len() > 40, "{} families", seen.len());
        }
    }

    #[test]
    fn per_object_labels_each_queue_and_escapes_label_values() {
        let text = snapshot().render(true);
        let s = samples(&text);
        assert_eq!(s[r#"rabbitmq_queue_messages_ready{vhost="/",queue="orders"}"#], "5");
        assert_eq!(s[r#"rabbitmq_queue_messages_unacked{vhost="/",queue="orders"}"#], "1");
        assert_eq!(s[r#"rabbitmq_queue_consumers{vhost="/",queue="orders"}"#], "1");
        assert_eq!(s[r#"rabbitmq_queue_messages_published_total{vhost="/",queue="orders"}"#], "6");
        assert_eq!(s[r#"rabbitmq_queue_messages_ready{vhost="chat",queue="we\"ird\\name\nx"}"#], "2");
        // The node-wide families are there too.
        assert_eq!(s["rabbitmq_queues"], "2");
    }

    #[test]
    fn escaping_follows_the_exposition_format() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("line\nnext"), r"line\nnext");
        assert_eq!(escape_help("back\\slash \"quoted\"\n"), "back\\\\slash \"quoted\"\\n");
        let mut out = Exposition::default();
        out.sample("x", &[], Value::Float(f64::INFINITY));
        out.sample("y", &[], Value::Float(f64::NAN));
        assert_eq!(out.text, "x +Inf\ny NaN\n");
    }
}
