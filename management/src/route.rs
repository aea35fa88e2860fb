//! `Route`: which resource a request path names, with its decoded parts, and the methods it
//! allows. Paths are RabbitMQ's: each segment is percent-decoded once, so the vhost `/` is
//! written `%2F` and a binding's `properties_key` (itself percent-encoded) is sent encoded
//! again.

use percent_encoding::percent_decode_str;
use warp::http::Method;

/// The destination part of a binding path (`/q/{name}` or `/e/{name}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Queue(String),
    Exchange(String),
}

impl Dest {
    pub fn name(&self) -> &str {
        match self {
            Dest::Queue(n) | Dest::Exchange(n) => n,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Dest::Queue(_) => "queue",
            Dest::Exchange(_) => "exchange",
        }
    }

    pub fn target(&self) -> warren_broker::session::Target<'_> {
        match self {
            Dest::Queue(n) => warren_broker::session::Target::Queue(n),
            Dest::Exchange(n) => warren_broker::session::Target::Exchange(n),
        }
    }
}

/// Every path the API serves (after `/api`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Overview,
    WhoAmI,
    Nodes,
    Node(String),
    Connections,
    VhostConnections(String),
    Connection(String),
    ConnectionChannels(String),
    Channels,
    VhostChannels(String),
    Channel(String),
    Consumers,
    VhostConsumers(String),
    Exchanges,
    VhostExchanges(String),
    Exchange(String, String),
    ExchangePublish(String, String),
    /// `/exchanges/{vhost}/{name}/bindings/source` (true) or `/destination` (false).
    ExchangeBindings(String, String, bool),
    Queues,
    VhostQueues(String),
    Queue(String, String),
    QueueContents(String, String),
    QueueGet(String, String),
    QueueBindings(String, String),
    Bindings,
    VhostBindings(String),
    BindingsBetween(String, String, Dest),
    Binding(String, String, Dest, String),
    Vhosts,
    Vhost(String),
    VhostPermissions(String),
    VhostTopicPermissions(String),
    Users,
    UsersWithoutPermissions,
    UsersBulkDelete,
    User(String),
    UserPermissions(String),
    UserTopicPermissions(String),
    Permissions,
    Permission(String, String),
    TopicPermissions,
    TopicPermission(String, String),
    Definitions,
    VhostDefinitions(String),
    HealthAlarms,
    HealthLocalAlarms,
    HealthVirtualHosts,
    HealthPortListener(String),
    HealthProtocolListener(String),
    Aliveness(String),
    /// A list of something warren does not have (policies, runtime parameters, limits,
    /// feature flags): always empty, so tools that list them work.
    NoneOf(&'static str),
    /// One such object: none to show (404), none can be made (501).
    OneOf(&'static str),
}

/// Request bodies: definitions files are big, a published message may be, the rest is small.
pub const DEFINITIONS_BODY: usize = 64 * 1024 * 1024;
/// RabbitMQ's default `management.http.max_body_size` (20 MiB) for a message to publish.
pub const PUBLISH_BODY: usize = 20 * 1024 * 1024;
pub const SMALL_BODY: usize = 1024 * 1024;

/// Split a raw (still percent-encoded) path into decoded segments; None when a segment is
/// not UTF-8 once decoded. A trailing slash is ignored.
pub fn segments(raw_path: &str) -> Option<Vec<String>> {
    let trimmed = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    trimmed.split('/').map(|s| percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())).collect()
}

