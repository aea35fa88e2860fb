//! Topic routing: dot-separated words, `*` matches exactly one word, `#` zero or more.
//!
//! The binding keys form a trie of words (a literal word, `*` or `#` per edge), walked once
//! per publish as a set of live nodes (an NFA simulation): each key word moves every live node
//! along its matching edges, and a node reached through `#` stays live for any number of
//! words. The live set never holds a node twice, so a publish costs at most (trie nodes x key
//! words) steps whatever the patterns: `#.#.#.#.#.#.#.#.z` against a 255-byte key is
//! microseconds, where the backtracking matcher this replaces took exponential time (and
//! RabbitMQ 3.10's does too). Literal edges are hash lookups, so unrelated bindings cost
//! nothing: routing `room.42` through a table of ten thousand `room.N` bindings visits three
//! nodes.

use std::collections::HashMap;

use super::Binding;
use super::Destination;

type NodeId = u32;
const ROOT: NodeId = 0;

#[derive(Debug, Default)]
struct Node {
    literal: HashMap<Box<str>, NodeId>,
    star: Option<NodeId>,
    hash: Option<NodeId>,
    /// Reached through a `#` edge: stays live while it consumes words.
    is_hash: bool,
    /// Bindings whose key ends at this node.
    bindings: Vec<Binding>,
}

impl Node {
    fn is_unused(&self) -> bool {
        self.literal.is_empty() && self.star.is_none() && self.hash.is_none() && self.bindings.is_empty()
    }
}

/// One edge of the trie: a pattern word.
#[derive(Clone, Copy)]
enum Edge<'a> {
    Literal(&'a str),
    Star,
    Hash,
}

impl<'a> Edge<'a> {
    fn of(word: &'a str) -> Self {
        match word {
            "*" => Edge::Star,
            "#" => Edge::Hash,
            w => Edge::Literal(w),
        }
    }
}

#[derive(Debug)]
pub struct TopicTable {
    /// The trie; `ROOT` is always there. Freed nodes are kept for reuse in `free`.
    nodes: Vec<Node>,
    free: Vec<NodeId>,
    count: usize,
}

impl Default for TopicTable {
    fn default() -> Self {
        Self { nodes: vec![Node::default()], free: Vec::new(), count: 0 }
    }
}

impl TopicTable {
    pub fn bind(&mut self, binding: Binding) {
        let mut node = ROOT;
        for word in words(binding.routing_key.as_str()) {
            node = match self.child(node, Edge::of(word)) {
                Some(next) => next,
                None => self.add_child(node, Edge::of(word)),
            };
        }
        self.nodes[node as usize].bindings.push(binding);
        self.count += 1;
    }

    pub fn unbind(&mut self, binding: &Binding) {
        let mut path = vec![ROOT];
        let key = binding.routing_key.as_str();
        for word in words(key) {
            match self.child(*path.last().unwrap_or(&ROOT), Edge::of(word)) {
                Some(next) => path.push(next),
                None => return,
            }
        }
        let leaf = *path.last().unwrap_or(&ROOT);
        let list = &mut self.nodes[leaf as usize].bindings;
        let Some(pos) = list.iter().position(|b| b.same_as(binding)) else { return };
        list.remove(pos);
        self.count -= 1;
        // Prune the nodes left with nothing, from the leaf up (never the root).
        let edges: Vec<Edge> = words(key).map(Edge::of).collect();
        for depth in (1..path.len()).rev() {
            let node = path[depth];
            if !self.nodes[node as usize].is_unused() {
                break;
            }
            let parent = &mut self.nodes[path[depth - 1] as usize];
            match edges[depth - 1] {
                Edge::Literal(w) => {
                    parent.literal.remove(w);
                }
                Edge::Star => parent.star = None,
                Edge::Hash => parent.hash = None,
            }
            self.nodes[node as usize] = Node::default();
            self.free.push(node);
        }
    }

    pub fn contains(&self, binding: &Binding) -> bool {
        let mut node = ROOT;
        for word in words(binding.routing_key.as_str()) {
            match self.child(node, Edge::of(word)) {
                Some(next) => node = next,
                None => return false,
            }
        }
        self.nodes[node as usize].bindings.iter().any(|b| b.same_as(binding))
    }

    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.nodes.iter().flat_map(|n| n.bindings.iter())
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn route(&self, routing_key: &str, push: &mut impl FnMut(&Destination)) {
        if self.is_empty() {
            return;
        }
        let mut live: Vec<NodeId> = Vec::new();
        let mut next: Vec<NodeId> = Vec::new();
        self.enter(ROOT, &mut live);
        for word in words(routing_key) {
            next.clear();
            for &id in &live {
                let node = &self.nodes[id as usize];
                if node.is_hash {
                    self.enter(id, &mut next);
                }
                if let Some(&child) = node.literal.get(word) {
                    self.enter(child, &mut next);
                }
                if let Some(child) = node.star {
                    self.enter(child, &mut next);
                }
            }
            next.sort_unstable();
            next.dedup();
            std::mem::swap(&mut live, &mut next);
            if live.is_empty() {
                return;
            }
        }
        for &id in &live {
            for b in &self.nodes[id as usize].bindings {
                push(&b.dest);
            }
        }
    }

