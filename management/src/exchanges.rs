//! `/api/exchanges` (all, per vhost, one: GET/PUT/DELETE with `if-unused`) and
//! `/api/exchanges/{vhost}/{name}/publish` (POST, answers `{"routed": bool}`). The default
//! exchange is `amq.default` in paths and `""` in bodies.
//!
//! Left out: `message_stats`, `incoming`, `outgoing` (rates); `user_who_performed_action`
//! (warren does not record who declared what); `policy`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};
use warp::reply::Response;
use warren_broker::definitions::{check_short, table_to_json};
use warren_broker::exchange::{Exchange, ExchangeKind};
use warren_broker::vhost::ExchangeSpec;

use crate::error::ApiError;
use crate::reply::{Req, arguments, no_content, ok, put_result, truthy};
use crate::{Ctx, props};

/// How long a publish waits for a persistent message to reach the disk before answering.
const PUBLISH_SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// The exchange a path names: `amq.default` is the default exchange.
pub fn from_path(name: &str) -> &str {
    if name == "amq.default" { "" } else { name }
}

pub fn exchange_json(vhost: &str, x: &Exchange) -> Value {
    json!({
        "name": x.name.as_str(),
        "vhost": vhost,
        "type": x.kind.as_str(),
        "durable": x.durable,
        "auto_delete": x.auto_delete,
        "internal": x.internal,
        "arguments": table_to_json(&x.arguments),
        "message_stats": crate::rates::of_object(&x.stats, crate::rates::EXCHANGE),
    })
}

pub fn list(ctx: &Ctx, req: &Req, vhost: Option<&str>) -> Result<Response, ApiError> {
    let params = req.list()?;
    let vhosts = req.user.listed_vhosts(&ctx.broker, vhost)?;
    let items = vhosts.iter().flat_map(|v| v.exchange_list().into_iter().map(|x| exchange_json(&v.name, &x))).collect();
    Ok(ok(params.apply(items)?))
}

/// The exchange, or 404.
pub fn find(v: &warren_broker::vhost::VirtualHost, name: &str) -> Result<Arc<Exchange>, ApiError> {
    v.exchange_list().into_iter().find(|x| x.name.as_str() == name).ok_or(ApiError::NotFound)
}

pub fn show(ctx: &Ctx, req: &Req, vhost: &str, name: &str) -> Result<Response, ApiError> {
    let v = req.vhost(ctx, vhost)?;
    let x = find(&v, from_path(name))?;
    Ok(ok(req.list()?.prune(exchange_json(vhost, &x))))
}

/// PUT: `type` (default direct), `durable`, `auto_delete`, `internal`, `arguments`.
pub fn declare(ctx: &Ctx, req: &Req, vhost: &str, name: &str) -> Result<Response, ApiError> {
    let (session, body) = req.declaring(ctx, vhost, "exchange name", name)?;
    let kind = match body.get("type") {
        None | Some(Value::Null) => "direct",
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(ApiError::BadRequest("type must be a string".into())),
    };
    if ExchangeKind::parse(kind).is_none() {
        return Err(ApiError::BadRequest(format!("invalid exchange type '{kind}'")));
    }
    let spec = ExchangeSpec {
        name: from_path(name),
        kind,
        passive: false,
        durable: truthy(body.get("durable")).unwrap_or(false),
        auto_delete: truthy(body.get("auto_delete")).unwrap_or(false),
        internal: truthy(body.get("internal")).unwrap_or(false),
        arguments: arguments(&body)?,
    };
    let new = session.declare_exchange(spec).map_err(ApiError::from_declare)?;
    Ok(put_result(new))
}

pub fn delete(ctx: &Ctx, req: &Req, vhost: &str, name: &str) -> Result<Response, ApiError> {
    let session = req.session(ctx, vhost)?;
    let name = from_path(name);
    find(&session.vhost, name)?;
    session.delete_exchange(name, req.query.flag("if-unused")).map_err(ApiError::from_declare)?;
    Ok(no_content())
}

/// POST .../publish: `routing_key`, `payload`, `payload_encoding` (`string` or `base64`),
/// `properties`. Answers once the message is safe, as RabbitMQ's publish (it waits for
/// the publisher confirm) does.
pub async fn publish(ctx: &Ctx, req: &Req, vhost: &str, name: &str) -> Result<Response, ApiError> {
    let session = req.session(ctx, vhost)?;
    let body = req.object()?;
    let missing: Vec<&str> = ["routing_key", "properties", "payload", "payload_encoding"]
        .into_iter()
        .filter(|k| !body.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::keys_missing(&missing));
    }
    let routing_key = match body.get("routing_key") {
        Some(Value::String(k)) => k.as_str(),
        _ => return Err(ApiError::BadRequest("routing_key must be a string".into())),
    };
    check_short("routing key", routing_key).map_err(ApiError::BadRequest)?;
    let payload = body.get("payload").and_then(Value::as_str).unwrap_or_default();
    let payload = match body.get("payload_encoding").and_then(Value::as_str) {
        Some("string") => Bytes::copy_from_slice(payload.as_bytes()),
        Some("base64") => Bytes::from(
            STANDARD.decode(payload).map_err(|_| ApiError::BadRequest("payload is not valid base64".into()))?,
        ),
        _ => return Err(ApiError::BadRequest("Unsupported payload_encoding. Please use string or base64.".into())),
    };
    let properties = props::from_json(body.get("properties"))?;
    let outcome = session.publish(from_path(name), routing_key, properties, payload).map_err(ApiError::from_publish)?;
    if let (Some(ticket), Some(store)) = (outcome.ticket, ctx.broker.store.as_ref()) {
        let mut synced = store.journal.synced();
        let on_disk = tokio::time::timeout(PUBLISH_SYNC_TIMEOUT, synced.wait_for(|s| *s >= ticket)).await;
        if !matches!(on_disk, Ok(Ok(_))) {
            return Err(ApiError::Internal("the message was not confirmed in time".into()));
        }
    }
    Ok(ok(json!({"routed": outcome.routed})))
}
