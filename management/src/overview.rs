//! `/api/overview`, `/api/whoami`, `/api/nodes` and `/api/nodes/{name}`.
//!
//! Left out until counters exist (they need the hot path): `message_stats`, `churn_rates`,
//! and every `*_details` rate; Erlang-only fields (`erlang_version`, `proc_*`,
//! `run_queue`, `garbage_collection`, `applications`, I/O and Mnesia counters).

use std::sync::Arc;

use serde_json::{Value, json};
use warp::reply::Response;
use warren_broker::alarm;

use crate::error::ApiError;
use crate::reply::{Req, ok};
use crate::{Ctx, RABBITMQ_VERSION};

/// The exchange types, as RabbitMQ describes them.
pub fn exchange_types() -> Value {
    let t = |name: &str| json!({"name": name, "description": format!("AMQP {name} exchange, as per the AMQP specification"), "enabled": true});
    json!([t("direct"), t("fanout"), t("headers"), t("topic")])
}

fn auth_mechanisms() -> Value {
    json!([
        {"name": "AMQPLAIN", "description": "QPid AMQPLAIN mechanism", "enabled": true},
        {"name": "PLAIN", "description": "SASL PLAIN authentication mechanism", "enabled": true},
    ])
}

fn listeners(ctx: &Ctx) -> Value {
    Value::Array(
        ctx.listeners()
            .iter()
            .map(|l| {
                json!({"node": ctx.node, "protocol": l.protocol, "ip_address": l.addr.ip().to_string(),
                       "port": l.addr.port(), "socket_opts": {}})
            })
            .collect(),
    )
}

pub fn overview(ctx: &Ctx, req: &Req) -> Result<Response, ApiError> {
    let broker = &ctx.broker;
    let user = &req.user;
    let vhosts = user.visible_vhosts(broker);
    let outstanding = broker.outstanding();
    let (mut queue_count, mut exchange_count, mut consumer_count) = (0usize, 0usize, 0usize);
    let (mut ready, mut unacked) = (0u64, 0u64);
    for v in &vhosts {
        exchange_count += v.exchange_list().len();
        for q in v.listed_queues() {
            let stats = q.stats();
            queue_count += 1;
            consumer_count += stats.consumers;
            ready += stats.ready;
            unacked += outstanding.of(&q).0;
        }
    }
    let connections: Vec<_> =
        broker.connection_list().into_iter().filter(|c| user.sees_connection_of(&c.user)).collect();
    let channel_count: usize = connections.iter().map(|c| c.channels().len()).sum();
    let mut body = json!({
        "management_version": RABBITMQ_VERSION,
        "rates_mode": "basic",
        "exchange_types": exchange_types(),
        "product_version": env!("CARGO_PKG_VERSION"),
        "product_name": "warren",
        "rabbitmq_version": RABBITMQ_VERSION,
        "cluster_name": ctx.node,
        "disable_stats": false,
        "enable_queue_totals": true,
        "queue_totals": {
            "messages": ready + unacked,
            "messages_ready": ready,
            "messages_unacknowledged": unacked,
        },
        "object_totals": {
            "channels": channel_count,
            "connections": connections.len(),
            "consumers": consumer_count,
            "exchanges": exchange_count,
            "queues": queue_count,
        },
        "statistics_db_event_queue": 0,
        "node": ctx.node,
        "listeners": listeners(ctx),
        "contexts": [],
    });
    // The broker's totals, for those who see every vhost (a management user sees its own
    // objects only, and the totals would tell it about the others).
    if user.is_monitor()
        && let serde_json::Value::Object(map) = &mut body
    {
        let (_, rates) = broker.message_history();
        let stats = crate::rates::of_totals(&broker.message_totals(), &rates, crate::rates::OVERVIEW);
        map.insert("message_stats".into(), stats);
    }
    Ok(ok(body))
}

pub fn whoami(req: &Req) -> Result<Response, ApiError> {
    Ok(ok(json!({"name": req.user.name, "tags": req.user.tags})))
}

pub fn nodes(ctx: &Ctx, req: &Req) -> Result<Response, ApiError> {
    req.user.require_monitor()?;
    Ok(ok(req.list()?.apply(vec![node_json(ctx)])?))
}

pub fn node(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    req.user.require_monitor()?;
    if name != ctx.node {
        return Err(ApiError::NotFound);
    }
    Ok(ok(node_json(ctx)))
}

/// Open file descriptors and their limit (Linux `/proc`).
pub(crate) fn file_descriptors() -> (Option<u64>, Option<u64>) {
    let used = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
    let total = std::fs::read_to_string("/proc/self/limits").ok().and_then(|limits| {
        limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.trim_start_matches("Max open files").split_whitespace().next().and_then(|n| n.parse().ok()))
    });
    (used, total)
}

/// The node as RabbitMQ's `/api/nodes` shows it, from what this process can read of itself.
pub fn node_json(ctx: &Ctx) -> Value {
    let broker: &Arc<warren_broker::Broker> = &ctx.broker;
    let limits = broker.limits();
    let alarm = *broker.alarm().borrow();
    let disk = limits.as_ref().and_then(|l| l.disk.clone());
    let disk_free = disk.as_ref().and_then(|(dir, _)| alarm::free_disk_bytes(dir).ok());
    let (fd_used, fd_total) = file_descriptors();
    let contexts: Vec<Value> = ctx
        .own_addr()
        .map(|a| {
            json!({"description": "RabbitMQ Management", "path": "/", "ip": a.ip().to_string(),
                   "port": a.port().to_string()})
        })
        .into_iter()
        .collect();
    json!({
        "name": ctx.node,
        "type": "disc",
        "running": true,
        "being_drained": false,
        "os_pid": std::process::id().to_string(),
        "uptime": ctx.started.elapsed().as_millis() as u64,
        "processors": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "mem_used": alarm::resident_bytes().ok(),
        "mem_limit": limits.as_ref().and_then(|l| l.memory),
        "mem_alarm": alarm == Some(alarm::LOW_ON_MEMORY),
        "mem_calculation_strategy": "rss",
        "disk_free": disk_free,
        "disk_free_limit": disk.as_ref().map(|(_, limit)| *limit),
        "disk_free_alarm": alarm == Some(alarm::LOW_ON_DISK),
        "fd_used": fd_used,
        "fd_total": fd_total,
        "sockets_used": broker.connection_list().len(),
        "partitions": [],
        "rates_mode": "basic",
        "net_ticktime": 60,
        "enabled_plugins": ["rabbitmq_management"],
        "auth_mechanisms": auth_mechanisms(),
        "exchange_types": exchange_types(),
        "db_dir": ctx.config.data_dir.as_ref().map(|d| d.display().to_string()),
        "contexts": contexts,
    })
}
