//! `/api/connections` (GET, and DELETE to close one with 320 CONNECTION_FORCED),
//! `/api/vhosts/{vhost}/connections`, `/api/connections/{name}/channels`, `/api/channels`
//! (per vhost too, and one by name), `/api/consumers` (per vhost too).
//!
//! A `management` user sees its own connections and channels only; `monitoring` sees all.
//! Connections carry their socket's byte counts and rates (`recv_oct`, `send_oct`).
//! Left out (frame counters, Erlang process data): `recv_cnt`, `send_cnt`, `send_pend`,
//! `reductions`, `garbage_collection`, `message_stats`, `idle_since`; on channels
//! `messages_uncommitted`, `acks_uncommitted` (the channel task's own state).

use std::collections::HashMap;

use serde_json::{Value, json};
use warp::reply::Response;
use warren_broker::admin::{CloseTarget, ConnectionInfo};
use warren_broker::definitions::table_to_json;
use warren_broker::inspect::ChannelInfo;
use warren_broker::queue::ConsumerInfo;

use crate::Ctx;
use crate::error::ApiError;
use crate::reply::{Req, no_content, ok};

/// What RabbitMQ's management plugin tells a connection it closes.
const CLOSED_VIA_API: &str = "Closed via management plugin";

pub fn connection_json(ctx: &Ctx, c: &ConnectionInfo) -> Value {
    let name = c.client_properties.inner().get("connection_name").and_then(warren_broker::args::as_text);
    json!({
        "name": c.name(),
        "node": ctx.node,
        "type": "network",
        "state": "running",
        "protocol": "AMQP 0-9-1",
        "user": c.user,
        "user_who_performed_action": c.user,
        "vhost": c.vhost,
        "auth_mechanism": c.auth_mechanism,
        "host": c.local.ip().to_string(),
        "port": c.local.port(),
        "peer_host": c.peer.ip().to_string(),
        "peer_port": c.peer.port(),
        "ssl": c.tls,
        "ssl_protocol": null,
        "ssl_key_exchange": null,
        "ssl_cipher": null,
        "ssl_hash": null,
        "peer_cert_subject": null,
        "peer_cert_issuer": null,
        "peer_cert_validity": null,
        "connected_at": c.connected_at,
        "timeout": c.heartbeat,
        "frame_max": c.frame_max,
        "channel_max": c.channel_max,
        "channels": c.channels().len(),
        "client_properties": table_to_json(&c.client_properties),
        "user_provided_name": name,
        "recv_oct": c.sink.octets.recv.get(),
        "recv_oct_details": {"rate": c.sink.octets.recv.rate()},
        "send_oct": c.sink.octets.send.get(),
        "send_oct_details": {"rate": c.sink.octets.send.rate()},
    })
}

/// The connections `req.user` may see, of `vhost` or all.
fn visible(ctx: &Ctx, req: &Req, vhost: Option<&str>) -> Result<Vec<ConnectionInfo>, ApiError> {
    if let Some(v) = vhost {
        req.user.require_vhost(&ctx.broker, v)?;
        ctx.broker.vhost(v).ok_or(ApiError::NotFound)?;
    }
    let mut list: Vec<ConnectionInfo> = ctx
        .broker
        .connection_list()
        .into_iter()
        .filter(|c| vhost.is_none_or(|v| c.vhost == v) && req.user.sees_connection_of(&c.user))
        .collect();
    list.sort_by_key(|c| c.name());
    Ok(list)
}

pub fn list(ctx: &Ctx, req: &Req, vhost: Option<&str>) -> Result<Response, ApiError> {
    let items = visible(ctx, req, vhost)?.iter().map(|c| connection_json(ctx, c)).collect();
    Ok(ok(req.list()?.apply(items)?))
}

/// The named connection, if the user may see it (RabbitMQ's `is_authorized_user`: its owner,
/// `monitoring` to read, `administrator` to close).
fn named(ctx: &Ctx, req: &Req, name: &str, closing: bool) -> Result<ConnectionInfo, ApiError> {
    let c = ctx.broker.connection_named(name).ok_or(ApiError::NotFound)?;
    let allowed = c.user == req.user.name || if closing { req.user.is_admin() } else { req.user.is_monitor() };
    if !allowed {
        return Err(ApiError::NotAuthorised("User not authorised to access object".into()));
    }
    Ok(c)
}

pub fn show(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    let c = named(ctx, req, name, false)?;
    Ok(ok(connection_json(ctx, &c)))
}

/// Close it with 320 CONNECTION_FORCED and the `X-Reason` header's text (RabbitMQ's default
/// otherwise), as `warren ctl close_connection` does.
pub fn close(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    let c = named(ctx, req, name, true)?;
    let reason = req.reason.as_deref().filter(|r| !r.is_empty()).unwrap_or(CLOSED_VIA_API);
    tracing::info!(connection = %name, by = %req.user.name, reason, "closing a connection (management API)");
    ctx.broker.force_close(CloseTarget::Connection(c.id), reason);
    Ok(no_content())
}

