//! Definitions in RabbitMQ's JSON format (`rabbitmqctl export_definitions` /
//! `import_definitions`, the management API's `/api/definitions`): users with their password
//! hashes, vhosts, permissions, topic permissions, durable queues, exchanges and bindings. A
//! file exported from RabbitMQ 3.10 imports into warren, and warren's export imports into
//! RabbitMQ. Parameters and policies are exported empty and ignored on import.

use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use warren_persistence::{PermissionDef, TopicPermissionDef, UserDef};

use crate::Broker;
use crate::access::{AccessError, password};
use crate::exchange::Destination;
use crate::vhost::{ExchangeSpec, QueueSpec};

/// The RabbitMQ version warren's definitions claim to come from (the format's version).
pub const RABBIT_VERSION: &str = "3.10.8";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Definitions {
    pub rabbit_version: Option<String>,
    pub rabbitmq_version: Option<String>,
    pub users: Vec<UserJson>,
    pub vhosts: Vec<VhostJson>,
    pub permissions: Vec<PermissionDef>,
    pub topic_permissions: Vec<TopicPermissionDef>,
    pub parameters: Vec<Value>,
    pub global_parameters: Vec<Value>,
    pub policies: Vec<Value>,
    pub queues: Vec<QueueJson>,
    pub exchanges: Vec<ExchangeJson>,
    pub bindings: Vec<BindingJson>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UserJson {
    pub name: String,
    #[serde(default)]
    pub password_hash: String,
    /// Accepted on import (RabbitMQ accepts a clear-text password too); never exported.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    #[serde(default = "default_hashing")]
    pub hashing_algorithm: String,
    /// A list since 3.9; "a,b" before.
    #[serde(default)]
    pub tags: Tags,
    #[serde(default)]
    pub limits: Value,
}

fn default_hashing() -> String {
    password::SHA256.into()
}

/// Tags as a list, or as the comma-separated string older versions (and vhost metadata
/// created without tags) use.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tags(pub Vec<String>);

impl Serialize for Tags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => Tags(s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect()),
            Value::Array(items) => Tags(items.into_iter().filter_map(|v| v.as_str().map(String::from)).collect()),
            _ => Tags::default(),
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct VhostMetadata {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct VhostJson {
    pub name: String,
    #[serde(default)]
    pub limits: Value,
    #[serde(default)]
    pub metadata: VhostMetadata,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct QueueJson {
    pub name: String,
    pub vhost: String,
    /// "classic" or "stream" (RabbitMQ 3.9+); older files have none.
    #[serde(rename = "type", default = "classic")]
    pub kind: String,
    #[serde(default = "yes")]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

fn yes() -> bool {
    true
}

fn classic() -> String {
    "classic".into()
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ExchangeJson {
    pub name: String,
    pub vhost: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "yes")]
    pub durable: bool,
    #[serde(default)]
    pub auto_delete: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BindingJson {
    pub source: String,
    pub vhost: String,
    pub destination: String,
    pub destination_type: String,
    #[serde(default)]
    pub routing_key: String,
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not a definitions file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Access(#[from] AccessError),
    #[error("{what}: {error}")]
    Declare { what: String, error: crate::error::AmqpError },
    #[error("{0}")]
    Invalid(String),
}

/// The longest name or field-table key AMQP carries (a short string).
pub const MAX_SHORT: usize = 255;

/// Refuse a name AMQP cannot carry (longer than a short string).
pub fn check_short(what: &str, name: &str) -> Result<(), String> {
    if name.len() > MAX_SHORT {
        return Err(format!(
            "{what} '{}...' is longer than {MAX_SHORT} bytes",
            crate::names::truncate_short(name.into())
        ));
    }
    Ok(())
}

/// Refuse a table (arguments, headers) with a key AMQP cannot carry, at any depth.
pub fn check_table(map: &Map<String, Value>) -> Result<(), String> {
    fn check_value(v: &Value) -> Result<(), String> {
        match v {
            Value::Object(m) => check_table(m),
            Value::Array(items) => items.iter().try_for_each(check_value),
            _ => Ok(()),
        }
    }
    for (k, v) in map {
        check_short("table key", k)?;
        check_value(v)?;
    }
    Ok(())
}

impl Definitions {
    /// Whether every queue, exchange and binding can be declared over AMQP (names, keys and
    /// argument keys fit in short strings): checked before anything is imported.
    pub fn check(&self) -> Result<(), String> {
        for q in &self.queues {
            check_short("queue name", &q.name)?;
            check_table(&q.arguments)?;
        }
        for x in &self.exchanges {
            check_short("exchange name", &x.name)?;
            check_table(&x.arguments)?;
        }
        for b in &self.bindings {
            check_short("binding source", &b.source)?;
            check_short("binding destination", &b.destination)?;
            check_short("routing key", &b.routing_key)?;
            check_table(&b.arguments)?;
        }
        Ok(())
    }
}

/// A field table as RabbitMQ's JSON shows it: numbers, strings, booleans, lists, objects.
pub fn table_to_json(table: &FieldTable) -> Map<String, Value> {
    table.inner().iter().map(|(k, v)| (k.as_str().to_owned(), value_to_json(v))).collect()
}

fn value_to_json(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(x) => (*x).into(),
        AMQPValue::ShortShortUInt(x) => (*x).into(),
        AMQPValue::ShortInt(x) => (*x).into(),
        AMQPValue::ShortUInt(x) => (*x).into(),
        AMQPValue::LongInt(x) => (*x).into(),
        AMQPValue::LongUInt(x) => (*x).into(),
        AMQPValue::LongLongInt(x) => (*x).into(),
        AMQPValue::Timestamp(x) => (*x).into(),
        AMQPValue::Float(x) => f64::from(*x).into(),
        AMQPValue::Double(x) => (*x).into(),
        AMQPValue::ShortString(s) => s.as_str().into(),
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into(),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_to_json).collect()),
        AMQPValue::FieldTable(t) => Value::Object(table_to_json(t)),
        AMQPValue::ByteArray(b) => String::from_utf8_lossy(b.as_slice()).into(),
        AMQPValue::DecimalValue(d) => (f64::from(d.value) / 10f64.powi(i32::from(d.scale))).into(),
        AMQPValue::Void => Value::Null,
    }
}

/// RabbitMQ's `rabbit_misc:to_amqp_table`: integers become signed 64-bit, other numbers
/// doubles, strings long strings.
pub fn json_to_table(map: &Map<String, Value>) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in map {
        table.insert(k.as_str().into(), json_to_value(v));
    }
    table
}

fn json_to_value(v: &Value) -> AMQPValue {
    match v {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_bytes().to_vec())),
        Value::Array(items) => {
            let mut array = FieldArray::default();
            for item in items {
                array.push(json_to_value(item));
            }
            AMQPValue::FieldArray(array)
        }
        Value::Object(map) => AMQPValue::FieldTable(json_to_table(map)),
    }
}

