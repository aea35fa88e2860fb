//! Fanout routing: every bound queue gets every message.

use super::Destination;
use super::{Binding, remove_binding};

#[derive(Debug, Default)]
pub struct FanoutTable {
    bindings: Vec<Binding>,
}

impl FanoutTable {
    pub fn bind(&mut self, binding: Binding) {
        self.bindings.push(binding);
    }

    pub fn unbind(&mut self, binding: &Binding) {
        remove_binding(&mut self.bindings, binding);
    }

    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.iter()
    }

    pub fn route(&self, push: &mut impl FnMut(&Destination)) {
        self.bindings.iter().for_each(|b| push(&b.dest));
    }
}
