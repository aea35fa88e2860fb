//! Dead-lettering (x-dead-letter-exchange): a message rejected without requeue, expired, or
//! dropped by a length limit is republished to the queue's dead-letter exchange with an
//! `x-death` header (RabbitMQ 3.10's `rabbit_dead_letter`).
//!
//! Queues hand dead letters to their vhost's `DeadLetters` channel while holding their own
//! lock; one task per vhost republishes them, so no queue lock is ever held while another
//! queue is locked (a dead-letter cycle cannot deadlock).

use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::message::Message;
use crate::queue::Queue;
use crate::vhost::VirtualHost;

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

/// The vhost's dead-letter channel; its task starts with the first dead letter.
#[derive(Debug)]
pub struct DeadLetters {
    tx: mpsc::UnboundedSender<DeadLetter>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<DeadLetter>>>,
}

impl Default for DeadLetters {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self { tx, rx: Mutex::new(Some(rx)) }
    }
}

impl DeadLetters {
    /// Queue a dead letter for `vhost`'s task (started here the first time).
    pub fn send(&self, vhost: &Weak<VirtualHost>, dl: DeadLetter) {
        if let Some(rx) = self.rx.lock().take() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(run(vhost.clone(), rx));
                }
                Err(_) => {
                    *self.rx.lock() = Some(rx);
                    tracing::warn!("dead letter dropped: no runtime");
                    return;
                }
            }
        }
        let _ = self.tx.send(dl);
    }
}

async fn run(vhost: Weak<VirtualHost>, mut rx: mpsc::UnboundedReceiver<DeadLetter>) {
    while let Some(dl) = rx.recv().await {
        let Some(vh) = vhost.upgrade() else { break };
        republish(&vh, dl);
    }
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

/// Whether delivering to `target` would close a cycle of automatic dead-lettering (one with
/// no rejection in it): RabbitMQ drops such deliveries.
fn is_cycle(props: &BasicProperties, target: &Queue) -> bool {
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
            if get("queue").as_deref() == Some(target.name.as_str()) {
                seen_target = true;
            }
        }
    }
    seen_target
}

/// Route a dead letter through its exchange into queues (journaled like a publish when
/// persistent and bound for durable queues).
fn republish(vhost: &VirtualHost, dl: DeadLetter) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let props = dead_lettered_properties(&dl, now);
    let key = dl.routing_key.clone().unwrap_or_else(|| dl.msg.routing_key.clone());
    let msg = Arc::new(Message::derived(dl.exchange.clone(), key, props, dl.msg.body.clone()));
    let mut routed = Vec::new();
    if let Err(e) = vhost.route(dl.exchange.as_str(), &msg, &mut routed) {
        tracing::debug!(queue = %dl.queue, error = %e, "dead letter dropped");
        return;
    }
    routed.retain(|q| !is_cycle(&msg.properties, q));
    crate::queue::routed::enqueue(vhost.store(), &msg, &routed);
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
