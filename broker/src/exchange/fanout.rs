//! Fanout routing: every bound queue gets every message.

use std::sync::Arc;

use super::{Binding, remove_binding};
use crate::queue::Queue;

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

    pub fn route(&self, push: &mut impl FnMut(&Arc<Queue>)) {
        self.bindings.iter().for_each(|b| push(&b.queue));
    }
}
