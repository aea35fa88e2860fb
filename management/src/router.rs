//! From a request to a handler, in RabbitMQ's order: an unknown path is 404, a method the
//! path does not take 405, then the credentials (401), then the body (read up to the path's
//! cap, 413 past it), then one `match` on route and method.

use std::net::SocketAddr;

use bytes::Buf;
use futures_util::Stream;
use warp::http::{HeaderMap, Method, header};
use warp::reply::Response;

use crate::error::ApiError;
use crate::paging::Query;
use crate::reply::Req;
use crate::route::{Route, segments};
use crate::{Ctx, access, auth, bindings, connections, definitions, exchanges, health, overview, queues};

/// A request as it arrived, before its body is read.
pub struct Incoming {
    pub method: Method,
    /// The raw (percent-encoded) path.
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub peer: Option<SocketAddr>,
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Answer one request.
pub async fn handle<S, B>(ctx: &Ctx, incoming: Incoming, body: S) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let route = segments(&incoming.path).and_then(|s| Route::parse(&s)).ok_or(ApiError::NotFound)?;
    if !route.allows(&incoming.method) {
        return Err(ApiError::MethodNotAllowed);
    }
    let authorization = header_text(&incoming.headers, header::AUTHORIZATION.as_str());
    let user = auth::authenticate(&ctx.broker, authorization, incoming.peer.map(|p| p.ip()))?;
    let announced = match header_text(&incoming.headers, header::CONTENT_LENGTH.as_str()) {
        Some(n) => Some(n.parse::<u64>().map_err(|_| ApiError::BadRequest("invalid Content-Length".into()))?),
        None => None,
    };
    let body = warren_http::body::read_capped(body, route.body_limit(), announced).await?;
    let req = Req {
        method: incoming.method,
        query: Query::parse(&incoming.query),
        body,
        user,
        reason: header_text(&incoming.headers, "x-reason").map(String::from),
    };
    tracing::debug!(method = %req.method, path = %incoming.path, user = %req.user.name, "management API request");
    dispatch(ctx, route, &req).await
}

