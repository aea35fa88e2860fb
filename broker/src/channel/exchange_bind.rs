//! exchange.bind and exchange.unbind (exchange-to-exchange bindings).

use amq_protocol::protocol::{AMQPClass, exchange};

use super::{Channel, ChannelCtx, check_binding};
use crate::access::Resource;
use crate::error::AmqpResult;

impl Channel {
    pub(super) fn exchange_bind(&mut self, ctx: &ChannelCtx<'_>, m: exchange::Bind) -> AmqpResult<()> {
        check_binding(ctx, Resource::Exchange, m.destination.as_str(), m.source.as_str(), m.routing_key.as_str())?;
        ctx.vhost.bind_exchange(m.destination.as_str(), m.source.as_str(), m.routing_key.as_str(), m.arguments)?;
        if !m.nowait {
            self.reply(ctx, AMQPClass::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {})));
        }
        Ok(())
    }

    pub(super) fn exchange_unbind(&mut self, ctx: &ChannelCtx<'_>, m: exchange::Unbind) -> AmqpResult<()> {
        check_binding(ctx, Resource::Exchange, m.destination.as_str(), m.source.as_str(), m.routing_key.as_str())?;
        ctx.vhost.unbind_exchange(m.destination.as_str(), m.source.as_str(), m.routing_key.as_str(), m.arguments)?;
        if !m.nowait {
            self.reply(ctx, AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {})));
        }
        Ok(())
    }
}