fn channel_json(ctx: &Ctx, c: &ConnectionInfo, ch: &ChannelInfo) -> Value {
    let conn = c.name();
    json!({
        "name": format!("{conn} ({})", ch.number),
        "number": ch.number,
        "node": ctx.node,
        "state": "running",
        "user": c.user,
        "user_who_performed_action": c.user,
        "vhost": c.vhost,
        "connection_details": {"name": conn, "peer_host": c.peer.ip().to_string(), "peer_port": c.peer.port()},
        "consumer_count": ch.consumers,
        "messages_unacknowledged": ch.unacked,
        "messages_unconfirmed": ch.unconfirmed,
        "prefetch_count": ch.prefetch,
        "global_prefetch_count": ch.global_prefetch,
        "confirm": ch.confirm,
        "transactional": ch.transactional,
    })
}

pub fn channels_of(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    let c = named(ctx, req, name, false)?;
    let items = c.channels().iter().map(|ch| channel_json(ctx, &c, ch)).collect();
    Ok(ok(req.list()?.apply(items)?))
}

pub fn channels(ctx: &Ctx, req: &Req, vhost: Option<&str>) -> Result<Response, ApiError> {
    let mut items = Vec::new();
    for c in visible(ctx, req, vhost)? {
        items.extend(c.channels().iter().map(|ch| channel_json(ctx, &c, ch)));
    }
    Ok(ok(req.list()?.apply(items)?))
}

/// `"<connection name> (<number>)"`.
fn split_channel_name(name: &str) -> Option<(&str, u16)> {
    let (conn, rest) = name.rsplit_once(" (")?;
    let number = rest.strip_suffix(')')?.parse().ok()?;
    Some((conn, number))
}

pub fn channel(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    let (conn, number) = split_channel_name(name).ok_or(ApiError::NotFound)?;
    let c = named(ctx, req, conn, false)?;
    let ch = c.channels().into_iter().find(|ch| ch.number == number).ok_or(ApiError::NotFound)?;
    Ok(ok(channel_json(ctx, &c, &ch)))
}

/// A consumer, with the connection it belongs to when that is still open.
pub fn consumer_json(ctx: &Ctx, vhost: &str, queue: &str, c: &ConsumerInfo, conn: Option<&ConnectionInfo>) -> Value {
    let channel_details = match conn {
        Some(conn) => json!({
            "name": format!("{} ({})", conn.name(), c.channel),
            "number": c.channel,
            "node": ctx.node,
            "connection_name": conn.name(),
            "peer_host": conn.peer.ip().to_string(),
            "peer_port": conn.peer.port(),
            "user": conn.user,
        }),
        None => json!({"number": c.channel, "node": ctx.node}),
    };
    json!({
        "consumer_tag": c.tag.as_str(),
        "queue": {"name": queue, "vhost": vhost},
        "channel_details": channel_details,
        "ack_required": c.ack_required,
        "exclusive": c.exclusive,
        "prefetch_count": c.prefetch,
        "active": true,
        "activity_status": "up",
        "arguments": {},
        // RabbitMQ's delivery acknowledgement timeout: warren has none (0 here).
        "consumer_timeout": 0,
    })
}

/// Open connections by id.
pub fn connections_by_id(ctx: &Ctx) -> HashMap<u64, ConnectionInfo> {
    ctx.broker.connection_list().into_iter().map(|c| (c.id, c)).collect()
}

/// The consumers of the vhosts the user sees (a vhost it does not see lists none).
pub fn consumers(ctx: &Ctx, req: &Req, vhost: Option<&str>) -> Result<Response, ApiError> {
    if let Some(v) = vhost {
        ctx.broker.vhost(v).ok_or(ApiError::NotFound)?;
    }
    let vhosts = req.user.visible_vhosts(&ctx.broker).into_iter().filter(|v| vhost.is_none_or(|name| v.name == name));
    let conns = connections_by_id(ctx);
    let mut items = Vec::new();
    for v in vhosts {
        for q in v.listed_queues() {
            for c in q.consumer_list() {
                items.push(consumer_json(ctx, &v.name, q.name.as_str(), &c, conns.get(&c.connection)));
            }
        }
    }
    Ok(ok(req.list()?.apply(items)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_split() {
        assert_eq!(split_channel_name("127.0.0.1:5 -> 127.0.0.1:5672 (3)"), Some(("127.0.0.1:5 -> 127.0.0.1:5672", 3)));
        assert_eq!(split_channel_name("a (b) (12)"), Some(("a (b)", 12)));
        assert_eq!(split_channel_name("no number"), None);
        assert_eq!(split_channel_name("x (70000)"), None);
    }
}
