//! `/api/queues` (all, per vhost, one: GET/PUT/DELETE with `if-unused`/`if-empty`),
//! `/api/queues/{vhost}/{name}/contents` (DELETE: purge) and `/get` (POST).
//!
//! Left out: `message_stats` and every `*_details` rate, `consumer_utilisation`,
//! `consumer_capacity`, `idle_since` (sampled figures); `memory`, `reductions`,
//! `garbage_collection`, `backing_queue_status` (Erlang's); `messages_persistent`,
//! `message_bytes`, `message_bytes_ready`, `message_bytes_paged_out` (bodies paged out to
//! disk are not counted in memory); `incoming` and `deliveries` (rates).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use warp::reply::Response;
use warren_broker::admin::ConnectionInfo;
use warren_broker::definitions::table_to_json;
use warren_broker::inspect::Outstanding;
use warren_broker::queue::Queue;
use warren_broker::session::Settle;
use warren_broker::vhost::VirtualHost;

use crate::connections::{connections_by_id, consumer_json};
use crate::error::ApiError;
use crate::reply::{Req, arguments, no_content, ok, put_result, truthy};
use crate::{Ctx, props};

/// What a queue listing needs beside the queue: unacked counts and connections.
pub struct Snapshot {
    outstanding: Outstanding,
    connections: HashMap<u64, ConnectionInfo>,
}

impl Snapshot {
    pub fn take(ctx: &Ctx) -> Self {
        Self { outstanding: ctx.broker.outstanding(), connections: connections_by_id(ctx) }
    }
}

pub fn queue_json(ctx: &Ctx, q: &Arc<Queue>, snap: &Snapshot) -> Value {
    let stats = q.stats();
    let (unacked, unacked_bytes) = snap.outstanding.of(q);
    let consumers = q.consumer_list();
    let exclusive_tag = consumers.iter().find(|c| c.exclusive).map(|c| c.tag.to_string());
    let single_active = if q.args.single_active_consumer { consumers.first().map(|c| c.tag.to_string()) } else { None };
    let ready_ram = stats.ready - stats.paged_out;
    let mut body = json!({
        "name": q.name.as_str(),
        "vhost": q.vhost,
        "node": ctx.node,
        "type": if q.is_stream() { "stream" } else { "classic" },
        "durable": q.durable,
        "auto_delete": q.auto_delete,
        "exclusive": q.exclusive_owner.is_some(),
        "arguments": table_to_json(&q.arguments),
        "state": "running",
        "policy": null,
        "operator_policy": null,
        "effective_policy_definition": {},
        "consumers": stats.consumers,
        "exclusive_consumer_tag": exclusive_tag,
        "single_active_consumer_tag": single_active,
        "head_message_timestamp": null,
        "messages": stats.ready + unacked,
        "messages_ready": stats.ready,
        "messages_unacknowledged": unacked,
        "messages_ram": ready_ram + unacked,
        "messages_ready_ram": ready_ram,
        "messages_unacknowledged_ram": unacked,
        "messages_paged_out": stats.paged_out,
        "message_bytes_ram": stats.ready_bytes_in_memory + unacked_bytes,
        "message_bytes_unacknowledged": unacked_bytes,
        "message_stats": crate::rates::of_object(q.message_stats(), crate::rates::QUEUE),
    });
    if let Some(owner) = q.exclusive_owner.and_then(|id| snap.connections.get(&id))
        && let Value::Object(map) = &mut body
    {
        map.insert(
            "owner_pid_details".into(),
            json!({"name": owner.name(), "peer_host": owner.peer.ip().to_string(), "peer_port": owner.peer.port()}),
        );
    }
    body
}

pub fn list(ctx: &Ctx, req: &Req, vhost: Option<&str>) -> Result<Response, ApiError> {
    let params = req.list()?;
    let vhosts = req.user.listed_vhosts(&ctx.broker, vhost)?;
    let snap = Snapshot::take(ctx);
    let items = vhosts.iter().flat_map(|v| v.listed_queues()).map(|q| queue_json(ctx, &q, &snap)).collect();
    Ok(ok(params.apply(items)?))
}

fn find(v: &VirtualHost, name: &str) -> Result<Arc<Queue>, ApiError> {
    v.queue_list().into_iter().find(|q| q.name.as_str() == name).ok_or(ApiError::NotFound)
}

pub fn show(ctx: &Ctx, req: &Req, vhost: &str, name: &str) -> Result<Response, ApiError> {
    let v = req.vhost(ctx, vhost)?;
    let q = find(&v, name)?;
    let snap = Snapshot::take(ctx);
    let mut body = queue_json(ctx, &q, &snap);
    let details: Vec<Value> = q
        .consumer_list()
        .iter()
        .map(|c| consumer_json(ctx, vhost, name, c, snap.connections.get(&c.connection)))
        .collect();
    if let Value::Object(map) = &mut body {
        map.insert("consumer_details".into(), Value::Array(details));
    }
    Ok(ok(req.list()?.prune(body)))
}

