//! warren-management: RabbitMQ 3.x's management HTTP API (`/api/...`) over warren's broker,
//! with its paths, JSON shapes, status codes, Basic authentication and tag rules, so that
//! `rabbitmqadmin`, monitoring scripts and HTTP clients written for RabbitMQ work unchanged.
//! Every answer is read from the broker's live state when asked; message rates are the
//! broker's own samples (`warren_broker::stats`, every 5 s).
//!
//! # Layout
//! - this file: [`start`] (bind, serve until shutdown), the shared [`Ctx`], and the warp filter
//!   that reads a request (method, raw path, query, credentials, capped body) and hands it to
//!   the router; everything it rejects goes through [`error::recover`].
//! - [`route`]: the path of a request as a [`route::Route`] (decoded segments) and the
//!   methods and body size each allows.
//! - [`router`]: authentication, then one `match` from route and method to a handler.
//! - [`auth`]: Basic credentials checked as an AMQP login, and RabbitMQ's tag rules.
//! - [`paging`]: `name`/`use_regex` filters, `sort`, pages and `columns` for every list.
//! - [`reply`]: the request as handlers see it ([`reply::Req`]) and response helpers.
//! - [`props`]: message properties as RabbitMQ's JSON (publish and get).
//! - [`rates`]: `message_stats` (counts and rates) of queues, exchanges and the overview.
//! - one module per resource group: [`overview`] (overview, whoami, nodes), [`connections`]
//!   (connections, channels, consumers), [`exchanges`], [`queues`], [`bindings`], [`access`]
//!   (vhosts, users, permissions, topic permissions), [`definitions`], [`health`] (health
//!   checks, aliveness test).
//! - [`metrics`]: the Prometheus exposition (`/metrics`, `/metrics/per-object`), served here
//!   without authentication (as RabbitMQ's plugin) and alone by [`start_prometheus`].
//! - [`error`]: `ApiError`, mapped once to a status and RabbitMQ's `{"error", "reason"}`.
//! - [`dashboard`]: the web dashboard at `/` (files in `static/`, compiled in), a client of
//!   the same `/api`.

pub mod access;
pub mod auth;
pub mod bindings;
pub mod connections;
pub mod dashboard;
pub mod definitions;
pub mod error;
pub mod exchanges;
pub mod health;
pub mod metrics;
pub mod overview;
pub mod paging;
pub mod props;
pub mod queues;
pub mod rates;
pub mod reply;
pub mod route;
pub mod router;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::sync::watch;
use warp::http::HeaderMap;
use warp::reply::Response;
use warp::{Filter, Reply};
use warren_broker::Broker;

/// What RabbitMQ version the API answers as (its JSON shapes are 3.10's).
pub const RABBITMQ_VERSION: &str = warren_broker::definitions::RABBIT_VERSION;

/// A listener to report in `/api/overview` and check in the health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// RabbitMQ's protocol name: `amqp`, `amqp/ssl`, `http`, `http/prometheus`.
    pub protocol: &'static str,
    pub addr: SocketAddr,
}

/// How the API is set up.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The broker's listeners (AMQP, AMQPS, Prometheus); the API adds its own once bound.
    pub listeners: Vec<Listener>,
    /// The data directory, shown as the node's `db_dir`.
    pub data_dir: Option<PathBuf>,
}

/// What every handler shares.
pub struct Ctx {
    pub broker: Arc<Broker>,
    /// The node's name, `warren@<host>` (RabbitMQ's `rabbit@<host>`).
    pub node: String,
    pub started: Instant,
    pub config: Config,
    /// The address the API serves on, once bound.
    own: OnceLock<SocketAddr>,
}

impl Ctx {
    pub fn new(broker: Arc<Broker>, config: Config) -> Self {
        Self { broker, node: node_name(), started: Instant::now(), config, own: OnceLock::new() }
    }

