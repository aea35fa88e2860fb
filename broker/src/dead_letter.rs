//! Dead-lettering (x-dead-letter-exchange): a message rejected without requeue, expired, or
//! dropped by a length limit is republished to the queue's dead-letter exchange with an
//! `x-death` header (RabbitMQ 3.10's `rabbit_dead_letter`).
//!
//! This module is the dead letter itself and the headers it gets. Queues hand dead letters to
//! their vhost (`vhost::dead_letters`) while holding their own lock; one task per vhost
//! republishes them, so no queue lock is ever held while another queue is locked (a
//! dead-letter cycle cannot deadlock).

use std::sync::Arc;

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};

use crate::message::Message;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Rejected,
    Expired,
    Maxlen,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rejected => "rejected",
            Reason::Expired => "expired",
            Reason::Maxlen => "maxlen",
        }
    }
}

/// A message leaving `queue` for its dead-letter exchange.
#[derive(Debug)]
pub struct DeadLetter {
    pub msg: Arc<Message>,
    pub queue: ShortString,
    pub reason: Reason,
    pub exchange: ShortString,
    pub routing_key: Option<ShortString>,
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// The message's routing keys: its routing key and any CC header keys.
fn routing_keys(msg: &Message) -> Vec<AMQPValue> {
    let mut keys = vec![text(msg.routing_key.as_str())];
    if let Some(headers) = msg.properties.headers()
        && let Some(AMQPValue::FieldArray(cc)) = headers.inner().get("CC")
    {
        keys.extend(cc.as_slice().iter().cloned());
    }
    keys
}

/// The properties of the dead-lettered copy: `x-death` updated, `x-first-death-*` set once,
/// `expiration` removed (kept in x-death as `original-expiration`).
pub fn dead_lettered_properties(dl: &DeadLetter, now_secs: u64) -> BasicProperties {
    let msg = &dl.msg;
    let mut headers = msg.properties.headers().clone().unwrap_or_default();
    let queue = dl.queue.as_str();
    let reason = dl.reason.as_str();
    let mut deaths: Vec<AMQPValue> = match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().to_vec(),
        _ => Vec::new(),
    };
    let same = |v: &AMQPValue| match v {
        AMQPValue::FieldTable(t) => {
            let get = |k: &str| t.inner().get(k).and_then(crate::args::as_text);
            get("queue").as_deref() == Some(queue) && get("reason").as_deref() == Some(reason)
        }
        _ => false,
    };
    let entry = match deaths.iter().position(same) {
        Some(pos) => match deaths.remove(pos) {
            AMQPValue::FieldTable(mut t) => {
                let count = t.inner().get("count").and_then(crate::args::as_integer).unwrap_or(0);
                t.insert("count".into(), AMQPValue::LongLongInt((count + 1) as i64));
                t
            }
            _ => FieldTable::default(),
        },
        None => {
            let mut t = FieldTable::default();
            t.insert("count".into(), AMQPValue::LongLongInt(1));
            t.insert("reason".into(), text(reason));
            t.insert("queue".into(), text(queue));
            t.insert("time".into(), AMQPValue::Timestamp(now_secs));
            t.insert("exchange".into(), text(msg.exchange.as_str()));
            t.insert("routing-keys".into(), AMQPValue::FieldArray(FieldArray::from(routing_keys(msg))));
            if let Some(exp) = msg.properties.expiration() {
                t.insert("original-expiration".into(), text(exp.as_str()));
            }
            t
        }
    };
    deaths.insert(0, AMQPValue::FieldTable(entry));
    headers.insert("x-death".into(), AMQPValue::FieldArray(FieldArray::from(deaths)));
    for (key, value) in [
        ("x-first-death-reason", reason),
        ("x-first-death-queue", queue),
        ("x-first-death-exchange", msg.exchange.as_str()),
    ] {
        if !headers.inner().contains_key(key) {
            headers.insert(key.into(), text(value));
        }
    }
    crate::message::without_expiration(&msg.properties).with_headers(headers)
}

/// Whether delivering to the queue named `target` would close a cycle of automatic
/// dead-lettering (one with no rejection in it): RabbitMQ drops such deliveries.
pub fn is_cycle(props: &BasicProperties, target: &str) -> bool {
    let Some(AMQPValue::FieldArray(deaths)) = props.headers().as_ref().and_then(|h| h.inner().get("x-death").cloned())
    else {
        return false;
    };
    let mut seen_target = false;
    for d in deaths.as_slice() {
        if let AMQPValue::FieldTable(t) = d {
            let get = |k: &str| t.inner().get(k).and_then(crate::args::as_text);
            if get("reason").as_deref() == Some("rejected") {
                return false;
            }
            if get("queue").as_deref() == Some(target) {
                seen_target = true;
            }
        }
    }
    seen_target
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn dl(msg: Message, reason: Reason) -> DeadLetter {
        DeadLetter { msg: Arc::new(msg), queue: "q".into(), reason, exchange: "dlx".into(), routing_key: None }
    }

    #[test]
    fn x_death_is_added_then_counted() {
        let props = BasicProperties::default().with_expiration("100".into());
        let m = Message::derived("ex".into(), "rk".into(), props, Bytes::from_static(b"x"));
        let p1 = dead_lettered_properties(&dl(m, Reason::Expired), 7);
        assert!(p1.expiration().is_none());
        let h = p1.headers().clone().unwrap();
        assert_eq!(h.inner().get("x-first-death-reason"), Some(&text("expired")));
        let Some(AMQPValue::FieldArray(d)) = h.inner().get("x-death") else { panic!() };
        let AMQPValue::FieldTable(first) = &d.as_slice()[0] else { panic!() };
        assert_eq!(first.inner().get("count"), Some(&AMQPValue::LongLongInt(1)));
        assert_eq!(first.inner().get("original-expiration"), Some(&text("100")));
        // Dead-lettered again from the same queue for the same reason: the count goes up.
        let m2 = Message::derived("dlx".into(), "rk".into(), p1, Bytes::from_static(b"x"));
        let p2 = dead_lettered_properties(&dl(m2, Reason::Expired), 8);
        let h2 = p2.headers().clone().unwrap();
        let Some(AMQPValue::FieldArray(d2)) = h2.inner().get("x-death") else { panic!() };
        assert_eq!(d2.as_slice().len(), 1);
        let AMQPValue::FieldTable(e) = &d2.as_slice()[0] else { panic!() };
        assert_eq!(e.inner().get("count"), Some(&AMQPValue::LongLongInt(2)));
    }
}