/// PUT: declare (201) or check an existing queue's equivalence (204).
pub fn declare(ctx: &Ctx, req: &Req, vhost: &str, name: &str) -> Result<Response, ApiError> {
    let (session, body) = req.declaring(ctx, vhost, "queue name", name)?;
    let durable = truthy(body.get("durable")).unwrap_or(false);
    let auto_delete = truthy(body.get("auto_delete")).unwrap_or(false);
    let mut args = arguments(&body)?;
    // RabbitMQ 3.10's UI and rabbitmqadmin name the type beside the arguments too.
    if let Some(Value::String(kind)) = body.get("type")
        && !args.contains_key("x-queue-type")
        && kind != "classic"
    {
        args.insert("x-queue-type".into(), amq_protocol::types::AMQPValue::LongString(kind.as_bytes().to_vec().into()));
    }
    let new = session.declare_queue(name, durable, auto_delete, args).map_err(ApiError::from_declare)?;
    Ok(put_result(new))
}

/// DELETE, with `if-unused` and `if-empty` (a missing queue is a 404).
pub fn delete(ctx: &Ctx, req: &Req, vhost: &str, name: &str) -> Result<Response, ApiError> {
    let session = req.session(ctx, vhost)?;
    find(&session.vhost, name)?;
    let (if_unused, if_empty) = (req.query.flag("if-unused"), req.query.flag("if-empty"));
    session.delete_queue(name, if_unused, if_empty).map_err(ApiError::from_declare)?;
    Ok(no_content())
}

/// DELETE .../contents: purge.
pub fn purge(ctx: &Ctx, req: &Req, vhost: &str, name: &str) -> Result<Response, ApiError> {
    let session = req.session(ctx, vhost)?;
    find(&session.vhost, name)?;
    session.purge(name).map_err(ApiError::from_declare)?;
    Ok(no_content())
}

/// POST .../get: `count`, `ackmode`, `encoding` (`auto`: UTF-8 text as a string, anything
/// else base64), `truncate` (bytes of payload shown; `payload_bytes` is the full size).
pub fn get(ctx: &Ctx, req: &Req, vhost: &str, name: &str) -> Result<Response, ApiError> {
    let session = req.session(ctx, vhost)?;
    let body = req.object()?;
    let missing: Vec<&str> = ["count", "ackmode", "encoding"].into_iter().filter(|k| !body.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(ApiError::keys_missing(&missing));
    }
    let count = integer(body.get("count")).ok_or_else(|| ApiError::BadRequest("count must be a number".into()))?;
    let settle = match body.get("ackmode").and_then(Value::as_str) {
        Some("ack_requeue_true" | "reject_requeue_true") => Settle::Requeue,
        Some("ack_requeue_false") => Settle::Ack,
        Some("reject_requeue_false") => Settle::Discard,
        _ => return Err(ApiError::BadRequest("Unsupported ackmode".into())),
    };
    let base64_only = match body.get("encoding").and_then(Value::as_str) {
        Some("auto") => false,
        Some("base64") => true,
        _ => return Err(ApiError::BadRequest("Unsupported encoding. Please use auto or base64.".into())),
    };
    let truncate = match body.get("truncate") {
        None | Some(Value::Null) => None,
        Some(v) => Some(integer(Some(v)).ok_or_else(|| ApiError::BadRequest("truncate must be a number".into()))?),
    };
    let got = session.get(name, count, settle).map_err(ApiError::from_get)?;
    let items = got
        .iter()
        .map(|g| {
            let body = &g.msg.body;
            let shown = &body[..truncate.map_or(body.len(), |t| t.min(body.len()))];
            let (payload, encoding) = match std::str::from_utf8(shown) {
                Ok(text) if !base64_only => (text.to_owned(), "string"),
                _ => (STANDARD.encode(shown), "base64"),
            };
            json!({
                "payload_bytes": body.len(),
                "redelivered": g.redelivered,
                "exchange": g.msg.exchange.as_str(),
                "routing_key": g.msg.routing_key.as_str(),
                "message_count": g.remaining,
                "properties": props::to_json(&g.msg.properties),
                "payload": payload,
                "payload_encoding": encoding,
            })
        })
        .collect();
    Ok(ok(Value::Array(items)))
}

/// A non-negative integer, as a number or a numeric string.
fn integer(v: Option<&Value>) -> Option<usize> {
    match v? {
        Value::Number(n) => n.as_u64().map(|n| n as usize),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
