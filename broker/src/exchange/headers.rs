//! Headers routing: binding arguments matched against message headers, `x-match` all or any.
//! Arguments starting with `x-` are not matched (RabbitMQ semantics); a binding argument with a
//! void value only needs the header to be present.

use amq_protocol::types::{AMQPValue, FieldTable};

use super::Destination;
use super::{Binding, remove_binding};

#[derive(Debug, Default)]
pub struct HeadersTable {
    bindings: Vec<Binding>,
}

impl HeadersTable {
    pub fn bind(&mut self, binding: Binding) {
        self.bindings.push(binding);
    }

    pub fn unbind(&mut self, binding: &Binding) {
        remove_binding(&mut self.bindings, binding);
    }

    pub fn bindings(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.iter()
    }

    pub fn route(&self, headers: Option<&FieldTable>, push: &mut impl FnMut(&Destination)) {
        let empty = FieldTable::default();
        let headers = headers.unwrap_or(&empty);
        for b in &self.bindings {
            if headers_match(&b.arguments, headers) {
                push(&b.dest);
            }
        }
    }
}

pub fn headers_match(arguments: &FieldTable, headers: &FieldTable) -> bool {
    let match_any = matches!(
        arguments.inner().get("x-match"),
        Some(AMQPValue::LongString(s)) if s.as_bytes() == b"any"
    ) || matches!(arguments.inner().get("x-match"), Some(AMQPValue::ShortString(s)) if s.as_str() == "any");
    let mut conditions = arguments.inner().iter().filter(|(k, _)| !k.as_str().starts_with("x-")).peekable();
    if conditions.peek().is_none() {
        // RabbitMQ: with no conditions, "all" matches everything and "any" matches nothing.
        return !match_any;
    }
    let mut check = |(k, v): (&amq_protocol::types::ShortString, &AMQPValue)| match headers.inner().get(k.as_str()) {
        None => false,
        Some(_) if matches!(v, AMQPValue::Void) => true,
        Some(h) => values_equal(h, v),
    };
    if match_any { conditions.any(&mut check) } else { conditions.all(&mut check) }
}

/// Compare header values; strings compare by content whether short or long.
fn values_equal(a: &AMQPValue, b: &AMQPValue) -> bool {
    match (a, b) {
        (AMQPValue::LongString(x), AMQPValue::ShortString(y))
        | (AMQPValue::ShortString(y), AMQPValue::LongString(x)) => x.as_bytes() == y.as_str().as_bytes(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::LongString;

    fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    fn s(v: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(v.as_bytes().to_vec()))
    }

    #[test]
    fn all_and_any() {
        let all = table(&[("x-match", s("all")), ("a", s("1")), ("b", s("2"))]);
        let any = table(&[("x-match", s("any")), ("a", s("1")), ("b", s("2"))]);
        let both = table(&[("a", s("1")), ("b", s("2"))]);
        let one = table(&[("a", s("1"))]);
        assert!(headers_match(&all, &both));
        assert!(!headers_match(&all, &one));
        assert!(headers_match(&any, &one));
        assert!(!headers_match(&any, &table(&[("a", s("9"))])));
        // Default x-match is all.
        assert!(!headers_match(&table(&[("a", s("1")), ("b", s("2"))]), &one));
    }
}
