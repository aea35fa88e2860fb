//! Topic routing: dot-separated words, `*` matches exactly one word, `#` zero or more.

use super::Binding;
use super::Destination;

#[derive(Debug, Default)]
pub struct TopicTable {
    bindings: Vec<(Vec<String>, Binding)>,
}

impl TopicTable {
    pub fn bind(&mut self, binding: Binding) {
        let words = words(binding.routing_key.as_str()).map(str::to_owned).collect();
        self.bindings.push((words, binding));
    }

    pub fn unbind(&mut self, binding: &Binding) {
        if let Some(pos) = self.bindings.iter().position(|(_, b)| b.same_as(binding)) {
            self.bindings.remove(pos);
        }
    }

    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.iter().map(|(_, b)| b)
    }

    pub fn route(&self, routing_key: &str, push: &mut impl FnMut(&Destination)) {
        let key: Vec<&str> = words(routing_key).collect();
        for (pattern, binding) in &self.bindings {
            if topic_matches(pattern, &key) {
                push(&binding.dest);
            }
        }
    }
}

/// A key's dot-separated words; the empty key has none (RabbitMQ), "a..b" has an empty one.
fn words(key: &str) -> impl Iterator<Item = &str> {
    key.split('.').filter(move |_| !key.is_empty())
}

/// Whether the routing key's words match the binding pattern's words.
pub fn topic_matches<P: AsRef<str>>(pattern: &[P], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((first, rest)) => match first.as_ref() {
            "#" => (0..=key.len()).any(|skip| topic_matches(rest, &key[skip..])),
            "*" => !key.is_empty() && topic_matches(rest, &key[1..]),
            word => key.first() == Some(&word) && topic_matches(rest, &key[1..]),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    fn m(pattern: &str, key: &str) -> bool {
        let p: Vec<&str> = super::words(pattern).collect();
        let k: Vec<&str> = super::words(key).collect();
        topic_matches(&p, &k)
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
    }
}