/// Exchanges that exist in every vhost and are never exported.
fn is_builtin_exchange(name: &str) -> bool {
    name.is_empty() || name.starts_with("amq.")
}

impl Broker {
    /// Everything definable, as `rabbitmqctl export_definitions` writes it.
    pub fn export_definitions(&self) -> Definitions {
        let mut defs = Definitions {
            rabbit_version: Some(RABBIT_VERSION.into()),
            rabbitmq_version: Some(RABBIT_VERSION.into()),
            ..Default::default()
        };
        defs.users = self
            .access
            .users()
            .into_iter()
            .map(|u| UserJson {
                name: u.name,
                password_hash: u.password_hash,
                password: None,
                hashing_algorithm: u.hashing_algorithm,
                tags: Tags(u.tags),
                limits: Value::Object(Map::new()),
            })
            .collect();
        defs.vhosts = self
            .access
            .vhosts()
            .into_iter()
            .map(|v| VhostJson {
                name: v.name,
                limits: Value::Array(Vec::new()),
                metadata: VhostMetadata { description: v.description, tags: Tags(v.tags) },
            })
            .collect();
        defs.permissions = self.access.permission_list();
        defs.topic_permissions = self.access.topic_permission_list();
        for vhost in self.vhost_list() {
            for q in vhost.queue_list() {
                if q.durable && q.exclusive_owner.is_none() {
                    defs.queues.push(QueueJson {
                        name: q.name.to_string(),
                        vhost: vhost.name.clone(),
                        kind: if q.is_stream() { "stream".into() } else { classic() },
                        durable: true,
                        auto_delete: q.auto_delete,
                        arguments: table_to_json(&q.arguments),
                    });
                }
            }
            for x in vhost.exchange_list() {
                if is_builtin_exchange(x.name.as_str()) {
                    continue;
                }
                if x.durable {
                    defs.exchanges.push(ExchangeJson {
                        name: x.name.to_string(),
                        vhost: vhost.name.clone(),
                        kind: x.kind.as_str().into(),
                        durable: true,
                        auto_delete: x.auto_delete,
                        internal: x.internal,
                        arguments: table_to_json(&x.arguments),
                    });
                }
            }
            for x in vhost.exchange_list() {
                if x.name.as_str().is_empty() || !x.durable {
                    continue;
                }
                for b in x.binding_list() {
                    let (destination, destination_type) = match &b.dest {
                        Destination::Queue(q) if q.durable && q.exclusive_owner.is_none() => {
                            (q.name.to_string(), "queue")
                        }
                        Destination::Exchange(d) if d.durable => (d.name.to_string(), "exchange"),
                        _ => continue,
                    };
                    defs.bindings.push(BindingJson {
                        source: x.name.to_string(),
                        vhost: vhost.name.clone(),
                        destination,
                        destination_type: destination_type.into(),
                        routing_key: b.routing_key.to_string(),
                        arguments: table_to_json(&b.arguments),
                    });
                }
            }
        }
        defs
    }

