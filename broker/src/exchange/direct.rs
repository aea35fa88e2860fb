//! Direct routing: the routing key must equal the binding key.

use std::collections::HashMap;

use amq_protocol::types::ShortString;

use super::Destination;
use super::{Binding, remove_binding};

#[derive(Debug, Default)]
pub struct DirectTable {
    by_key: HashMap<ShortString, Vec<Binding>>,
}

impl DirectTable {
    pub fn bind(&mut self, binding: Binding) {
        self.by_key.entry(binding.routing_key.clone()).or_default().push(binding);
    }

    pub fn unbind(&mut self, binding: &Binding) {
        if let Some(list) = self.by_key.get_mut(binding.routing_key.as_str()) {
            remove_binding(list, binding);
            if list.is_empty() {
                self.by_key.remove(binding.routing_key.as_str());
            }
        }
    }

    pub fn contains(&self, binding: &Binding) -> bool {
        self.by_key.get(binding.routing_key.as_str()).is_some_and(|list| list.iter().any(|b| b.same_as(binding)))
    }

    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.by_key.values().flatten()
    }

    pub fn route(&self, routing_key: &str, push: &mut impl FnMut(&Destination)) {
        if let Some(list) = self.by_key.get(routing_key) {
            list.iter().for_each(|b| push(&b.dest));
        }
    }
}