    /// Add `id` to a live set with the nodes its `#` edges reach without consuming a word.
    fn enter(&self, mut id: NodeId, set: &mut Vec<NodeId>) {
        loop {
            set.push(id);
            match self.nodes[id as usize].hash {
                Some(h) => id = h,
                None => return,
            }
        }
    }

    fn child(&self, node: NodeId, edge: Edge) -> Option<NodeId> {
        let n = &self.nodes[node as usize];
        match edge {
            Edge::Literal(w) => n.literal.get(w).copied(),
            Edge::Star => n.star,
            Edge::Hash => n.hash,
        }
    }

    fn add_child(&mut self, node: NodeId, edge: Edge) -> NodeId {
        let fresh = Node { is_hash: matches!(edge, Edge::Hash), ..Node::default() };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = fresh;
                id
            }
            None => {
                self.nodes.push(fresh);
                (self.nodes.len() - 1) as NodeId
            }
        };
        let parent = &mut self.nodes[node as usize];
        match edge {
            Edge::Literal(w) => {
                parent.literal.insert(w.into(), id);
            }
            Edge::Star => parent.star = Some(id),
            Edge::Hash => parent.hash = Some(id),
        }
        id
    }
}

/// A key's dot-separated words; the empty key has none (RabbitMQ), "a..b" has an empty one.
fn words(key: &str) -> impl Iterator<Item = &str> {
    key.split('.').filter(move |_| !key.is_empty())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use amq_protocol::types::FieldTable;
    use proptest::prelude::*;

    use super::*;
    use crate::exchange::{Exchange, ExchangeKind};

    /// The plain recursive definition (exponential on `#` runs): the reference for the trie.
    fn reference(pattern: &[&str], key: &[&str]) -> bool {
        match pattern.split_first() {
            None => key.is_empty(),
            Some((&"#", rest)) => (0..=key.len()).any(|skip| reference(rest, &key[skip..])),
            Some((&"*", rest)) => !key.is_empty() && reference(rest, &key[1..]),
            Some((word, rest)) => key.first() == Some(word) && reference(rest, &key[1..]),
        }
    }

    fn exchange(name: &str) -> Arc<Exchange> {
        Arc::new(Exchange::new(name.into(), ExchangeKind::Topic, false, false, false, FieldTable::default()))
    }

    fn binding(to: &Arc<Exchange>, key: &str) -> Binding {
        Binding { dest: Destination::Exchange(to.clone()), routing_key: key.into(), arguments: FieldTable::default() }
    }

    /// The names of the destinations a key routes to, sorted (with repeats).
    fn routed(table: &TopicTable, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        table.route(key, &mut |d| {
            if let Destination::Exchange(x) = d {
                out.push(x.name.to_string());
            }
        });
        out.sort();
        out
    }

    fn m(pattern: &str, key: &str) -> bool {
        let mut t = TopicTable::default();
        t.bind(binding(&exchange("x"), pattern));
        !routed(&t, key).is_empty()
    }

    #[test]
    fn star_and_hash() {
        assert!(m("a.*.c", "a.b.c"));
        assert!(!m("a.*.c", "a.c"));
        assert!(m("a.#", "a"));
        assert!(m("a.#", "a.b.c"));
        assert!(m("#", "anything.at.all"));
        assert!(m("#", ""));
        assert!(m("#.c", "a.b.c"));
        assert!(!m("#.c", "a.b.d"));
        assert!(m("a.#.c", "a.c"));
        assert!(m("*", "x"));
        assert!(!m("*", "x.y"));
        assert!(m("room.#", "room.42"));
        assert!(!m("a.b", "a.b.c"));
        assert!(m("", ""));
        assert!(!m("*", ""));
        assert!(!m("", "a"));
        assert!(m("a.*.b", "a..b"));
        assert!(m("#.#", ""));
        assert!(m("*.#", "a"));
        assert!(!m("*.#.*", "a"));
        assert!(m("#.*.#", "a.b.c"));
    }

    #[test]
    fn every_matching_binding_is_pushed_once() {
        let mut t = TopicTable::default();
        let (a, b, c) = (exchange("a"), exchange("b"), exchange("c"));
        t.bind(binding(&a, "x.#"));
        t.bind(binding(&b, "#.y"));
        t.bind(binding(&c, "x.y.z"));
        t.bind(binding(&a, "#.#"));
        assert_eq!(routed(&t, "x.y"), ["a", "a", "b"]);
        assert_eq!(routed(&t, "x.y.z"), ["a", "a", "c"]);
        assert_eq!(routed(&t, "q"), ["a"]);
    }

    #[test]
    fn unbind_prunes_and_keeps_the_rest() {
        let mut t = TopicTable::default();
        let (a, b) = (exchange("a"), exchange("b"));
        t.bind(binding(&a, "x.*.z"));
        t.bind(binding(&b, "x.*.z"));
        t.bind(binding(&a, "x.#"));
        assert_eq!(t.len(), 3);
        t.unbind(&binding(&a, "x.*.z"));
        assert!(!t.contains(&binding(&a, "x.*.z")));
        assert!(t.contains(&binding(&b, "x.*.z")));
        assert_eq!(routed(&t, "x.y.z"), ["a", "b"]);
        t.unbind(&binding(&b, "x.*.z"));
        t.unbind(&binding(&a, "x.#"));
        t.unbind(&binding(&a, "never.bound"));
        assert_eq!(t.len(), 0);
        assert!(routed(&t, "x.y.z").is_empty());
        // Only the root is in use: every other node went back to the free list.
        assert_eq!(t.nodes.len() - t.free.len(), 1);
        // Churn reuses freed nodes instead of growing the arena.
        for i in 0..100 {
            let key = format!("k{i}.#.v");
            t.bind(binding(&a, &key));
            t.unbind(&binding(&a, &key));
        }
        assert_eq!(t.nodes.len(), 5, "the arena grew past its earlier peak of 5 nodes");
    }

    #[test]
    fn pathological_patterns_route_fast() {
        let mut t = TopicTable::default();
        let x = exchange("x");
        let pattern = ["#"; 16].join(".") + ".z";
        t.bind(binding(&x, &pattern));
        t.bind(binding(&exchange("y"), &(["#", "*"].repeat(40).join(".") + ".z")));
        // 127 one-letter words: a 253-byte key, the longest a short string allows near it.
        let miss = ["a"; 127].join(".");
        let hit = ["a"; 126].join(".") + ".z";
        assert_eq!(miss.len(), 253);
        let started = Instant::now();
        assert!(routed(&t, &miss).is_empty());
        assert_eq!(routed(&t, &hit), ["x", "y"]);
        // The backtracking matcher takes hours here; generous for a debug build on a busy CI.
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    fn word() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("a"), Just("b"), Just(""), Just("*"), Just("#")]
    }

    fn key_word() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("a"), Just("b"), Just("")]
    }

    /// A word list as `words` would give it: "" alone is the empty key, which has no words.
    fn as_words<'a>(list: &[&'a str]) -> Vec<&'a str> {
        if list.len() == 1 && list[0].is_empty() { vec![] } else { list.to_vec() }
    }

    /// The targets (indexes of `patterns`) the reference routes `key` to, among `bound`.
    fn expected(patterns: &[Vec<&str>], key: &[&str], bound: impl Fn(usize) -> bool) -> Vec<String> {
        let mut out: Vec<String> = patterns
            .iter()
            .enumerate()
            .filter(|(i, p)| bound(*i) && reference(&as_words(p), key))
            .map(|(i, _)| i.to_string())
            .collect();
        out.sort();
        out
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference(
            patterns in prop::collection::vec(prop::collection::vec(word(), 0..7), 1..6),
            keys in prop::collection::vec(prop::collection::vec(key_word(), 0..9), 1..8),
        ) {
            let mut t = TopicTable::default();
            let targets: Vec<_> = (0..patterns.len()).map(|i| exchange(&i.to_string())).collect();
            for (p, x) in patterns.iter().zip(&targets) {
                t.bind(binding(x, &p.join(".")));
            }
            for key in &keys {
                let key = as_words(key);
                let joined = key.join(".");
                prop_assert_eq!(routed(&t, &joined), expected(&patterns, &key, |_| true), "key {:?}", joined);
            }
            // unbinding half of them leaves exactly the other half routing
            for (i, (p, x)) in patterns.iter().zip(&targets).enumerate() {
                if i % 2 == 0 {
                    t.unbind(&binding(x, &p.join(".")));
                }
            }
            for key in &keys {
                let key = as_words(key);
                let joined = key.join(".");
                let after = expected(&patterns, &key, |i| i % 2 == 1);
                prop_assert_eq!(routed(&t, &joined), after, "key {:?} after unbind", joined);
            }
        }
    }
}
