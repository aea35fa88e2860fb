//! Message properties as RabbitMQ's management API writes them (`properties` of a message got
//! or published): the AMQP basic properties by their spec names, `headers` as an object.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::ShortString;
use serde_json::{Map, Value};
use warren_broker::definitions::{check_table, json_to_table, table_to_json};

use crate::error::ApiError;

/// The properties of a message; RabbitMQ writes `[]` (an empty Erlang list) when none is set.
pub fn to_json(p: &BasicProperties) -> Value {
    let mut m = Map::new();
    let mut text = |key: &str, v: &Option<ShortString>| {
        if let Some(s) = v {
            m.insert(key.into(), Value::String(s.to_string()));
        }
    };
    text("content_type", p.content_type());
    text("content_encoding", p.content_encoding());
    text("correlation_id", p.correlation_id());
    text("reply_to", p.reply_to());
    text("expiration", p.expiration());
    text("message_id", p.message_id());
    text("type", p.kind());
    text("user_id", p.user_id());
    text("app_id", p.app_id());
    text("cluster_id", p.cluster_id());
    if let Some(h) = p.headers() {
        m.insert("headers".into(), Value::Object(table_to_json(h)));
    }
    if let Some(d) = p.delivery_mode() {
        m.insert("delivery_mode".into(), (*d).into());
    }
    if let Some(pr) = p.priority() {
        m.insert("priority".into(), (*pr).into());
    }
    if let Some(t) = p.timestamp() {
        m.insert("timestamp".into(), (*t).into());
    }
    if m.is_empty() { Value::Array(Vec::new()) } else { Value::Object(m) }
}

fn short(key: &str, v: &Value) -> Result<ShortString, ApiError> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(ApiError::BadRequest(format!("property {key} must be a string"))),
    };
    ShortString::try_new(s).map_err(|_| ApiError::BadRequest(format!("property {key} is longer than 255 bytes")))
}

fn number<T: TryFrom<u64>>(key: &str, v: &Value) -> Result<T, ApiError> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| ApiError::BadRequest(format!("property {key} is not a valid number")))
}

/// The properties of a message to publish (unknown keys are ignored; `[]` is none).
pub fn from_json(v: Option<&Value>) -> Result<BasicProperties, ApiError> {
    let map = match v {
        None | Some(Value::Null) => return Ok(BasicProperties::default()),
        Some(Value::Array(a)) if a.is_empty() => return Ok(BasicProperties::default()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::BadRequest("properties must be an object".into())),
    };
    let mut p = BasicProperties::default();
    for (key, v) in map {
        if v.is_null() {
            continue;
        }
        p = match key.as_str() {
            "content_type" => p.with_content_type(short(key, v)?),
            "content_encoding" => p.with_content_encoding(short(key, v)?),
            "correlation_id" => p.with_correlation_id(short(key, v)?),
            "reply_to" => p.with_reply_to(short(key, v)?),
            "expiration" => p.with_expiration(short(key, v)?),
            "message_id" => p.with_message_id(short(key, v)?),
            "type" => p.with_type(short(key, v)?),
            "user_id" => p.with_user_id(short(key, v)?),
            "app_id" => p.with_app_id(short(key, v)?),
            "cluster_id" => p.with_cluster_id(short(key, v)?),
            "delivery_mode" => p.with_delivery_mode(number(key, v)?),
            "priority" => p.with_priority(number(key, v)?),
            "timestamp" => p.with_timestamp(number(key, v)?),
            "headers" => match v {
                Value::Object(h) => {
                    check_table(h).map_err(ApiError::BadRequest)?;
                    p.with_headers(json_to_table(h))
                }
                _ => return Err(ApiError::BadRequest("headers must be an object".into())),
            },
            _ => p,
        };
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_as_rabbitmq_writes_them() {
        let v = json!({"content_type": "text/plain", "delivery_mode": 2, "priority": 3, "expiration": "100000",
                       "message_id": "m1", "timestamp": 12345, "headers": {"h": 1, "s": "x"}, "type": "t"});
        let p = from_json(Some(&v)).unwrap();
        assert_eq!(p.delivery_mode(), &Some(2));
        assert_eq!(to_json(&p), v);
        assert_eq!(to_json(&BasicProperties::default()), json!([]));
        assert_eq!(from_json(Some(&json!([]))).unwrap(), BasicProperties::default());
        assert_eq!(from_json(Some(&json!({"delivery_mode": "2"}))).unwrap().delivery_mode(), &Some(2));
    }

    #[test]
    fn bad_properties_are_refused_not_panicked_on() {
        for bad in [
            json!({"content_type": "x".repeat(256)}),
            json!({"delivery_mode": 300}),
            json!({"priority": -1}),
            json!({"headers": [1]}),
            json!({ "headers": { ("k".repeat(300)): 1 } }),
            json!({"app_id": {"a": 1}}),
            json!("text"),
        ] {
            assert!(from_json(Some(&bad)).is_err(), "{bad}");
        }
    }
}
