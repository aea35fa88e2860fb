//! `/api/bindings` (all, per vhost), `/api/bindings/{vhost}/e/{source}/q/{queue}` and
//! `/e/{source}/e/{exchange}` (GET list, POST create with a `Location`), one binding by its
//! `properties_key` (GET, DELETE), and the bindings of an exchange (as source or
//! destination) or of a queue.
//!
//! A `properties_key` is the routing key percent-encoded (`~` when empty), followed for a
//! binding with arguments by `~` and a hash of them. RabbitMQ hashes the Erlang term
//! (`erlang:phash2`); warren hashes the arguments' JSON, so keys of bindings with arguments
//! differ from RabbitMQ's (clients take them from listings, never compute them).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};
use warp::reply::Response;
use warren_broker::definitions::{check_short, json_to_table, table_to_json};
use warren_broker::exchange::Destination;
use warren_broker::vhost::VirtualHost;

use crate::Ctx;
use crate::error::ApiError;
use crate::exchanges::{self, from_path};
use crate::reply::{Req, arguments, created_at, no_content, ok};
use crate::route::Dest;

/// mochiweb's `quote_plus` keeps these (and RabbitMQ then encodes `~` too).
const QUOTE_PLUS: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'-').remove(b'_');
/// What a path segment may carry unencoded (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'-').remove(b'_').remove(b'~');

/// A binding, as listings show it.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingRow {
    pub vhost: String,
    pub source: String,
    pub destination: String,
    pub destination_type: &'static str,
    pub routing_key: String,
    pub arguments: Map<String, Value>,
}

/// `quote_plus`: space as `+`, everything but letters, digits and `.-_` as `%XX`.
fn quote_plus(s: &str) -> String {
    utf8_percent_encode(s, QUOTE_PLUS).to_string().replace("%20", "+")
}

/// FNV-1a, 32 bits: a stable hash of the arguments (see the module docs).
fn args_hash(arguments: &Map<String, Value>) -> String {
    use base64::Engine;
    let text = Value::Object(arguments.clone()).to_string();
    let hash = text.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.to_be_bytes())
}

/// RabbitMQ's `pack_binding_props`.
pub fn properties_key(routing_key: &str, arguments: &Map<String, Value>) -> String {
    let key = quote_plus(routing_key);
    match (key.is_empty(), arguments.is_empty()) {
        (true, true) => "~".into(),
        (_, true) => key,
        _ => format!("{key}~{}", args_hash(arguments)),
    }
}

impl BindingRow {
    pub fn properties_key(&self) -> String {
        properties_key(&self.routing_key, &self.arguments)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "source": self.source,
            "vhost": self.vhost,
            "destination": self.destination,
            "destination_type": self.destination_type,
            "routing_key": self.routing_key,
            "arguments": self.arguments,
            "properties_key": self.properties_key(),
        })
    }

    fn goes_to(&self, dest: &Dest) -> bool {
        self.destination_type == dest.kind() && self.destination == dest.name()
    }
}

/// Every binding of a vhost: the default exchange's implicit ones first, then by source.
pub fn of_vhost(v: &VirtualHost) -> Vec<BindingRow> {
    let mut rows: Vec<BindingRow> = v
        .listed_queues()
        .iter()
        .map(|q| BindingRow {
            vhost: v.name.clone(),
            source: String::new(),
            destination: q.name.to_string(),
            destination_type: "queue",
            routing_key: q.name.to_string(),
            arguments: Map::new(),
        })
        .collect();
    let mut explicit = Vec::new();
    for x in v.exchange_list().into_iter().filter(|x| !x.name.as_str().is_empty()) {
        for b in x.binding_list() {
            let (destination, destination_type) = match &b.dest {
                Destination::Queue(q) => (q.name.to_string(), "queue"),
                Destination::Exchange(d) => (d.name.to_string(), "exchange"),
            };
            explicit.push(BindingRow {
                vhost: v.name.clone(),
                source: x.name.to_string(),
                destination,
                destination_type,
                routing_key: b.routing_key.to_string(),
                arguments: table_to_json(&b.arguments),
            });
        }
    }
    explicit.sort_by(|a, b| {
        (&a.source, &a.destination, a.destination_type, &a.routing_key, a.properties_key()).cmp(&(
            &b.source,
            &b.destination,
            b.destination_type,
            &b.routing_key,
            b.properties_key(),
        ))
    });
    rows.extend(explicit);
    rows
}

fn answer(req: &Req, rows: impl Iterator<Item = BindingRow>) -> Result<Response, ApiError> {
    let items = rows.map(|r| r.to_json()).collect();
    Ok(ok(req.list()?.apply(items)?))
}

pub fn list(ctx: &Ctx, req: &Req, vhost: Option<&str>) -> Result<Response, ApiError> {
    let vhosts = req.user.listed_vhosts(&ctx.broker, vhost)?;
    answer(req, vhosts.iter().flat_map(|v| of_vhost(v)))
}

