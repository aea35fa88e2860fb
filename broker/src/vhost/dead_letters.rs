//! A vhost's dead letters: queues hand them over while holding their own lock, and one task
//! per vhost republishes them through the dead-letter exchange (see `crate::dead_letter`).

use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::VirtualHost;
use crate::dead_letter::{DeadLetter, dead_lettered_properties, is_cycle};
use crate::message::Message;

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
    routed.retain(|q| !is_cycle(&msg.properties, q.name.as_str()));
    crate::queue::routed::enqueue(vhost.store(), &msg, &routed);
}
