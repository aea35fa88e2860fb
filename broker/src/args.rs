//! Declaration arguments: RabbitMQ's equivalence rule for redeclaring a queue or exchange with
//! other `x-` arguments (406 "inequivalent arg"), with its wording for values and types.

use amq_protocol::types::{AMQPValue, FieldTable};

use crate::error::{AmqpError, AmqpResult};

/// Queue arguments RabbitMQ compares on redeclaration (`rabbit_amqqueue:declare_args/0`).
pub const QUEUE_DECLARE_ARGS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
    "x-delivery-limit",
];

/// Exchange arguments RabbitMQ compares on redeclaration.
pub const EXCHANGE_DECLARE_ARGS: &[&str] = &["alternate-exchange"];

/// The AMQP field type name RabbitMQ prints.
pub fn type_name(v: &AMQPValue) -> &'static str {
    match v {
        AMQPValue::Boolean(_) => "bool",
        AMQPValue::ShortShortInt(_) => "byte",
        AMQPValue::ShortShortUInt(_) => "unsignedbyte",
        AMQPValue::ShortInt(_) => "short",
        AMQPValue::ShortUInt(_) => "unsignedshort",
        AMQPValue::LongInt(_) => "signedint",
        AMQPValue::LongUInt(_) => "unsignedint",
        AMQPValue::LongLongInt(_) => "long",
        AMQPValue::Float(_) => "float",
        AMQPValue::Double(_) => "double",
        AMQPValue::DecimalValue(_) => "decimal",
        AMQPValue::ShortString(_) | AMQPValue::LongString(_) => "longstr",
        AMQPValue::FieldArray(_) => "array",
        AMQPValue::Timestamp(_) => "timestamp",
        AMQPValue::FieldTable(_) => "table",
        AMQPValue::ByteArray(_) => "binary",
        AMQPValue::Void => "void",
    }
}

/// An integer argument's value, whatever its width.
pub fn as_integer(v: &AMQPValue) -> Option<i128> {
    Some(match v {
        AMQPValue::ShortShortInt(x) => i128::from(*x),
        AMQPValue::ShortShortUInt(x) => i128::from(*x),
        AMQPValue::ShortInt(x) => i128::from(*x),
        AMQPValue::ShortUInt(x) => i128::from(*x),
        AMQPValue::LongInt(x) => i128::from(*x),
        AMQPValue::LongUInt(x) => i128::from(*x),
        AMQPValue::LongLongInt(x) => i128::from(*x),
        AMQPValue::Timestamp(x) => i128::from(*x),
        _ => return None,
    })
}

/// A string argument's value, short or long.
pub fn as_text(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        _ => None,
    }
}

fn plain(v: &AMQPValue) -> String {
    as_integer(v).map(|i| i.to_string()).or_else(|| as_text(v)).unwrap_or_else(|| match v {
        AMQPValue::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

/// RabbitMQ prints a value with its type only when the other side is missing
/// (`rabbit_misc:assert_args_equivalence1`).
fn display(v: Option<&AMQPValue>, other_present: bool) -> String {
    match v {
        None => "none".to_owned(),
        Some(v) if other_present => format!("'{}'", plain(v)),
        Some(v) => format!("the value '{}' of type '{}'", plain(v), type_name(v)),
    }
}

fn equivalent(a: &AMQPValue, b: &AMQPValue) -> bool {
    match (as_integer(a), as_integer(b)) {
        (Some(x), Some(y)) => x == y,
        _ => match (as_text(a), as_text(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

/// 406 unless `new` agrees with `current` on every key in `keys`.
pub fn assert_equivalent(current: &FieldTable, new: &FieldTable, what: &str, keys: &[&str]) -> AmqpResult<()> {
    for key in keys {
        let (cur, req) = (current.inner().get(*key), new.inner().get(*key));
        let same = match (cur, req) {
            (None, None) => true,
            (Some(a), Some(b)) => equivalent(a, b),
            _ => false,
        };
        if !same {
            return Err(AmqpError::precondition_failed(format!(
                "inequivalent arg '{key}' for {what}: received {} but current is {}",
                display(req, cur.is_some()),
                display(cur, req.is_some())
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    #[test]
    fn integer_widths_are_equivalent() {
        let a = table(&[("x-max-length", AMQPValue::LongInt(10))]);
        let b = table(&[("x-max-length", AMQPValue::LongLongInt(10))]);
        assert!(assert_equivalent(&a, &b, "queue 'q' in vhost '/'", QUEUE_DECLARE_ARGS).is_ok());
    }

    #[test]
    fn missing_and_different_values_are_406_with_rabbitmq_wording() {
        let none = FieldTable::default();
        let ten = table(&[("x-max-length", AMQPValue::LongInt(10))]);
        let e = assert_equivalent(&none, &ten, "queue 'q' in vhost '/'", QUEUE_DECLARE_ARGS).unwrap_err();
        assert_eq!(e.code.code(), 406);
        assert_eq!(
            e.text,
            "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received the value '10' of type 'signedint' but current is none"
        );
        // Keys outside the list are not compared.
        let other = table(&[("x-custom", AMQPValue::LongInt(1))]);
        assert!(assert_equivalent(&none, &other, "q", QUEUE_DECLARE_ARGS).is_ok());
    }
}
