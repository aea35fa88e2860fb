//! `QueueArgs`: the RabbitMQ queue arguments warren acts on (TTLs, length limits, overflow,
//! dead-lettering, priorities, single active consumer), parsed once at declaration, and their
//! validation with RabbitMQ 3.10's reply codes and texts (`rabbit_amqqueue:declare_args/0`).

use amq_protocol::types::{AMQPValue, FieldTable, ShortString};

use crate::args::{as_integer, as_text, type_name};
use crate::error::{AmqpError, AmqpResult};

/// What to do when a queue is over x-max-length / x-max-length-bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    #[default]
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

/// The parsed arguments of a declared queue.
#[derive(Clone, Debug, Default)]
pub struct QueueArgs {
    /// x-message-ttl, milliseconds.
    pub message_ttl: Option<u64>,
    /// x-expires, milliseconds.
    pub expires: Option<u64>,
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    pub overflow: Overflow,
    pub dead_letter_exchange: Option<ShortString>,
    pub dead_letter_routing_key: Option<ShortString>,
    pub max_priority: Option<u8>,
    pub single_active_consumer: bool,
}

fn is_integer_type(v: &AMQPValue) -> bool {
    matches!(
        v,
        AMQPValue::ShortShortInt(_)
            | AMQPValue::ShortShortUInt(_)
            | AMQPValue::ShortInt(_)
            | AMQPValue::ShortUInt(_)
            | AMQPValue::LongInt(_)
            | AMQPValue::LongUInt(_)
            | AMQPValue::LongLongInt(_)
    )
}

fn is_string(v: &AMQPValue) -> bool {
    matches!(v, AMQPValue::LongString(_) | AMQPValue::ShortString(_))
}

/// An Erlang term as RabbitMQ prints the reason (`~p`).
type Check = fn(&AMQPValue, &FieldTable) -> Result<(), String>;

fn int_arg(v: &AMQPValue) -> Result<i128, String> {
    if is_integer_type(v) {
        Ok(as_integer(v).unwrap_or(0))
    } else {
        Err(format!("\"expected integer, got {}\"", type_name(v)))
    }
}

fn non_neg_int(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    let n = int_arg(v)?;
    if n < 0 { Err(format!("{{value_negative,{n}}}")) } else { Ok(()) }
}

fn expiry(n: i128) -> Result<(), String> {
    if n < 0 { Err(format!("{{value_negative,{n}}}")) } else { Ok(()) }
}

fn check_expires(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    let n = int_arg(v)?;
    if n == 0 {
        return Err("{value_zero,0}".to_owned());
    }
    expiry(n)
}

fn check_message_ttl(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    expiry(int_arg(v)?)
}

fn check_dlx(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    if is_string(v) { Ok(()) } else { Err(format!("{{unacceptable_type,{}}}", type_name(v))) }
}

fn check_dlrk(v: &AMQPValue, args: &FieldTable) -> Result<(), String> {
    if !is_string(v) {
        return Err(format!("{{unacceptable_type,{}}}", type_name(v)));
    }
    if args.inner().contains_key("x-dead-letter-exchange") {
        Ok(())
    } else {
        Err("routing_key_but_no_dlx_defined".to_owned())
    }
}

fn check_max_priority(v: &AMQPValue, args: &FieldTable) -> Result<(), String> {
    non_neg_int(v, args)?;
    let n = int_arg(v)?;
    if n > 255 { Err(format!("{{max_value_exceeded,{n}}}")) } else { Ok(()) }
}

fn one_of(v: &AMQPValue, allowed: &[&str], invalid: impl FnOnce(&str) -> String) -> Result<(), String> {
    match as_text(v) {
        Some(s) if allowed.contains(&s.as_str()) => Ok(()),
        Some(s) => Err(invalid(&s)),
        None => Err(format!("{{unacceptable_type,{}}}", type_name(v))),
    }
}

fn check_overflow(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    one_of(v, &["drop-head", "reject-publish", "reject-publish-dlx"], |_| "invalid_overflow".to_owned())
}

fn check_queue_mode(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    one_of(v, &["default", "lazy"], |s| format!("\"unsupported queue mode '{s}'\""))
}

fn check_bool(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    match v {
        AMQPValue::Boolean(_) => Ok(()),
        other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    }
}

fn check_queue_type(v: &AMQPValue, _: &FieldTable) -> Result<(), String> {
    one_of(v, &["classic", "quorum", "stream"], |s| format!("\"unsupported queue type '{s}'\""))
}

/// The validated arguments, in RabbitMQ's order (the first failure is reported).
const VALIDATORS: &[(&str, Check)] = &[
    ("x-expires", check_expires),
    ("x-message-ttl", check_message_ttl),
    ("x-dead-letter-exchange", check_dlx),
    ("x-dead-letter-routing-key", check_dlrk),
    ("x-max-length", non_neg_int),
    ("x-max-length-bytes", non_neg_int),
    ("x-max-in-memory-length", non_neg_int),
    ("x-max-in-memory-bytes", non_neg_int),
    ("x-max-priority", check_max_priority),
    ("x-overflow", check_overflow),
    ("x-queue-mode", check_queue_mode),
    ("x-single-active-consumer", check_bool),
    ("x-queue-type", check_queue_type),
];

