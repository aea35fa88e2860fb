//! List query parameters, as RabbitMQ's `rabbit_mgmt_util` reads them: `name` (+ `use_regex`)
//! filters by name, `sort` (a dotted key) and `sort_reverse` order, `page`/`page_size` turn
//! the answer into a paged object, `columns` keeps only the named (dotted) fields.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// RabbitMQ's default and largest page sizes.
const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 500;

/// The query string, decoded.
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parse `a=1&b=x+y` (`+` is a space, `%XX` decoded; the last of repeated keys wins).
    pub fn parse(raw: &str) -> Self {
        let decode = |s: &str| {
            let s = s.replace('+', " ");
            percent_encoding::percent_decode_str(&s).decode_utf8_lossy().into_owned()
        };
        let map = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `key=true`.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("true")
    }
}

/// Order two JSON values: numbers by value, strings lexically; across kinds null < bool <
/// number < string < the rest.
fn compare(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().unwrap_or_default().partial_cmp(&y.as_f64().unwrap_or_default()).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// The value at a dotted path (`message_stats.publish`).
fn lookup<'a>(item: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(item, |v, key| v.get(key))
}

/// How a list is to be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub name: Option<String>,
    pub use_regex: bool,
    pub sort: Option<String>,
    pub reverse: bool,
    /// `(page, page_size)` when a page was asked for.
    pub page: Option<(usize, usize)>,
    pub columns: Option<Vec<String>>,
}

impl ListParams {
    pub fn from_query(q: &Query) -> Result<Self, ApiError> {
        let page = match (q.get("page"), q.get("page_size")) {
            (None, _) => None,
            (Some(page), size) => {
                let number = page.parse::<usize>().ok().filter(|p| *p >= 1);
                let size_ok = size.map(|s| s.parse::<usize>().ok().filter(|s| (1..=MAX_PAGE_SIZE).contains(s)));
                match (number, size_ok) {
                    (Some(p), None) => Some((p, DEFAULT_PAGE_SIZE)),
                    (Some(p), Some(Some(s))) => Some((p, s)),
                    _ => {
                        return Err(ApiError::BadRequestNamed {
                            error: "invalid_pagination_parameters",
                            reason: format!(
                                "Invalid pagination parameters: page number {page}, page size {}",
                                size.unwrap_or("undefined")
                            ),
                        });
                    }
                }
            }
        };
        let columns = q
            .get("columns")
            .map(|c| c.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect::<Vec<_>>())
            .filter(|c| !c.is_empty());
        Ok(Self {
            name: q.get("name").filter(|n| !n.is_empty()).map(String::from),
            use_regex: q.flag("use_regex"),
            sort: q.get("sort").filter(|s| !s.is_empty()).map(String::from),
            reverse: q.flag("sort_reverse"),
            page,
            columns,
        })
    }

    /// Filter, sort, page and prune `items` (already in their default order); the answer is
    /// a list, or RabbitMQ's paged object when a page was asked for.
    pub fn apply(&self, mut items: Vec<Value>) -> Result<Value, ApiError> {
        let total = items.len();
        if let Some(name) = &self.name {
            let matcher = NameMatcher::new(name, self.use_regex)?;
            items.retain(|item| item.get("name").and_then(Value::as_str).is_some_and(|n| matcher.matches(n)));
        }
        if let Some(key) = &self.sort {
            // stable: items equal by the key keep their default order
            items.sort_by(|a, b| {
                compare(lookup(a, key).unwrap_or(&Value::Null), lookup(b, key).unwrap_or(&Value::Null))
            });
        }
        if self.reverse {
            items.reverse();
        }
        let Some((page, size)) = self.page else {
            return Ok(Value::Array(items.into_iter().map(|i| self.prune(i)).collect()));
        };
        let filtered = items.len();
        let page_count = filtered.div_ceil(size);
        if page > page_count.max(1) {
            return Err(ApiError::BadRequestNamed {
                error: "page_out_of_range",
                reason: format!("Page out of range, page: {page} page size: {size}, len: {filtered}"),
            });
        }
        let page_items: Vec<Value> =
            items.into_iter().skip((page - 1) * size).take(size).map(|i| self.prune(i)).collect();
        Ok(json!({
            "filtered_count": filtered,
            "item_count": page_items.len(),
            "items": page_items,
            "page": page,
            "page_count": page_count,
            "page_size": size,
            "total_count": total,
        }))
    }