    /// Import definitions (RabbitMQ's `import_definitions`): what exists is updated or left
    /// as it is, nothing is deleted. Stops at the first thing that cannot be imported.
    pub fn import_definitions(&self, json: &[u8]) -> Result<ImportSummary, ImportError> {
        let defs: Definitions = serde_json::from_slice(json)?;
        defs.check().map_err(ImportError::Invalid)?;
        let mut summary = ImportSummary::default();
        for v in &defs.vhosts {
            self.add_vhost(&v.name, &v.metadata.description, v.metadata.tags.0.clone())?;
            summary.vhosts += 1;
        }
        for u in &defs.users {
            let def = match &u.password {
                Some(clear) if u.password_hash.is_empty() => crate::access::new_user(&u.name, clear, u.tags.0.clone()),
                _ => UserDef {
                    name: u.name.clone(),
                    password_hash: u.password_hash.clone(),
                    hashing_algorithm: u.hashing_algorithm.clone(),
                    tags: u.tags.0.clone(),
                },
            };
            self.access.put_user(def)?;
            summary.users += 1;
        }
        for p in &defs.permissions {
            self.access.set_permissions(p.clone())?;
            summary.permissions += 1;
        }
        for t in &defs.topic_permissions {
            self.access.set_topic_permissions(t.clone())?;
            summary.permissions += 1;
        }
        let vhost = |name: &str| self.vhost(name).ok_or_else(|| AccessError::NoSuchVhost(name.into()));
        for x in &defs.exchanges {
            if is_builtin_exchange(&x.name) {
                tracing::warn!(exchange = %x.name, "skipping the import of an exchange with a reserved name");
                continue;
            }
            let spec = ExchangeSpec {
                name: &x.name,
                kind: &x.kind,
                passive: false,
                durable: x.durable,
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: json_to_table(&x.arguments),
            };
            vhost(&x.vhost)?
                .declare_exchange(spec)
                .map_err(|error| ImportError::Declare { what: crate::names::exchange_res(&x.name, &x.vhost), error })?;
            summary.exchanges += 1;
        }
        for q in &defs.queues {
            let mut arguments = json_to_table(&q.arguments);
            if q.kind == "stream" && !arguments.contains_key("x-queue-type") {
                arguments.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from(&b"stream"[..])));
            }
            let spec = QueueSpec {
                name: &q.name,
                server_named: false,
                passive: false,
                durable: q.durable,
                exclusive: false,
                auto_delete: q.auto_delete,
                arguments,
            };
            vhost(&q.vhost)?
                .declare_queue(spec, 0)
                .map_err(|error| ImportError::Declare { what: crate::names::queue_res(&q.name, &q.vhost), error })?;
            summary.queues += 1;
        }
        for b in &defs.bindings {
            let v = vhost(&b.vhost)?;
            let args = json_to_table(&b.arguments);
            let done = if b.destination_type == "exchange" {
                v.bind_exchange(&b.destination, &b.source, &b.routing_key, args)
            } else {
                v.bind_queue(&b.destination, &b.source, &b.routing_key, args, 0)
            };
            done.map_err(|error| ImportError::Declare {
                what: format!("binding of {} to '{}'", crate::names::exchange_res(&b.source, &b.vhost), b.destination),
                error,
            })?;
            summary.bindings += 1;
        }
        Ok(summary)
    }
}

