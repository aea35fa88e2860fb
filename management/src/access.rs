//! `/api/vhosts` (and one: GET/PUT/DELETE, its permissions and topic permissions),
//! `/api/users` (and one: GET/PUT/DELETE, its permissions; `without-permissions`,
//! `bulk-delete`), `/api/permissions` and `/api/topic-permissions` (all, and one
//! vhost/user pair: GET/PUT/DELETE). Everything but the vhost listings is for
//! administrators only.
//!
//! Left out: vhost message rates and byte counters (`message_stats`, `recv_oct`, ...);
//! user and vhost `limits` are always empty (warren has none).

use serde_json::{Map, Value, json};
use warp::reply::Response;
use warren_broker::access::{full_permissions, new_user, password};
use warren_broker::definitions::Tags;
use warren_broker::inspect::Outstanding;
use warren_persistence::{PermissionDef, TopicPermissionDef, UserDef, VhostDef};

use crate::Ctx;
use crate::error::ApiError;
use crate::reply::{Req, no_content, ok, put_result};

fn vhost_json(ctx: &Ctx, def: &VhostDef, outstanding: &Outstanding) -> Value {
    let (mut ready, mut unacked) = (0u64, 0u64);
    if let Some(v) = ctx.broker.vhost(&def.name) {
        for q in v.listed_queues() {
            ready += q.stats().ready;
            unacked += outstanding.of(&q).0;
        }
    }
    json!({
        "name": def.name,
        "description": def.description,
        "tags": def.tags,
        "metadata": {"description": def.description, "tags": def.tags},
        "default_queue_type": "undefined",
        "tracing": false,
        "cluster_state": { (ctx.node.clone()): "running" },
        "messages": ready + unacked,
        "messages_ready": ready,
        "messages_unacknowledged": unacked,
    })
}

fn vhost_def(ctx: &Ctx, name: &str) -> Result<VhostDef, ApiError> {
    ctx.broker.access.vhosts().into_iter().find(|v| v.name == name).ok_or(ApiError::NotFound)
}

pub fn vhosts(ctx: &Ctx, req: &Req) -> Result<Response, ApiError> {
    let params = req.list()?;
    let outstanding = ctx.broker.outstanding();
    let items = ctx
        .broker
        .access
        .vhosts()
        .iter()
        .filter(|v| req.user.sees_vhost(&ctx.broker, &v.name))
        .map(|v| vhost_json(ctx, v, &outstanding))
        .collect();
    Ok(ok(params.apply(items)?))
}

/// One vhost: administrators only, as in RabbitMQ 3.10 (others list theirs).
pub fn vhost(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    let def = vhost_def(ctx, name)?;
    Ok(ok(req.list()?.prune(vhost_json(ctx, &def, &ctx.broker.outstanding()))))
}

/// Tags as a list or a comma-separated string.
fn tags(v: Option<&Value>) -> Vec<String> {
    v.and_then(|v| serde_json::from_value::<Tags>(v.clone()).ok()).map(|t| t.0).unwrap_or_default()
}

fn text<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(ApiError::BadRequest(format!("{key} must be a string"))),
    }
}

/// PUT: create (the creating user gets full permissions on it, as in RabbitMQ) or update the
/// description and tags.
pub fn put_vhost(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    let body = req.object()?;
    let description = text(&body, "description")?.unwrap_or_default().to_owned();
    let tags = tags(body.get("tags"));
    if ctx.broker.access.vhost_exists(name) {
        ctx.broker.access.put_vhost(VhostDef { name: name.to_owned(), description, tags })?;
        return Ok(no_content());
    }
    ctx.broker.add_vhost(name, &description, tags)?;
    ctx.broker.access.set_permissions(full_permissions(&req.user.name, name))?;
    tracing::info!(vhost = name, by = %req.user.name, "vhost created (management API)");
    Ok(put_result(true))
}

pub fn delete_vhost(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    vhost_def(ctx, name)?;
    ctx.broker.delete_vhost(name)?;
    Ok(no_content())
}

fn permission_json(p: &PermissionDef) -> Value {
    json!({"user": p.user, "vhost": p.vhost, "configure": p.configure, "write": p.write, "read": p.read})
}

fn topic_permission_json(p: &TopicPermissionDef) -> Value {
    json!({"user": p.user, "vhost": p.vhost, "exchange": p.exchange, "write": p.write, "read": p.read})
}