impl Route {
    /// The route of `/api/...` segments; None: no such path (404).
    pub fn parse(segments: &[String]) -> Option<Route> {
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let owned = |x: &str| x.to_owned();
        let route = match s.as_slice() {
            ["api", rest @ ..] => match rest {
                ["overview"] => Route::Overview,
                ["whoami"] => Route::WhoAmI,
                ["nodes"] => Route::Nodes,
                ["nodes", n] => Route::Node(owned(n)),
                ["connections"] => Route::Connections,
                ["connections", c] => Route::Connection(owned(c)),
                ["connections", c, "channels"] => Route::ConnectionChannels(owned(c)),
                ["vhosts", v, "connections"] => Route::VhostConnections(owned(v)),
                ["channels"] => Route::Channels,
                ["channels", c] => Route::Channel(owned(c)),
                ["vhosts", v, "channels"] => Route::VhostChannels(owned(v)),
                ["consumers"] => Route::Consumers,
                ["consumers", v] => Route::VhostConsumers(owned(v)),
                ["exchanges"] => Route::Exchanges,
                ["exchanges", v] => Route::VhostExchanges(owned(v)),
                ["exchanges", v, x] => Route::Exchange(owned(v), owned(x)),
                ["exchanges", v, x, "publish"] => Route::ExchangePublish(owned(v), owned(x)),
                ["exchanges", v, x, "bindings", "source"] => Route::ExchangeBindings(owned(v), owned(x), true),
                ["exchanges", v, x, "bindings", "destination"] => Route::ExchangeBindings(owned(v), owned(x), false),
                ["queues"] => Route::Queues,
                ["queues", v] => Route::VhostQueues(owned(v)),
                ["queues", v, q] => Route::Queue(owned(v), owned(q)),
                ["queues", v, q, "contents"] => Route::QueueContents(owned(v), owned(q)),
                ["queues", v, q, "get"] => Route::QueueGet(owned(v), owned(q)),
                ["queues", v, q, "bindings"] => Route::QueueBindings(owned(v), owned(q)),
                ["bindings"] => Route::Bindings,
                ["bindings", v] => Route::VhostBindings(owned(v)),
                ["bindings", v, "e", src, kind, dst] => Route::BindingsBetween(owned(v), owned(src), dest(kind, dst)?),
                ["bindings", v, "e", src, kind, dst, props] => {
                    Route::Binding(owned(v), owned(src), dest(kind, dst)?, owned(props))
                }
                ["vhosts"] => Route::Vhosts,
                ["vhosts", v] => Route::Vhost(owned(v)),
                ["vhosts", v, "permissions"] => Route::VhostPermissions(owned(v)),
                ["vhosts", v, "topic-permissions"] => Route::VhostTopicPermissions(owned(v)),
                ["users"] => Route::Users,
                ["users", "without-permissions"] => Route::UsersWithoutPermissions,
                ["users", "bulk-delete"] => Route::UsersBulkDelete,
                ["users", u] => Route::User(owned(u)),
                ["users", u, "permissions"] => Route::UserPermissions(owned(u)),
                ["users", u, "topic-permissions"] => Route::UserTopicPermissions(owned(u)),
                ["permissions"] => Route::Permissions,
                ["permissions", v, u] => Route::Permission(owned(v), owned(u)),
                ["topic-permissions"] => Route::TopicPermissions,
                ["topic-permissions", v, u] => Route::TopicPermission(owned(v), owned(u)),
                ["definitions"] => Route::Definitions,
                ["definitions", v] => Route::VhostDefinitions(owned(v)),
                ["health", "checks", "alarms"] => Route::HealthAlarms,
                ["health", "checks", "local-alarms"] => Route::HealthLocalAlarms,
                ["health", "checks", "virtual-hosts"] => Route::HealthVirtualHosts,
                ["health", "checks", "port-listener", p] => Route::HealthPortListener(owned(p)),
                ["health", "checks", "protocol-listener", p] => Route::HealthProtocolListener(owned(p)),
                ["aliveness-test", v] => Route::Aliveness(owned(v)),
                ["policies"] | ["policies", _] => Route::NoneOf("policies"),
                ["policies", _, _] => Route::OneOf("policies"),
                ["operator-policies"] | ["operator-policies", _] => Route::NoneOf("operator policies"),
                ["operator-policies", _, _] => Route::OneOf("operator policies"),
                ["parameters"] | ["parameters", _] | ["parameters", _, _] => Route::NoneOf("runtime parameters"),
                ["parameters", _, _, _] => Route::OneOf("runtime parameters"),
                ["global-parameters"] => Route::NoneOf("global parameters"),
                ["global-parameters", _] => Route::OneOf("global parameters"),
                ["vhost-limits"] | ["vhost-limits", _] => Route::NoneOf("virtual host limits"),
                ["vhost-limits", _, _] => Route::OneOf("virtual host limits"),
                ["user-limits"] | ["user-limits", _] => Route::NoneOf("user limits"),
                ["user-limits", _, _] => Route::OneOf("user limits"),
                ["feature-flags"] => Route::NoneOf("feature flags"),
                ["feature-flags", _, "enable"] => Route::OneOf("feature flags"),
                ["deprecated-features"] | ["deprecated-features", "used"] => Route::NoneOf("deprecated features"),
                _ => return None,
            },
            _ => return None,
        };
        Some(route)
    }