/// How much an import brought in.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub users: usize,
    pub vhosts: usize,
    pub permissions: usize,
    pub exchanges: usize,
    pub queues: usize,
    pub bindings: usize,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} users, {} vhosts, {} permissions, {} exchanges, {} queues, {} bindings",
            self.users, self.vhosts, self.permissions, self.exchanges, self.queues, self.bindings
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip_as_rabbitmq_writes_them() {
        let json: Map<String, Value> =
            serde_json::from_str(r#"{"x-message-ttl": 60000, "x-dead-letter-exchange": "dlx", "f": 1.5, "b": true}"#)
                .unwrap();
        let table = json_to_table(&json);
        assert_eq!(table.inner().get("x-message-ttl"), Some(&AMQPValue::LongLongInt(60000)));
        assert_eq!(table_to_json(&table), json);
    }

    #[test]
    fn names_too_long_for_amqp_are_refused_before_import() {
        let long = "x".repeat(256);
        let broker = Broker::new(crate::BrokerConfig::default());
        for json in [
            format!(r#"{{"queues": [{{"name": "{long}", "vhost": "/"}}]}}"#),
            format!(r#"{{"queues": [{{"name": "q", "vhost": "/", "arguments": {{"a": {{"{long}": 1}}}}}}]}}"#),
            format!(
                r#"{{"bindings": [{{"source": "amq.direct", "vhost": "/", "destination": "q", "destination_type": "queue", "routing_key": "{long}"}}]}}"#
            ),
        ] {
            assert!(matches!(broker.import_definitions(json.as_bytes()), Err(ImportError::Invalid(_))), "{json}");
        }
        assert!(!broker.vhost("/").unwrap().has_queue("q"), "nothing imported");
        assert!(check_short("n", &"é".repeat(127)).is_ok());
    }

    #[test]
    fn tags_as_list_or_string() {
        let u: UserJson =
            serde_json::from_str(r#"{"name":"a","password_hash":"","tags":"administrator, management"}"#).unwrap();
        assert_eq!(u.tags.0, vec!["administrator", "management"]);
        let v: VhostJson = serde_json::from_str(r#"{"name":"v1","metadata":{"description":"","tags":""}}"#).unwrap();
        assert!(v.metadata.tags.0.is_empty());
    }
}