fn permission_list(ctx: &Ctx, req: &Req, keep: impl Fn(&PermissionDef) -> bool) -> Result<Response, ApiError> {
    let items = ctx.broker.access.permission_list().iter().filter(|p| keep(p)).map(permission_json).collect();
    Ok(ok(req.list()?.apply(items)?))
}

fn topic_permission_list(
    ctx: &Ctx,
    req: &Req,
    keep: impl Fn(&TopicPermissionDef) -> bool,
) -> Result<Response, ApiError> {
    let items =
        ctx.broker.access.topic_permission_list().iter().filter(|p| keep(p)).map(topic_permission_json).collect();
    Ok(ok(req.list()?.apply(items)?))
}

pub fn vhost_permissions(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    vhost_def(ctx, name)?;
    permission_list(ctx, req, |p| p.vhost == name)
}

pub fn vhost_topic_permissions(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    vhost_def(ctx, name)?;
    topic_permission_list(ctx, req, |p| p.vhost == name)
}

fn user_json(u: &UserDef) -> Value {
    json!({
        "name": u.name,
        "password_hash": u.password_hash,
        "hashing_algorithm": u.hashing_algorithm,
        "tags": u.tags,
        "limits": {},
    })
}

fn user_def(ctx: &Ctx, name: &str) -> Result<UserDef, ApiError> {
    ctx.broker.access.user(name).ok_or(ApiError::NotFound)
}

pub fn users(ctx: &Ctx, req: &Req) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    let items = ctx.broker.access.users().iter().map(user_json).collect();
    Ok(ok(req.list()?.apply(items)?))
}

pub fn users_without_permissions(ctx: &Ctx, req: &Req) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    let permissions = ctx.broker.access.permission_list();
    let items = ctx
        .broker
        .access
        .users()
        .iter()
        .filter(|u| !permissions.iter().any(|p| p.user == u.name))
        .map(user_json)
        .collect();
    Ok(ok(req.list()?.apply(items)?))
}

/// POST `{"users": [...]}`: delete them all, or none when one does not exist (400).
pub fn bulk_delete_users(ctx: &Ctx, req: &Req) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    let body = req.object()?;
    let Some(Value::Array(names)) = body.get("users") else { return Err(ApiError::keys_missing(&["users"])) };
    let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
    if let Some(missing) = names.iter().find(|n| ctx.broker.access.user(n).is_none()) {
        return Err(ApiError::BadRequest(format!("no_such_user: {missing}")));
    }
    for name in names {
        ctx.broker.delete_user(name)?;
    }
    Ok(no_content())
}

pub fn user(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    Ok(ok(req.list()?.prune(user_json(&user_def(ctx, name)?))))
}

/// PUT: `tags` (required) and `password`, or `password_hash` (+ `hashing_algorithm`); with
/// neither, a new user has no password and an existing one keeps its own.
pub fn put_user(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    let body = req.object()?;
    if !body.contains_key("tags") {
        return Err(ApiError::BadRequest("tags_not_present".into()));
    }
    let tags = tags(body.get("tags"));
    let existing = ctx.broker.access.user(name);
    let def = match (text(&body, "password")?, text(&body, "password_hash")?) {
        (Some(password), _) => new_user(name, password, tags),
        (None, Some(hash)) => UserDef {
            name: name.to_owned(),
            password_hash: hash.to_owned(),
            hashing_algorithm: text(&body, "hashing_algorithm")?.unwrap_or(password::SHA256).to_owned(),
            tags,
        },
        (None, None) => match &existing {
            Some(u) => UserDef { tags, ..u.clone() },
            None => UserDef {
                name: name.to_owned(),
                password_hash: String::new(),
                hashing_algorithm: password::SHA256.into(),
                tags,
            },
        },
    };
    ctx.broker.access.put_user(def)?;
    Ok(put_result(existing.is_none()))
}

pub fn delete_user(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    user_def(ctx, name)?;
    ctx.broker.delete_user(name)?;
    Ok(no_content())
}

pub fn user_permissions(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    user_def(ctx, name)?;
    permission_list(ctx, req, |p| p.user == name)
}