    /// Every listener, the API's own included.
    pub fn listeners(&self) -> Vec<Listener> {
        let mut all = self.config.listeners.clone();
        if let Some(addr) = self.own.get() {
            all.push(Listener { protocol: "http", addr: *addr });
        }
        all
    }

    /// The API's own address, once bound.
    pub fn own_addr(&self) -> Option<SocketAddr> {
        self.own.get().copied()
    }
}

/// `warren@<hostname>`.
fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("warren@{host}")
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the HTTP listener has no address: {0}")]
    Address(#[source] std::io::Error),
    #[error("cannot serve HTTP: {0}")]
    Serve(#[source] warren_http::ServeError),
}

/// The running API server.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Wait until it has stopped (after the shutdown signal).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// The `/api` filter: every request under `/api/` goes to the router; anything else is left
/// to other filters (the dashboard's), or is a 404 after `recover`.
pub fn api(ctx: Arc<Ctx>) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::path("api")
        .and(warp::method())
        .and(warp::path::full())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .and(warren_http::remote())
        .and(warp::body::stream())
        .and_then(move |method, path: warp::path::FullPath, query: String, headers: HeaderMap, peer, body| {
            let ctx = ctx.clone();
            async move {
                let incoming = router::Incoming { method, path: path.as_str().to_owned(), query, headers, peer };
                router::handle(&ctx, incoming, body).await.map_err(warp::reject::custom)
            }
        })
}

/// `/metrics` (aggregated) and `/metrics/per-object` (a series per queue): RabbitMQ's
/// Prometheus plugin's paths, for GET and HEAD, without credentials.
pub fn prometheus(ctx: Arc<Ctx>) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let aggregated = warp::path::end().map(|| false);
    let per_object = warp::path("per-object").and(warp::path::end()).map(|| true);
    warp::path("metrics").and(aggregated.or(per_object).unify()).and(warp::get().or(warp::head()).unify()).map(
        move |per_object: bool| {
            let text = metrics::Snapshot::take(&ctx).render(per_object);
            warp::reply::with_header(text, warp::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE).into_response()
        },
    )
}

/// Serve the API on `listener` (bound by `warren_broker::listen`) until `shutdown` turns true.
pub fn start(
    broker: Arc<Broker>,
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: watch::Receiver<bool>,
) -> Result<Server, StartError> {
    let ctx = Arc::new(Ctx::new(broker, config));
    let routes = warp::header::optional::<String>(dashboard::SCRIPT_HEADER)
        .and(
            api(ctx.clone())
                .or(prometheus(ctx.clone()))
                .unify()
                .or(dashboard::files())
                .unify()
                .recover(error::recover)
                .unify(),
        )
        .map(|from_script, reply: Response| dashboard::without_challenge(from_script, reply));
    let server = serve(listener, routes.map(|reply| Box::new(reply) as Box<dyn warp::Reply>).boxed(), shutdown)?;
    let _ = ctx.own.set(server.addr);
    Ok(server)
}

/// Serve only the Prometheus paths on `listener` (`--prometheus-bind`, RabbitMQ's port 15692)
/// until `shutdown` turns true; anything else there is a 404.
pub fn start_prometheus(
    broker: Arc<Broker>,
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: watch::Receiver<bool>,
) -> Result<Server, StartError> {
    let ctx = Arc::new(Ctx::new(broker, config));
    let routes = prometheus(ctx).recover(error::recover);
    serve(listener, routes.map(|reply| Box::new(reply) as Box<dyn warp::Reply>).boxed(), shutdown)
}

/// Serve `routes` on `listener` until `shutdown` turns true.
fn serve(
    listener: tokio::net::TcpListener,
    routes: warp::filters::BoxedFilter<(Box<dyn warp::Reply>,)>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Server, StartError> {
    let addr = listener.local_addr().map_err(StartError::Address)?;
    let signal = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    let (_, serve) = warren_http::http(listener, routes, signal).map_err(StartError::Serve)?;
    Ok(Server { addr, task: tokio::spawn(serve) })
}