async fn dispatch(ctx: &Ctx, route: Route, req: &Req) -> Result<Response, ApiError> {
    use Route as R;
    let get = req.method == Method::GET || req.method == Method::HEAD;
    let (put, delete) = (req.method == Method::PUT, req.method == Method::DELETE);
    match route {
        R::Overview => overview::overview(ctx, req),
        R::WhoAmI => overview::whoami(req),
        R::Nodes => overview::nodes(ctx, req),
        R::Node(name) => overview::node(ctx, req, &name),
        R::Connections => connections::list(ctx, req, None),
        R::VhostConnections(v) => connections::list(ctx, req, Some(&v)),
        R::Connection(name) if delete => connections::close(ctx, req, &name),
        R::Connection(name) => connections::show(ctx, req, &name),
        R::ConnectionChannels(name) => connections::channels_of(ctx, req, &name),
        R::Channels => connections::channels(ctx, req, None),
        R::VhostChannels(v) => connections::channels(ctx, req, Some(&v)),
        R::Channel(name) => connections::channel(ctx, req, &name),
        R::Consumers => connections::consumers(ctx, req, None),
        R::VhostConsumers(v) => connections::consumers(ctx, req, Some(&v)),
        R::Exchanges => exchanges::list(ctx, req, None),
        R::VhostExchanges(v) => exchanges::list(ctx, req, Some(&v)),
        R::Exchange(v, x) if put => exchanges::declare(ctx, req, &v, &x),
        R::Exchange(v, x) if delete => exchanges::delete(ctx, req, &v, &x),
        R::Exchange(v, x) => exchanges::show(ctx, req, &v, &x),
        R::ExchangePublish(v, x) => exchanges::publish(ctx, req, &v, &x).await,
        R::ExchangeBindings(v, x, source) => bindings::of_exchange(ctx, req, &v, &x, source),
        R::Queues => queues::list(ctx, req, None),
        R::VhostQueues(v) => queues::list(ctx, req, Some(&v)),
        R::Queue(v, q) if put => queues::declare(ctx, req, &v, &q),
        R::Queue(v, q) if delete => queues::delete(ctx, req, &v, &q),
        R::Queue(v, q) => queues::show(ctx, req, &v, &q),
        R::QueueContents(v, q) => queues::purge(ctx, req, &v, &q),
        R::QueueGet(v, q) => queues::get(ctx, req, &v, &q),
        R::QueueBindings(v, q) => bindings::of_queue(ctx, req, &v, &q),
        R::Bindings => bindings::list(ctx, req, None),
        R::VhostBindings(v) => bindings::list(ctx, req, Some(&v)),
        R::BindingsBetween(v, s, d) if get => bindings::between(ctx, req, &v, &s, &d),
        R::BindingsBetween(v, s, d) => bindings::create(ctx, req, &v, &s, &d),
        R::Binding(v, s, d, key) if delete => bindings::delete(ctx, req, &v, &s, &d, &key),
        R::Binding(v, s, d, key) => bindings::show(ctx, req, &v, &s, &d, &key),
        R::Vhosts => access::vhosts(ctx, req),
        R::Vhost(v) if put => access::put_vhost(ctx, req, &v),
        R::Vhost(v) if delete => access::delete_vhost(ctx, req, &v),
        R::Vhost(v) => access::vhost(ctx, req, &v),
        R::VhostPermissions(v) => access::vhost_permissions(ctx, req, &v),
        R::VhostTopicPermissions(v) => access::vhost_topic_permissions(ctx, req, &v),
        R::Users => access::users(ctx, req),
        R::UsersWithoutPermissions => access::users_without_permissions(ctx, req),
        R::UsersBulkDelete => access::bulk_delete_users(ctx, req),
        R::User(u) if put => access::put_user(ctx, req, &u),
        R::User(u) if delete => access::delete_user(ctx, req, &u),
        R::User(u) => access::user(ctx, req, &u),
        R::UserPermissions(u) => access::user_permissions(ctx, req, &u),
        R::UserTopicPermissions(u) => access::user_topic_permissions(ctx, req, &u),
        R::Permissions => access::permissions(ctx, req),
        R::Permission(v, u) if put => access::put_permission(ctx, req, &v, &u),
        R::Permission(v, u) if delete => access::delete_permission(ctx, req, &v, &u),
        R::Permission(v, u) => access::permission(ctx, req, &v, &u),
        R::TopicPermissions => access::topic_permissions(ctx, req),
        R::TopicPermission(v, u) if put => access::put_topic_permission(ctx, req, &v, &u),
        R::TopicPermission(v, u) if delete => access::delete_topic_permission(ctx, req, &v, &u),
        R::TopicPermission(v, u) => access::topic_permission(ctx, req, &v, &u),
        R::Definitions if get => definitions::export(ctx, req, None),
        R::Definitions => definitions::import(ctx, req, None),
        R::VhostDefinitions(v) if get => definitions::export(ctx, req, Some(&v)),
        R::VhostDefinitions(v) => definitions::import(ctx, req, Some(&v)),
        R::HealthAlarms => health::alarms(ctx, req, false),
        R::HealthLocalAlarms => health::alarms(ctx, req, true),
        R::HealthVirtualHosts => health::virtual_hosts(ctx, req),
        R::HealthPortListener(p) => health::port_listener(ctx, req, &p),
        R::HealthProtocolListener(p) => health::protocol_listener(ctx, req, &p),
        R::Aliveness(v) => health::aliveness(ctx, req, &v).await,
        R::NoneOf(_) => Ok(crate::reply::ok(req.list()?.apply(Vec::new())?)),
        R::OneOf(_) if get => Err(ApiError::NotFound),
        R::OneOf(what) => Err(ApiError::NotSupported(what)),
    }
}
