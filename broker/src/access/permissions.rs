//! `Permissions`: one user's compiled permissions on one vhost, shared by `Arc` between that
//! user's connections and rebuilt when anything changes. Checks follow
//! `rabbit_auth_backend_internal`: a regular expression matches anywhere in the name (as
//! `re:run` does, so `^...$` anchors are the user's to write), an empty one means `^$`, and
//! topic permissions apply only where one is set for the exchange.

use regex::Regex;
use warren_persistence::{PermissionDef, TopicPermissionDef};

use crate::error::{AmqpError, AmqpResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perm {
    Configure,
    Write,
    Read,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Queue,
    Exchange,
}

impl Resource {
    fn name(self) -> &'static str {
        match self {
            Resource::Queue => "queue",
            Resource::Exchange => "exchange",
        }
    }
}

/// A compiled permission regular expression.
#[derive(Clone, Debug)]
pub enum Pattern {
    /// `.*`: everything (the default user's), without running a regex.
    Any,
    Regex(Regex),
    /// A stored expression this regex engine does not accept: matches nothing.
    Invalid,
}

impl Pattern {
    /// RabbitMQ's reading of a permission string: "" is `^$`.
    pub fn compile(source: &str) -> Result<Self, regex::Error> {
        match source {
            ".*" => Ok(Pattern::Any),
            "" => Regex::new("^$").map(Pattern::Regex),
            other => Regex::new(&pcre_braces(other)).map(Pattern::Regex),
        }
    }

    fn compile_or_invalid(source: &str) -> Self {
        Self::compile(source).unwrap_or_else(|e| {
            tracing::warn!(pattern = source, error = %e, "a stored permission does not compile: it grants nothing");
            Pattern::Invalid
        })
    }

    pub fn is_match(&self, text: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Regex(re) => re.is_match(text),
            Pattern::Invalid => false,
        }
    }
}

/// PCRE (RabbitMQ's `re`) reads a `{` that does not start a `{n}`, `{n,}` or `{n,m}`
/// quantifier as a literal brace, as in `^{username}\.`; the regex crate refuses it, so such
/// braces are escaped first.
fn pcre_braces(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 8);
    let mut chars = source.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some((_, next)) = chars.next() {
                    out.push(next);
                }
            }
            '{' if is_quantifier(&source[i + 1..]) => {
                // copy the quantifier through its closing brace
                out.push(c);
                for (_, q) in chars.by_ref() {
                    out.push(q);
                    if q == '}' {
                        break;
                    }
                }
            }
            '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Whether `rest` (what follows a `{`) is `n}`, `n,}` or `n,m}`.
fn is_quantifier(rest: &str) -> bool {
    let Some(end) = rest.find('}') else { return false };
    let body = &rest[..end];
    let (min, max) = body.split_once(',').unwrap_or((body, "0"));
    !min.is_empty() && min.bytes().all(|b| b.is_ascii_digit()) && max.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Debug)]
struct TopicRule {
    exchange: String,
    write: Pattern,
    read: Pattern,
}

/// What a user may do on a vhost.
#[derive(Debug)]
pub struct Permissions {
    user: String,
    vhost: String,
    /// configure, write, read; None: the user has no permissions on the vhost.
    granted: Option<[Pattern; 3]>,
    topics: Vec<TopicRule>,
    /// The access control generation this was built from.
    pub generation: u64,
}

/// RabbitMQ's topic permission variables, `{username}` and `{vhost}`.
fn expand(source: &str, user: &str, vhost: &str) -> String {
    source.replace("{username}", user).replace("{vhost}", vhost)
}

impl Permissions {
    pub fn new(
        user: &str,
        vhost: &str,
        permission: Option<&PermissionDef>,
        topics: &[&TopicPermissionDef],
        generation: u64,
    ) -> Self {
        let granted = permission.map(|p| {
            [
                Pattern::compile_or_invalid(&p.configure),
                Pattern::compile_or_invalid(&p.write),
                Pattern::compile_or_invalid(&p.read),
            ]
        });
        let topics = topics
            .iter()
            .map(|t| TopicRule {
                exchange: t.exchange.clone(),
                write: Pattern::compile_or_invalid(&expand(&t.write, user, vhost)),
                read: Pattern::compile_or_invalid(&expand(&t.read, user, vhost)),
            })
            .collect();
        Self { user: user.to_owned(), vhost: vhost.to_owned(), granted, topics, generation }
    }