    /// The methods the path answers (405 for others). GET also answers HEAD.
    pub fn allows(&self, method: &Method) -> bool {
        use Route::*;
        let get = method == Method::GET || method == Method::HEAD;
        let (put, delete, post) = (method == Method::PUT, method == Method::DELETE, method == Method::POST);
        match self {
            Exchange(..) | Queue(..) | Vhost(_) | User(_) | Permission(..) | TopicPermission(..) | OneOf(_) => {
                get || put || delete
            }
            Connection(_) | Binding(..) => get || delete,
            QueueContents(..) => delete,
            ExchangePublish(..) | QueueGet(..) | UsersBulkDelete => post,
            BindingsBetween(..) | Definitions | VhostDefinitions(_) => get || post,
            _ => get,
        }
    }

    /// The largest request body the path takes.
    pub fn body_limit(&self) -> usize {
        match self {
            Route::Definitions | Route::VhostDefinitions(_) => DEFINITIONS_BODY,
            Route::ExchangePublish(..) => PUBLISH_BODY,
            _ => SMALL_BODY,
        }
    }
}

fn dest(kind: &str, name: &str) -> Option<Dest> {
    match kind {
        "q" => Some(Dest::Queue(name.to_owned())),
        "e" => Some(Dest::Exchange(name.to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> Option<Route> {
        Route::parse(&segments(path)?)
    }

    #[test]
    fn segments_are_decoded_once() {
        assert_eq!(
            segments("/api/queues/%2F/a%20b"),
            Some(vec!["api".into(), "queues".into(), "/".into(), "a b".into()])
        );
        assert_eq!(segments("/api/queues/"), Some(vec!["api".into(), "queues".into()]));
        assert_eq!(segments("/api/x/%25252F"), Some(vec!["api".into(), "x".into(), "%252F".into()]));
        assert_eq!(segments("/api/x/%FF"), None, "not UTF-8");
        assert_eq!(segments("/"), Some(vec![]));
    }

    #[test]
    fn paths_name_resources() {
        assert_eq!(route("/api/queues/%2F/q1"), Some(Route::Queue("/".into(), "q1".into())));
        assert_eq!(route("/api/queues/%2F/q%2F1/get"), Some(Route::QueueGet("/".into(), "q/1".into())));
        assert_eq!(
            route("/api/bindings/v/e/x/q/q1/a.%2523"),
            Some(Route::Binding("v".into(), "x".into(), Dest::Queue("q1".into()), "a.%23".into()))
        );
        assert_eq!(
            route("/api/bindings/v/e/x/e/y"),
            Some(Route::BindingsBetween("v".into(), "x".into(), Dest::Exchange("y".into())))
        );
        assert_eq!(route("/api/bindings/v/e/x/z/y"), None);
        assert_eq!(route("/api/users/without-permissions"), Some(Route::UsersWithoutPermissions));
        assert_eq!(
            route("/api/exchanges/%2F/amq.default/publish"),
            Some(Route::ExchangePublish("/".into(), "amq.default".into()))
        );
        assert_eq!(route("/api/health/checks/port-listener/5672"), Some(Route::HealthPortListener("5672".into())));
        assert_eq!(route("/api/nonexistent"), None);
        assert_eq!(route("/other"), None);
        assert_eq!(route("/api/vhosts/%2F/connections"), Some(Route::VhostConnections("/".into())));
    }

    #[test]
    fn methods_and_body_limits() {
        let q = Route::Queue("/".into(), "q".into());
        assert!(q.allows(&Method::GET) && q.allows(&Method::PUT) && q.allows(&Method::DELETE));
        assert!(!q.allows(&Method::POST));
        assert!(!Route::Overview.allows(&Method::DELETE));
        assert!(Route::QueueContents("/".into(), "q".into()).allows(&Method::DELETE));
        assert!(!Route::QueueContents("/".into(), "q".into()).allows(&Method::GET));
        assert_eq!(Route::Definitions.body_limit(), DEFINITIONS_BODY);
        assert_eq!(Route::Overview.body_limit(), SMALL_BODY);
    }
}