/// `/api/exchanges/{vhost}/{name}/bindings/source|destination`.
pub fn of_exchange(ctx: &Ctx, req: &Req, vhost: &str, name: &str, as_source: bool) -> Result<Response, ApiError> {
    let v = req.vhost(ctx, vhost)?;
    let name = from_path(name);
    exchanges::find(&v, name)?;
    let rows = of_vhost(&v).into_iter().filter(|r| {
        if as_source { r.source == name } else { r.destination_type == "exchange" && r.destination == name }
    });
    answer(req, rows)
}

/// `/api/queues/{vhost}/{name}/bindings`.
pub fn of_queue(ctx: &Ctx, req: &Req, vhost: &str, name: &str) -> Result<Response, ApiError> {
    let v = req.vhost(ctx, vhost)?;
    if !v.has_queue(name) {
        return Err(ApiError::NotFound);
    }
    answer(req, of_vhost(&v).into_iter().filter(|r| r.destination_type == "queue" && r.destination == name))
}

/// Both ends exist (404 otherwise).
fn check_ends(v: &VirtualHost, source: &str, dest: &Dest) -> Result<(), ApiError> {
    exchanges::find(v, source)?;
    let exists = match dest {
        Dest::Queue(q) => v.has_queue(q),
        Dest::Exchange(x) => v.has_exchange(x),
    };
    if exists { Ok(()) } else { Err(ApiError::NotFound) }
}

fn between_rows(v: &VirtualHost, source: &str, dest: &Dest) -> Vec<BindingRow> {
    of_vhost(v).into_iter().filter(|r| r.source == source && r.goes_to(dest)).collect()
}

pub fn between(ctx: &Ctx, req: &Req, vhost: &str, source: &str, dest: &Dest) -> Result<Response, ApiError> {
    let v = req.vhost(ctx, vhost)?;
    let source = from_path(source);
    check_ends(&v, source, dest)?;
    answer(req, between_rows(&v, source, dest).into_iter())
}

/// POST: `routing_key`, `arguments`; 201 with `Location: {destination}/{properties_key}`
/// (relative, as RabbitMQ sends it).
pub fn create(ctx: &Ctx, req: &Req, vhost: &str, source: &str, dest: &Dest) -> Result<Response, ApiError> {
    let session = req.session(ctx, vhost)?;
    let source = from_path(source);
    let body = req.object()?;
    let routing_key = match body.get("routing_key") {
        None | Some(Value::Null) => "",
        Some(Value::String(k)) => k.as_str(),
        Some(_) => return Err(ApiError::BadRequest("routing_key must be a string".into())),
    };
    check_short("routing key", routing_key).map_err(ApiError::BadRequest)?;
    let args = arguments(&body)?;
    let key = properties_key(routing_key, &table_to_json(&args));
    session.bind(source, &dest.target(), routing_key, args).map_err(ApiError::from_declare)?;
    let location = format!("{}/{}", utf8_percent_encode(dest.name(), SEGMENT), utf8_percent_encode(&key, SEGMENT));
    Ok(created_at(&location))
}

fn find(v: &VirtualHost, source: &str, dest: &Dest, props: &str) -> Result<BindingRow, ApiError> {
    between_rows(v, source, dest).into_iter().find(|r| r.properties_key() == props).ok_or(ApiError::NotFound)
}

pub fn show(ctx: &Ctx, req: &Req, vhost: &str, source: &str, dest: &Dest, props: &str) -> Result<Response, ApiError> {
    let v = req.vhost(ctx, vhost)?;
    let row = find(&v, from_path(source), dest, props)?;
    Ok(ok(req.list()?.prune(row.to_json())))
}

pub fn delete(ctx: &Ctx, req: &Req, vhost: &str, source: &str, dest: &Dest, props: &str) -> Result<Response, ApiError> {
    let session = req.session(ctx, vhost)?;
    let source = from_path(source);
    let row = find(&session.vhost, source, dest, props)?;
    let args = json_to_table(&row.arguments);
    session.unbind(source, &dest.target(), &row.routing_key, args).map_err(ApiError::from_declare)?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_keys_as_rabbitmq() {
        let none = Map::new();
        assert_eq!(properties_key("", &none), "~");
        assert_eq!(properties_key("q1", &none), "q1");
        assert_eq!(properties_key("a.#", &none), "a.%23");
        assert_eq!(properties_key("a b/c~d+é*", &none), "a+b%2Fc%7Ed%2B%C3%A9%2A");
        let mut args = Map::new();
        args.insert("x".into(), json!(1));
        let k = properties_key("", &args);
        assert!(k.starts_with('~') && k.len() == 7, "{k}");
        assert_eq!(k, properties_key("", &args), "stable");
        assert!(properties_key("rk", &args).starts_with("rk~"));
    }

    #[test]
    fn locations_encode_the_key_again() {
        let loc = |dest: &str, key: &str| {
            format!("{}/{}", utf8_percent_encode(dest, SEGMENT), utf8_percent_encode(key, SEGMENT))
        };
        assert_eq!(loc("q1", "a.%23"), "q1/a.%2523");
        assert_eq!(loc("q1", "a+b%2Fc%7Ed%2B%C3%A9%2A"), "q1/a%2Bb%252Fc%257Ed%252B%25C3%25A9%252A");
        assert_eq!(loc("q1", "~9nmLZQ"), "q1/~9nmLZQ");
    }
}