    /// Everything allowed (for embedders and tests that build a broker without users).
    pub fn all(user: &str, vhost: &str) -> Self {
        Self {
            user: user.to_owned(),
            vhost: vhost.to_owned(),
            granted: Some([Pattern::Any, Pattern::Any, Pattern::Any]),
            topics: Vec::new(),
            generation: 0,
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether write is `.*`: every publish may go to any exchange (checked first on the
    /// publish path, where even comparing exchange names shows in profiles).
    pub fn writes_anywhere(&self) -> bool {
        matches!(&self.granted, Some([_, Pattern::Any, _]))
    }

    /// Whether the user has any permissions on the vhost (may open it).
    pub fn may_open(&self) -> bool {
        self.granted.is_some()
    }

    /// `rabbit_access_control:check_resource_access`: the default exchange is `amq.default`.
    pub fn check(&self, perm: Perm, resource: Resource, name: &str) -> AmqpResult<()> {
        let name = if resource == Resource::Exchange && name.is_empty() { "amq.default" } else { name };
        let allowed = self.granted.as_ref().is_some_and(|g| {
            let pattern = match perm {
                Perm::Configure => &g[0],
                Perm::Write => &g[1],
                Perm::Read => &g[2],
            };
            pattern.is_match(name)
        });
        if allowed {
            return Ok(());
        }
        Err(AmqpError::access_refused(format!(
            "access to {} '{name}' in vhost '{}' refused for user '{}'",
            resource.name(),
            self.vhost,
            self.user
        )))
    }

    /// Topic permission for a routing key on a topic exchange (write: publish, read: bind).
    pub fn check_topic(&self, perm: Perm, exchange: &str, routing_key: &str) -> AmqpResult<()> {
        let Some(rule) = self.topics.iter().find(|t| t.exchange == exchange) else { return Ok(()) };
        let pattern = if perm == Perm::Read { &rule.read } else { &rule.write };
        if pattern.is_match(routing_key) {
            return Ok(());
        }
        Err(AmqpError::access_refused(format!(
            "access to topic '{routing_key}' in exchange '{exchange}' in vhost '{}' refused for user '{}'",
            self.vhost, self.user
        )))
    }

    /// Whether any topic permission exists (publishers skip the lookup otherwise).
    pub fn has_topic_rules(&self) -> bool {
        !self.topics.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(c: &str, w: &str, r: &str) -> PermissionDef {
        PermissionDef { user: "bob".into(), vhost: "/".into(), configure: c.into(), write: w.into(), read: r.into() }
    }

    #[test]
    fn unanchored_like_re_run_and_empty_means_nothing() {
        let p = Permissions::new("bob", "/", Some(&perm("cfg", "", "^rd$")), &[], 1);
        assert!(p.check(Perm::Configure, Resource::Queue, "xcfgx").is_ok());
        assert!(p.check(Perm::Configure, Resource::Queue, "other").is_err());
        assert!(p.check(Perm::Write, Resource::Exchange, "anything").is_err());
        assert!(p.check(Perm::Read, Resource::Queue, "rd").is_ok());
        assert!(p.check(Perm::Read, Resource::Queue, "rd2").is_err());
        let e = p.check(Perm::Write, Resource::Exchange, "").unwrap_err();
        assert_eq!(e.text, "access to exchange 'amq.default' in vhost '/' refused for user 'bob'");
        assert_eq!(e.code, crate::error::ReplyCode::AccessRefused);
    }

    #[test]
    fn braces_read_as_pcre_does() {
        assert_eq!(pcre_braces("^{username}\\."), "^\\{username\\}\\.");
        assert_eq!(pcre_braces("a{2}b{1,}c{1,3}"), "a{2}b{1,}c{1,3}");
        assert_eq!(pcre_braces("\\{x"), "\\{x");
        assert!(Pattern::compile("^{username}\\.").unwrap().is_match("{username}.x"));
        assert!(Pattern::compile("a{2}").unwrap().is_match("aa"));
    }

    #[test]
    fn no_permission_refuses_everything() {
        let p = Permissions::new("bob", "v", None, &[], 1);
        assert!(!p.may_open());
        assert_eq!(
            p.check(Perm::Read, Resource::Queue, "q").unwrap_err().text,
            "access to queue 'q' in vhost 'v' refused for user 'bob'"
        );
    }

    #[test]
    fn topic_rules_expand_variables_and_apply_per_exchange() {
        let t = TopicPermissionDef {
            user: "bob".into(),
            vhost: "v".into(),
            exchange: "amq.topic".into(),
            write: "^{username}\\.{vhost}\\.".into(),
            read: "".into(),
        };
        let p = Permissions::new("bob", "v", Some(&perm(".*", ".*", ".*")), &[&t], 1);
        assert!(p.check_topic(Perm::Write, "amq.topic", "bob.v.x").is_ok());
        assert_eq!(
            p.check_topic(Perm::Write, "amq.topic", "alice.v.x").unwrap_err().text,
            "access to topic 'alice.v.x' in exchange 'amq.topic' in vhost 'v' refused for user 'bob'"
        );
        assert!(p.check_topic(Perm::Read, "amq.topic", "x").is_err());
        assert!(p.check_topic(Perm::Read, "amq.topic", "").is_ok());
        assert!(p.check_topic(Perm::Write, "other", "alice").is_ok(), "no rule for the exchange: allowed");
    }
}
