//! Exchange-to-exchange bindings (exchange.bind / exchange.unbind, a RabbitMQ extension).

use std::sync::Arc;

use amq_protocol::types::FieldTable;

use super::{VirtualHost, check_not_default_exchange};
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
        let dest = Destination::Exchange(dst);
        self.store_binding(&src, &dest, routing_key, &arguments, true)?;
        src.bind(Binding { dest, routing_key: routing_key.into(), arguments });
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
        let dest = Destination::Exchange(dst);
        self.store_binding(&src, &dest, routing_key, &arguments, false)?;
        src.unbind(&Binding { dest, routing_key: routing_key.into(), arguments });
        self.maybe_auto_delete_exchange(&src);
        Ok(())
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
