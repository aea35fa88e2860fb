//! Exchange-to-exchange bindings (exchange.bind / exchange.unbind, a RabbitMQ extension).

use std::sync::Arc;

use amq_protocol::types::FieldTable;
use warren_persistence::BindingDef;

use super::{VirtualHost, check_not_default_exchange, json, stored};
use crate::error::AmqpResult;
use crate::exchange::{Binding, Destination, Exchange};

impl VirtualHost {
    /// Bind `destination` to `source`: messages routed by `source` with a matching key go on
    /// through `destination`. A missing source is reported before a missing destination.
    pub fn bind_exchange(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> AmqpResult<()> {
        check_not_default_exchange(destination)?;
        check_not_default_exchange(source)?;
        let src = self.exchange_or_404(source)?;
        let dst = self.exchange_or_404(destination)?;
        if let Some((store, def)) = self.exchange_binding_def(&src, &dst, routing_key, &arguments) {
            store.definitions.put_binding(&def).map_err(stored)?;
        }
        src.bind(Binding { dest: Destination::Exchange(dst), routing_key: routing_key.into(), arguments });
        Ok(())
    }

    /// Remove an exchange binding; one that does not exist is fine (RabbitMQ 3.10).
    pub fn unbind_exchange(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> AmqpResult<()> {
        check_not_default_exchange(destination)?;
        check_not_default_exchange(source)?;
        let (Ok(src), Ok(dst)) = (self.exchange_or_404(source), self.exchange_or_404(destination)) else {
            return Ok(());
        };
        if let Some((store, def)) = self.exchange_binding_def(&src, &dst, routing_key, &arguments) {
            store.definitions.delete_binding(&def).map_err(stored)?;
        }
        src.unbind(&Binding { dest: Destination::Exchange(dst), routing_key: routing_key.into(), arguments });
        self.maybe_auto_delete_exchange(&src);
        Ok(())
    }

    /// An exchange binding is durable when both exchanges are.
    fn exchange_binding_def(
        &self,
        src: &Exchange,
        dst: &Exchange,
        routing_key: &str,
        arguments: &FieldTable,
    ) -> Option<(&Arc<warren_persistence::Store>, BindingDef)> {
        let store = self.store.as_ref().filter(|_| src.durable && dst.durable)?;
        let def = BindingDef {
            vhost: self.name.clone(),
            exchange: src.name.as_str().to_owned(),
            queue: dst.name.as_str().to_owned(),
            routing_key: routing_key.to_owned(),
            arguments: json(arguments),
            to_exchange: true,
        };
        Some((store, def))
    }

    /// A deleted exchange is no longer the destination of any binding.
    pub(super) fn unbind_exchange_everywhere(&self, gone: &Arc<Exchange>, sources: &[Arc<Exchange>]) {
        for src in sources {
            if src.unbind_where(|d| d.is_exchange(gone)) > 0 {
                self.maybe_auto_delete_exchange(src);
            }
        }
    }
}
