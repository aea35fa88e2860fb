//! `/api/definitions` and `/api/definitions/{vhost}`: GET exports, POST imports, in
//! RabbitMQ's JSON format, through the broker's `definitions` (as `warren ctl
//! export_definitions` / `import_definitions`). Administrators only.
//!
//! A vhost's export holds its queues, exchanges and bindings without `vhost` fields (as
//! RabbitMQ's); its import takes those and ignores users, vhosts and permissions. Only
//! durable objects are exported. The UI's multipart file upload is not taken (a JSON body is).

use serde_json::{Map, Value, json};
use warp::reply::Response;
use warren_broker::definitions::ImportError;

use crate::error::ApiError;
use crate::reply::{Req, no_content, ok};
use crate::{Ctx, RABBITMQ_VERSION};

const PER_VHOST: &[&str] = &["queues", "exchanges", "bindings"];

pub fn export(ctx: &Ctx, req: &Req, vhost: Option<&str>) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    if let Some(v) = vhost {
        ctx.broker.vhost(v).ok_or(ApiError::NotFound)?;
    }
    let defs = ctx.broker.export_definitions();
    let Value::Object(mut all) = serde_json::to_value(&defs).map_err(|e| ApiError::Internal(e.to_string()))? else {
        return Err(ApiError::Internal("definitions are not an object".into()));
    };
    all.insert("product_name".into(), json!("warren"));
    all.insert("product_version".into(), json!(env!("CARGO_PKG_VERSION")));
    let Some(v) = vhost else { return Ok(ok(Value::Object(all))) };
    let mut out = Map::new();
    out.insert("rabbit_version".into(), json!(RABBITMQ_VERSION));
    out.insert("rabbitmq_version".into(), json!(RABBITMQ_VERSION));
    out.insert("product_name".into(), json!("warren"));
    out.insert("product_version".into(), json!(env!("CARGO_PKG_VERSION")));
    out.insert("parameters".into(), json!([]));
    out.insert("policies".into(), json!([]));
    for key in PER_VHOST {
        let items = match all.remove(*key) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let mine = items
            .into_iter()
            .filter(|item| item.get("vhost").and_then(Value::as_str) == Some(v))
            .map(|mut item| {
                if let Value::Object(m) = &mut item {
                    m.remove("vhost");
                }
                item
            })
            .collect();
        out.insert((*key).into(), Value::Array(mine));
    }
    Ok(ok(Value::Object(out)))
}

/// A vhost's definitions file as a whole-broker one: its queues, exchanges and bindings
/// put in `vhost`, nothing else.
fn into_vhost(body: &[u8], vhost: &str) -> Result<Vec<u8>, ApiError> {
    let Ok(Value::Object(mut file)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::BadRequest("failed_to_parse_json".into()));
    };
    let mut out = Map::new();
    for key in PER_VHOST {
        let mut items = match file.remove(*key) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        for item in &mut items {
            if let Value::Object(m) = item {
                m.insert("vhost".into(), json!(vhost));
            }
        }
        out.insert((*key).into(), Value::Array(items));
    }
    serde_json::to_vec(&Value::Object(out)).map_err(|e| ApiError::Internal(e.to_string()))
}

pub fn import(ctx: &Ctx, req: &Req, vhost: Option<&str>) -> Result<Response, ApiError> {
    req.user.require_admin()?;
    let body = match vhost {
        Some(v) => {
            ctx.broker.vhost(v).ok_or(ApiError::NotFound)?;
            into_vhost(&req.body, v)?
        }
        None => req.body.to_vec(),
    };
    match ctx.broker.import_definitions(&body) {
        Ok(summary) => {
            tracing::info!(by = %req.user.name, ?summary, "definitions imported (management API)");
            Ok(no_content())
        }
        Err(ImportError::Json(_)) => Err(ApiError::BadRequest("failed_to_parse_json".into())),
        Err(ImportError::Access(e)) => Err(ApiError::BadRequest(e.to_string())),
        Err(e) => Err(ApiError::BadRequest(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vhost_files_get_their_vhost() {
        let body = br#"{"queues": [{"name": "q", "durable": true}], "users": [{"name": "x"}], "bindings": [1]}"#;
        let out: Value = serde_json::from_slice(&into_vhost(body, "v").unwrap()).unwrap();
        assert_eq!(out["queues"], json!([{"name": "q", "durable": true, "vhost": "v"}]));
        assert_eq!(out["exchanges"], json!([]));
        assert!(out.get("users").is_none());
        assert!(into_vhost(b"[1]", "v").is_err());
        assert!(into_vhost(b"{", "v").is_err());
    }
}
