//! Headers routing: binding arguments matched against message headers. `x-match` is `all`
//! (the default) or `any`, which ignore binding arguments starting with `x-`, or RabbitMQ
//! 3.10's `all-with-x` / `any-with-x`, which match those too. A binding argument with a void
//! value only needs the header to be present; values compare within RabbitMQ's type classes
//! (an integer of any width equals the same integer of another width).

use amq_protocol::types::{AMQPValue, FieldTable, ShortString};

use super::Destination;
use super::{Binding, remove_binding};
use crate::args::{as_text, type_name};
use crate::connection::erl;
use crate::error::{AmqpError, AmqpResult};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum XMatch {
    All,
    Any,
    AllWithX,
    AnyWithX,
}

impl XMatch {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "all" => Self::All,
            "any" => Self::Any,
            "all-with-x" => Self::AllWithX,
            "any-with-x" => Self::AnyWithX,
            _ => return None,
        })
    }

    fn of(arguments: &FieldTable) -> Self {
        arguments.inner().get("x-match").and_then(as_text).and_then(|v| Self::parse(&v)).unwrap_or(Self::All)
    }
}

/// RabbitMQ's `rabbit_exchange_type_headers:validate_binding/2`: a bad `x-match` is 406.
pub fn validate_binding(arguments: &FieldTable) -> AmqpResult<()> {
    let Some(value) = arguments.inner().get("x-match") else { return Ok(()) };
    if let Some(text) = as_text(value) {
        if XMatch::parse(&text).is_some() {
            return Ok(());
        }
        return Err(AmqpError::precondition_failed(format!(
            "Invalid x-match field value {}; expected all, any, all-with-x, or any-with-x",
            erl::binary_inline(text.as_bytes())
        )));
    }
    let shown = match value {
        AMQPValue::Boolean(b) => b.to_string(),
        v => crate::args::as_integer(v).map_or_else(|| format!("{v:?}"), |i| i.to_string()),
    };
    Err(AmqpError::precondition_failed(format!(
        "Invalid x-match field type {} (value {shown}); expected longstr",
        type_name(value)
    )))
}

pub fn headers_match(arguments: &FieldTable, headers: &FieldTable) -> bool {
    let x_match = XMatch::of(arguments);
    let with_x = matches!(x_match, XMatch::AllWithX | XMatch::AnyWithX);
    let mut conditions = arguments
        .inner()
        .iter()
        .filter(|(k, _)| k.as_str() != "x-match" && (with_x || !k.as_str().starts_with("x-")))
        .peekable();
    let any = matches!(x_match, XMatch::Any | XMatch::AnyWithX);
    if conditions.peek().is_none() {
        // RabbitMQ: with no conditions, "all" matches everything and "any" matches nothing.
        return !any;
    }
    let mut check = |(k, v): (&ShortString, &AMQPValue)| match headers.inner().get(k.as_str()) {
        None => false,
        Some(_) if matches!(v, AMQPValue::Void) => true,
        Some(h) => values_equal(h, v),
    };
    if any { conditions.any(&mut check) } else { conditions.all(&mut check) }
}

/// Numbers of one class compare by value whatever their width (RabbitMQ `type_class/1`).
enum Class {
    Int(i128),
    Float(f64),
    Text(String),
    Other,
}

fn class(v: &AMQPValue) -> Class {
    match v {
        AMQPValue::ShortShortInt(x) => Class::Int(i128::from(*x)),
        AMQPValue::ShortShortUInt(x) => Class::Int(i128::from(*x)),
        AMQPValue::ShortInt(x) => Class::Int(i128::from(*x)),
        AMQPValue::ShortUInt(x) => Class::Int(i128::from(*x)),
        AMQPValue::LongInt(x) => Class::Int(i128::from(*x)),
        AMQPValue::LongUInt(x) => Class::Int(i128::from(*x)),
        AMQPValue::LongLongInt(x) => Class::Int(i128::from(*x)),
        AMQPValue::Float(x) => Class::Float(f64::from(*x)),
        AMQPValue::Double(x) => Class::Float(*x),
        v => as_text(v).map_or(Class::Other, Class::Text),
    }
}

fn values_equal(a: &AMQPValue, b: &AMQPValue) -> bool {
    match (class(a), class(b)) {
        (Class::Int(x), Class::Int(y)) => x == y,
        (Class::Float(x), Class::Float(y)) => x == y,
        (Class::Text(x), Class::Text(y)) => x == y,
        (Class::Other, Class::Other) => a == b,
        _ => false,
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

    #[test]
    fn integers_match_across_widths_not_across_classes() {
        let bind = table(&[("n", AMQPValue::LongInt(1))]);
        assert!(headers_match(&bind, &table(&[("n", AMQPValue::LongLongInt(1))])));
        assert!(headers_match(&bind, &table(&[("n", AMQPValue::ShortShortUInt(1))])));
        assert!(!headers_match(&bind, &table(&[("n", s("1"))])));
        assert!(!headers_match(&table(&[("b", AMQPValue::Boolean(true))]), &table(&[("b", AMQPValue::LongInt(1))])));
    }

    #[test]
    fn with_x_variants_match_x_headers() {
        let any_x = table(&[("x-match", s("any-with-x")), ("x-k", s("v"))]);
        assert!(headers_match(&any_x, &table(&[("x-k", s("v"))])));
        assert!(!headers_match(&any_x, &table(&[("x-k", s("w")), ("a", AMQPValue::LongInt(1))])));
        let all = table(&[("x-match", s("all")), ("x-k", s("v")), ("a", AMQPValue::LongInt(1))]);
        assert!(headers_match(&all, &table(&[("x-k", s("w")), ("a", AMQPValue::LongInt(1))])));
    }

    #[test]
    fn invalid_x_match_is_refused() {
        assert!(validate_binding(&table(&[("x-match", s("any-with-x"))])).is_ok());
        let e = validate_binding(&table(&[("x-match", s("some"))])).unwrap_err();
        assert_eq!(e.text, "Invalid x-match field value <<\"some\">>; expected all, any, all-with-x, or any-with-x");
        let e = validate_binding(&table(&[("x-match", AMQPValue::LongInt(1))])).unwrap_err();
        assert_eq!(e.text, "Invalid x-match field type signedint (value 1); expected longstr");
    }
}
