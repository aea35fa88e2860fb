//! `/api/health/checks/{alarms, local-alarms, virtual-hosts, port-listener/{port},
//! protocol-listener/{protocol}}` and `/api/aliveness-test/{vhost}`: 200 with
//! `{"status": "ok"}`, or 503 with `{"status": "failed", "reason": ...}` and what failed.

use amq_protocol::protocol::BasicProperties;
use bytes::Bytes;
use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::reply::Response;
use warren_broker::alarm;
use warren_broker::session::Settle;

use crate::Ctx;
use crate::error::ApiError;
use crate::reply::{Req, ok, with_status};

/// What RabbitMQ's aliveness test declares, publishes and gets.
const ALIVENESS_QUEUE: &str = "aliveness-test";
const ALIVENESS_MESSAGE: &[u8] = b"test_message";

fn failed(mut body: Value, reason: &str) -> Response {
    if let Value::Object(m) = &mut body {
        m.insert("status".into(), json!("failed"));
        m.insert("reason".into(), json!(reason));
    }
    with_status(body, StatusCode::SERVICE_UNAVAILABLE)
}

/// A single node: the cluster's alarms are the node's.
pub fn alarms(ctx: &Ctx, _req: &Req, local: bool) -> Result<Response, ApiError> {
    let resource = match *ctx.broker.alarm().borrow() {
        None => return Ok(ok(json!({"status": "ok"}))),
        Some(alarm::LOW_ON_MEMORY) => "memory",
        Some(_) => "disk",
    };
    let reason =
        if local { "There are alarms in effect on the node" } else { "There are alarms in effect in the cluster" };
    Ok(failed(json!({"alarms": [{"node": ctx.node, "resource": resource}]}), reason))
}

/// Every vhost runs while the broker does.
pub fn virtual_hosts(_ctx: &Ctx, _req: &Req) -> Result<Response, ApiError> {
    Ok(ok(json!({"status": "ok"})))
}

pub fn port_listener(ctx: &Ctx, _req: &Req, port: &str) -> Result<Response, ApiError> {
    let port: u16 = port.parse().map_err(|_| ApiError::BadRequest("Invalid port".into()))?;
    let ports: Vec<u16> = ctx.listeners().iter().map(|l| l.addr.port()).collect();
    if ports.contains(&port) {
        return Ok(ok(json!({"status": "ok", "port": port})));
    }
    Ok(failed(json!({"missing": port, "ports": ports}), "No active listener"))
}

/// RabbitMQ's protocol names and their aliases.
fn normalize_protocol(p: &str) -> String {
    match p.to_ascii_lowercase().as_str() {
        "amqp" | "amqp091" | "amqp0-9-1" | "amqp0.9.1" | "amqp-0-9-1" | "amqp10" | "amqp1.0" => "amqp".into(),
        "amqps" | "amqp/ssl" | "amqp091/ssl" => "amqp/ssl".into(),
        "http" | "management" => "http".into(),
        "prometheus" | "http/prometheus" => "http/prometheus".into(),
        other => other.to_owned(),
    }
}

pub fn protocol_listener(ctx: &Ctx, _req: &Req, protocol: &str) -> Result<Response, ApiError> {
    let wanted = normalize_protocol(protocol);
    let protocols: Vec<&str> = ctx.listeners().iter().map(|l| l.protocol).collect();
    if protocols.contains(&wanted.as_str()) {
        return Ok(ok(json!({"status": "ok", "protocol": wanted})));
    }
    Ok(failed(json!({"missing": protocol, "protocols": protocols}), "No active listener"))
}

/// Declare `aliveness-test`, publish a message to it and get it back, as the user.
pub async fn aliveness(ctx: &Ctx, req: &Req, vhost: &str) -> Result<Response, ApiError> {
    let session = req.session(ctx, vhost)?;
    session.declare_queue(ALIVENESS_QUEUE, false, false, Default::default()).map_err(ApiError::from_declare)?;
    let body = Bytes::from_static(ALIVENESS_MESSAGE);
    session.publish("", ALIVENESS_QUEUE, BasicProperties::default(), body).map_err(ApiError::from_declare)?;
    let got = session.get(ALIVENESS_QUEUE, 1, Settle::Ack).map_err(ApiError::from_declare)?;
    if got.first().is_some_and(|g| g.msg.body.as_ref() == ALIVENESS_MESSAGE) {
        Ok(ok(json!({"status": "ok"})))
    } else {
        Ok(failed(json!({}), "the test message did not come back"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_aliases() {
        assert_eq!(normalize_protocol("AMQP091"), "amqp");
        assert_eq!(normalize_protocol("amqp0-9-1"), "amqp");
        assert_eq!(normalize_protocol("amqps"), "amqp/ssl");
        assert_eq!(normalize_protocol("prometheus"), "http/prometheus");
        assert_eq!(normalize_protocol("mqtt"), "mqtt");
    }
}