pub fn user_topic_permissions(ctx: &Ctx, req: &Req, name: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    user_def(ctx, name)?;
    topic_permission_list(ctx, req, |p| p.user == name)
}

pub fn permissions(ctx: &Ctx, req: &Req) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    permission_list(ctx, req, |_| true)
}

fn find_permission(ctx: &Ctx, vhost: &str, user: &str) -> Option<PermissionDef> {
    ctx.broker.access.permission_list().into_iter().find(|p| p.vhost == vhost && p.user == user)
}

pub fn permission(ctx: &Ctx, req: &Req, vhost: &str, user: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    let p = find_permission(ctx, vhost, user).ok_or(ApiError::NotFound)?;
    Ok(ok(permission_json(&p)))
}

/// Both the vhost and the user exist (400 otherwise, RabbitMQ's words).
fn check_pair(ctx: &Ctx, vhost: &str, user: &str) -> Result<(), ApiError> {
    if ctx.broker.access.vhost_exists(vhost) && ctx.broker.access.user(user).is_some() {
        return Ok(());
    }
    Err(ApiError::BadRequest("vhost_or_user_not_found".into()))
}

/// The string fields `keys` of a body, all required.
fn required<'a, const N: usize>(body: &'a Map<String, Value>, keys: [&str; N]) -> Result<[&'a str; N], ApiError> {
    let missing: Vec<&str> = keys.iter().copied().filter(|k| !body.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(ApiError::keys_missing(&missing));
    }
    let mut out = [""; N];
    for (slot, key) in out.iter_mut().zip(keys) {
        *slot = text(body, key)?.unwrap_or_default();
    }
    Ok(out)
}

pub fn put_permission(ctx: &Ctx, req: &Req, vhost: &str, user: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    check_pair(ctx, vhost, user)?;
    let body = req.object()?;
    let [configure, write, read] = required(&body, ["configure", "write", "read"])?;
    let new = find_permission(ctx, vhost, user).is_none();
    ctx.broker.access.set_permissions(PermissionDef {
        user: user.to_owned(),
        vhost: vhost.to_owned(),
        configure: configure.to_owned(),
        write: write.to_owned(),
        read: read.to_owned(),
    })?;
    Ok(put_result(new))
}

pub fn delete_permission(ctx: &Ctx, req: &Req, vhost: &str, user: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    find_permission(ctx, vhost, user).ok_or(ApiError::NotFound)?;
    ctx.broker.access.clear_permissions(user, vhost)?;
    Ok(no_content())
}

pub fn topic_permissions(ctx: &Ctx, req: &Req) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    topic_permission_list(ctx, req, |_| true)
}

fn topic_permissions_of(ctx: &Ctx, vhost: &str, user: &str) -> Vec<TopicPermissionDef> {
    ctx.broker.access.topic_permission_list().into_iter().filter(|p| p.vhost == vhost && p.user == user).collect()
}

pub fn topic_permission(ctx: &Ctx, req: &Req, vhost: &str, user: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    let list = topic_permissions_of(ctx, vhost, user);
    if list.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(ok(Value::Array(list.iter().map(topic_permission_json).collect())))
}

pub fn put_topic_permission(ctx: &Ctx, req: &Req, vhost: &str, user: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    check_pair(ctx, vhost, user)?;
    let body = req.object()?;
    let [exchange, write, read] = required(&body, ["exchange", "write", "read"])?;
    let new = !topic_permissions_of(ctx, vhost, user).iter().any(|p| p.exchange == exchange);
    ctx.broker.access.set_topic_permissions(TopicPermissionDef {
        user: user.to_owned(),
        vhost: vhost.to_owned(),
        exchange: exchange.to_owned(),
        write: write.to_owned(),
        read: read.to_owned(),
    })?;
    Ok(put_result(new))
}

/// DELETE: every topic permission of the pair, or only the `exchange` query parameter's.
pub fn delete_topic_permission(ctx: &Ctx, req: &Req, vhost: &str, user: &str) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    let exchange = req.query.get("exchange").filter(|x| !x.is_empty());
    let existing = topic_permissions_of(ctx, vhost, user);
    if !existing.iter().any(|p| exchange.is_none_or(|x| p.exchange == x)) {
        return Err(ApiError::NotFound);
    }
    ctx.broker.access.clear_topic_permissions(user, vhost, exchange)?;
    Ok(no_content())
}
