//! The embedded chat's AMQP identity: its own vhost and service user. The chat believes
//! `x-chat-author` and `chat.directory` events only from its service user, and keeps its
//! rooms and directory in a vhost where the default user has no permissions, so a client
//! that logs in as guest (or as a bot) can neither read private rooms nor speak for anyone.

use warren_broker::Broker;
use warren_broker::access::{AccessError, full_permissions};

/// Make sure `vhost` exists and `user` logs in with `password`, with full permissions on
/// `vhost` (and nothing granted elsewhere here). Runs at every start: the password may be new.
pub fn set_up(broker: &Broker, user: &str, password: &str, vhost: &str) -> Result<(), AccessError> {
    broker.add_vhost(vhost, "warren's web chat", Vec::new())?;
    broker.access.ensure_password(user, password)?;
    broker.access.set_permissions(full_permissions(user, vhost))?;
    tracing::debug!(user, vhost, "the chat's AMQP user is set up");
    Ok(())
}