/// 406 for an argument RabbitMQ would refuse; `what` is "queue 'q' in vhost '/'".
pub fn check_queue_args(args: &FieldTable, what: &str) -> AmqpResult<()> {
    // rabbit_channel checks the dead-letter exchange's type before anything else.
    if let Some(v) = args.inner().get("x-dead-letter-exchange")
        && !is_string(v)
    {
        return Err(AmqpError::precondition_failed(format!(
            "invalid type '{}' for arg 'x-dead-letter-exchange' in {what}",
            type_name(v)
        )));
    }
    for (key, check) in VALIDATORS {
        if let Some(v) = args.inner().get(*key)
            && let Err(reason) = check(v, args)
        {
            return Err(AmqpError::precondition_failed(format!("invalid arg '{key}' for {what}: {reason}")));
        }
    }
    Ok(())
}

/// Consumer argument x-priority: an integer (406 otherwise, as RabbitMQ words it).
pub fn consumer_priority(args: &FieldTable, what: &str) -> AmqpResult<i64> {
    match args.inner().get("x-priority") {
        None => Ok(0),
        Some(v) => match int_arg(v) {
            Ok(n) => Ok(n.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64),
            Err(reason) => {
                Err(AmqpError::precondition_failed(format!("invalid arg 'x-priority' for {what}: {reason}")))
            }
        },
    }
}

fn non_negative(v: Option<&AMQPValue>) -> Option<u64> {
    v.and_then(as_integer).and_then(|n| u64::try_from(n).ok())
}

impl QueueArgs {
    /// Parse arguments already validated by `check_queue_args` (or recovered from disk, where
    /// anything unusable is ignored).
    pub fn parse(args: &FieldTable) -> Self {
        let get = |k: &str| args.inner().get(k);
        let text = |k: &str| get(k).and_then(as_text).map(crate::names::short);
        Self {
            message_ttl: non_negative(get("x-message-ttl")),
            expires: non_negative(get("x-expires")).filter(|n| *n > 0),
            max_length: non_negative(get("x-max-length")),
            max_length_bytes: non_negative(get("x-max-length-bytes")),
            overflow: match get("x-overflow").and_then(as_text).as_deref() {
                Some("reject-publish") => Overflow::RejectPublish,
                Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
                _ => Overflow::DropHead,
            },
            dead_letter_exchange: text("x-dead-letter-exchange"),
            dead_letter_routing_key: text("x-dead-letter-routing-key"),
            max_priority: non_negative(get("x-max-priority")).map(|n| n.min(255) as u8),
            single_active_consumer: matches!(get("x-single-active-consumer"), Some(AMQPValue::Boolean(true))),
        }
    }

    /// Whether a length limit applies.
    pub fn limited(&self) -> bool {
        self.max_length.is_some() || self.max_length_bytes.is_some()
    }
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

    fn text(args: &FieldTable) -> String {
        check_queue_args(args, "queue 'q' in vhost '/'").unwrap_err().text
    }

    #[test]
    fn rabbitmq_texts() {
        assert_eq!(
            text(&table(&[("x-message-ttl", AMQPValue::LongInt(-1))])),
            "invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {value_negative,-1}"
        );
        assert_eq!(
            text(&table(&[("x-message-ttl", AMQPValue::LongString("soon".into()))])),
            "invalid arg 'x-message-ttl' for queue 'q' in vhost '/': \"expected integer, got longstr\""
        );
        assert_eq!(
            text(&table(&[("x-expires", AMQPValue::LongInt(0))])),
            "invalid arg 'x-expires' for queue 'q' in vhost '/': {value_zero,0}"
        );
        assert_eq!(
            text(&table(&[("x-overflow", AMQPValue::LongInt(1))])),
            "invalid arg 'x-overflow' for queue 'q' in vhost '/': {unacceptable_type,signedint}"
        );
        assert_eq!(
            text(&table(&[("x-dead-letter-routing-key", AMQPValue::LongString("k".into()))])),
            "invalid arg 'x-dead-letter-routing-key' for queue 'q' in vhost '/': routing_key_but_no_dlx_defined"
        );
        assert_eq!(
            text(&table(&[("x-dead-letter-exchange", AMQPValue::LongInt(5))])),
            "invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"
        );
        assert_eq!(
            text(&table(&[("x-max-priority", AMQPValue::LongInt(256))])),
            "invalid arg 'x-max-priority' for queue 'q' in vhost '/': {max_value_exceeded,256}"
        );
    }

    #[test]
    fn parses_limits() {
        let a = QueueArgs::parse(&table(&[
            ("x-max-length", AMQPValue::ShortShortUInt(3)),
            ("x-overflow", AMQPValue::LongString("reject-publish".into())),
            ("x-max-priority", AMQPValue::LongInt(10)),
        ]));
        assert_eq!(a.max_length, Some(3));
        assert_eq!(a.overflow, Overflow::RejectPublish);
        assert_eq!(a.max_priority, Some(10));
        assert!(a.limited());
    }
}
