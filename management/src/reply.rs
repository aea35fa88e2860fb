//! The request as handlers see it, and the responses they give.

use std::sync::Arc;

use amq_protocol::types::FieldTable;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use warp::Reply;
use warp::http::{HeaderValue, Method, StatusCode, header};
use warp::reply::Response;

use warren_broker::definitions::{check_table, json_to_table};
use warren_broker::session::Session;
use warren_broker::vhost::VirtualHost;

use crate::Ctx;
use crate::auth::User;
use crate::error::ApiError;
use crate::paging::{ListParams, Query};

/// An authenticated request with its body read.
pub struct Req {
    pub method: Method,
    pub query: Query,
    pub body: Bytes,
    pub user: User,
    /// The `X-Reason` header (why a connection is closed).
    pub reason: Option<String>,
}

impl Req {
    /// The list parameters of the query string.
    pub fn list(&self) -> Result<ListParams, ApiError> {
        ListParams::from_query(&self.query)
    }

    /// The body as a JSON object (an empty body is `{}`); anything else is RabbitMQ's
    /// `not_json`.
    pub fn object(&self) -> Result<Map<String, Value>, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(ApiError::BadRequest("not_json".into())),
        }
    }

    /// The vhost a path names, for an operation on its objects: open to the user (RabbitMQ's
    /// `is_authorized_vhost`, 401) and existing (404).
    pub fn vhost(&self, ctx: &Ctx, name: &str) -> Result<Arc<VirtualHost>, ApiError> {
        self.user.require_vhost(&ctx.broker, name)?;
        ctx.broker.vhost(name).ok_or(ApiError::NotFound)
    }

    /// A session of the user on the vhost, to change something in it: RabbitMQ runs such
    /// operations as the user, with its permissions.
    /// What a PUT that declares `what` named `name` on `vhost` starts from: the vhost (a 404
    /// `vhost_not_found` when missing), a session of the user on it, the body as an object,
    /// and the name checked as a short string.
    pub fn declaring<'a>(
        &self,
        ctx: &'a Ctx,
        vhost: &str,
        what: &str,
        name: &str,
    ) -> Result<(Session<'a>, Map<String, Value>), ApiError> {
        self.user.require_vhost(&ctx.broker, vhost)?;
        if ctx.broker.vhost(vhost).is_none() {
            return Err(ApiError::NotFoundBecause("vhost_not_found".into()));
        }
        let session = self.session(ctx, vhost)?;
        let body = self.object()?;
        warren_broker::definitions::check_short(what, name).map_err(ApiError::BadRequest)?;
        Ok((session, body))
    }

    pub fn session<'a>(&self, ctx: &'a Ctx, vhost: &str) -> Result<Session<'a>, ApiError> {
        self.vhost(ctx, vhost)?;
        Session::new(&ctx.broker, &self.user.name, vhost).ok_or(ApiError::NotFound)
    }

    /// The body as `T` (an empty body is `{}`): unreadable JSON is `not_json`, a wrong shape
    /// names what serde found wrong.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let map = self.object()?;
        serde_json::from_value(Value::Object(map)).map_err(|e| ApiError::BadRequest(e.to_string()))
    }
}

/// 200 with a JSON body.
pub fn ok(body: Value) -> Response {
    warp::reply::json(&body).into_response()
}

/// A JSON body with another status (health checks: 503).
pub fn with_status(body: Value, status: StatusCode) -> Response {
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// 201 Created, no body (a new object).
pub fn created() -> Response {
    warp::reply::with_status(warp::reply(), StatusCode::CREATED).into_response()
}

/// 201 Created with a `Location` (a new binding).
pub fn created_at(location: &str) -> Response {
    let mut resp = created();
    if let Ok(value) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, value);
    }
    resp
}

/// 204 No Content (a change to an existing object, a deletion).
pub fn no_content() -> Response {
    warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response()
}

/// 201 when `new`, else 204: RabbitMQ's answer to a PUT.
pub fn put_result(new: bool) -> Response {
    if new { created() } else { no_content() }
}

/// The `arguments` of a body (`{}` when absent), checked to fit AMQP.
pub fn arguments(body: &Map<String, Value>) -> Result<FieldTable, ApiError> {
    match body.get("arguments") {
        None | Some(Value::Null) => Ok(FieldTable::default()),
        Some(Value::Object(map)) => {
            check_table(map).map_err(ApiError::BadRequest)?;
            Ok(json_to_table(map))
        }
        Some(_) => Err(ApiError::BadRequest("arguments must be an object".into())),
    }
}

/// Booleans in query strings and bodies as RabbitMQ reads them (`true`/`"true"`).
pub fn truthy(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s == "true"),
        _ => None,
    }
}