    /// Keep only the asked-for columns (an item without one simply lacks it).
    pub fn prune(&self, item: Value) -> Value {
        match &self.columns {
            Some(columns) => prune(&item, columns),
            None => item,
        }
    }
}

fn prune(item: &Value, columns: &[String]) -> Value {
    let mut out = Map::new();
    for col in columns {
        let Some(v) = lookup(item, col) else { continue };
        let mut parts = col.split('.').peekable();
        let mut at = &mut out;
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                at.insert(part.to_owned(), v.clone());
                break;
            }
            let next = at.entry(part.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(map) = next else { break };
            at = map;
        }
    }
    Value::Object(out)
}

/// The `name` filter: a case-insensitive substring, or a case-insensitive regular expression.
enum NameMatcher {
    Contains(String),
    Regex(regex::Regex),
}

impl NameMatcher {
    fn new(pattern: &str, use_regex: bool) -> Result<Self, ApiError> {
        if !use_regex {
            return Ok(NameMatcher::Contains(pattern.to_lowercase()));
        }
        regex::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map(NameMatcher::Regex)
            .map_err(|e| ApiError::BadRequest(format!("invalid regular expression: {e}")))
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            NameMatcher::Contains(needle) => name.to_lowercase().contains(needle),
            NameMatcher::Regex(re) => re.is_match(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> ListParams {
        ListParams::from_query(&Query::parse(q)).unwrap()
    }

    fn items() -> Vec<Value> {
        vec![
            json!({"name": "q1", "messages": 5, "vhost": "/", "message_stats": {"publish": 1}}),
            json!({"name": "Q2", "messages": 2, "vhost": "/"}),
            json!({"name": "other", "messages": 9, "vhost": "v"}),
        ]
    }

    #[test]
    fn query_strings_decode() {
        let q = Query::parse("name=a+b%2Fc&use_regex=true&flag&columns=name,messages");
        assert_eq!(q.get("name"), Some("a b/c"));
        assert!(q.flag("use_regex"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("nope"), None);
        assert_eq!(Query::parse("").get("x"), None);
    }

    #[test]
    fn plain_lists_filter_sort_and_prune() {
        let out = params("sort=messages&columns=name,message_stats.publish").apply(items()).unwrap();
        assert_eq!(out, json!([{"name": "Q2"}, {"name": "q1", "message_stats": {"publish": 1}}, {"name": "other"}]));
        let out = params("name=q&columns=name").apply(items()).unwrap();
        assert_eq!(out, json!([{"name": "q1"}, {"name": "Q2"}]), "case-insensitive substring");
        let out = params("name=^q\\d$&use_regex=true&columns=name&sort=name&sort_reverse=true").apply(items()).unwrap();
        assert_eq!(out, json!([{"name": "q1"}, {"name": "Q2"}]));
        assert!(params("name=(&use_regex=true").apply(items()).is_err());
        assert_eq!(params("").apply(items()).unwrap(), Value::Array(items()));
    }

    #[test]
    fn pages_as_rabbitmq() {
        let out = params("page=2&page_size=2&columns=name").apply(items()).unwrap();
        assert_eq!(
            out,
            json!({"filtered_count": 3, "item_count": 1, "items": [{"name": "other"}], "page": 2,
                   "page_count": 2, "page_size": 2, "total_count": 3})
        );
        let out = params("page=1&name=q").apply(items()).unwrap();
        assert_eq!(out["filtered_count"], 2);
        assert_eq!(out["total_count"], 3);
        assert_eq!(out["page_size"], 100);
        let empty = params("page=1").apply(Vec::new()).unwrap();
        assert_eq!(empty["page_count"], 0);
        let err = params("page=3&page_size=2").apply(items()).unwrap_err();
        assert!(matches!(err, ApiError::BadRequestNamed { error: "page_out_of_range", .. }), "{err:?}");
        for bad in ["page=0", "page=x", "page=1&page_size=501", "page=1&page_size=0"] {
            let err = ListParams::from_query(&Query::parse(bad)).unwrap_err();
            assert!(matches!(err, ApiError::BadRequestNamed { error: "invalid_pagination_parameters", .. }), "{bad}");
        }
    }
}
