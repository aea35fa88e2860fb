//! `ApiError`: every failure a client of the API can see, mapped once to an HTTP status and
//! RabbitMQ's JSON error body (`{"error": ..., "reason": ...}`), and the one `recover` that
//! turns warp's own rejections into the same shape.

use std::convert::Infallible;

use serde_json::json;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use warp::{Rejection, Reply};
use warren_broker::error::{AmqpError, ReplyCode};

/// The realm RabbitMQ's management plugin names in `WWW-Authenticate`.
pub const REALM: &str = "Basic realm=\"RabbitMQ Management\"";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No credentials at all: 401 with an empty body and the challenge.
    #[error("authentication required")]
    NoCredentials,
    /// Wrong user name or password: RabbitMQ spells this one `not_authorized`.
    #[error("Login failed")]
    LoginFailed,
    /// Logged in, but not allowed (tag rules, vhost access, refused operations).
    #[error("{0}")]
    NotAuthorised(String),
    /// RabbitMQ's `Object Not Found`: no such path or object.
    #[error("Not Found")]
    NotFound,
    /// A 404 with a reason of its own (`vhost_not_found`, an AMQP NOT_FOUND text).
    #[error("{0}")]
    NotFoundBecause(String),
    #[error("{0}")]
    BadRequest(String),
    /// A 400 with an error name other than `bad_request` (pagination).
    #[error("{reason}")]
    BadRequestNamed { error: &'static str, reason: String },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("{0}")]
    Internal(String),
    /// A RabbitMQ feature warren does not have (policies, runtime parameters, limits): 501.
    #[error("{0} are not supported by warren")]
    NotSupported(&'static str),
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NoCredentials | ApiError::LoginFailed | ApiError::NotAuthorised(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound | ApiError::NotFoundBecause(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) | ApiError::BadRequestNamed { .. } => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::NotSupported(_) => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// The `error` field of the body.
    fn name(&self) -> &'static str {
        match self {
            ApiError::NoCredentials | ApiError::NotAuthorised(_) => "not_authorised",
            ApiError::LoginFailed => "not_authorized",
            ApiError::NotFound => "Object Not Found",
            ApiError::NotFoundBecause(_) => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::BadRequestNamed { error, .. } => error,
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::BodyTooLarge(_) => "request_entity_too_large",
            ApiError::Internal(_) => "internal_server_error",
            ApiError::NotSupported(_) => "not_implemented",
        }
    }

    /// The response: status, JSON body, and the Basic challenge where RabbitMQ sends one.
    pub fn into_response(self) -> Response {
        let status = self.status();
        let challenge = matches!(self, ApiError::NoCredentials | ApiError::LoginFailed);
        let mut resp = match self {
            // RabbitMQ answers these with an empty body.
            ApiError::NoCredentials | ApiError::MethodNotAllowed => {
                warp::reply::with_status(warp::reply(), status).into_response()
            }
            other => {
                let body = json!({"error": other.name(), "reason": other.to_string()});
                warp::reply::with_status(warp::reply::json(&body), status).into_response()
            }
        };
        if challenge {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
        }
        resp
    }

    /// An AMQP error from a declare, delete, bind or purge, as RabbitMQ's management plugin
    /// maps its `direct_request`s: access refused is 401, NOT_FOUND 404, the rest 400 with
    /// the bare text.
    pub fn from_declare(e: AmqpError) -> Self {
        match e.code {
            ReplyCode::AccessRefused => ApiError::NotAuthorised("Access refused.".into()),
            ReplyCode::NotFound => ApiError::NotFoundBecause(e.text),
            _ => ApiError::BadRequest(e.text),
        }
    }

    /// An AMQP error from a get (RabbitMQ runs it on a channel): access refused is 401 with
    /// the channel's text, NOT_FOUND 404, the rest 400 with code, name and text.
    pub fn from_get(e: AmqpError) -> Self {
        match e.code {
            ReplyCode::AccessRefused => ApiError::NotAuthorised(e.reply_text()),
            ReplyCode::NotFound => ApiError::NotFoundBecause(e.reply_text()),
            _ => Self::from_publish(e),
        }
    }

    /// An AMQP error from a publish: always 400, `"<code> <NAME> - <text>"`.
    pub fn from_publish(e: AmqpError) -> Self {
        ApiError::BadRequest(format!("{} {}", e.code.code(), e.reply_text()))
    }

    /// A required field missing from a request body, in RabbitMQ's words.
    pub fn keys_missing(keys: &[&str]) -> Self {
        let list: Vec<String> = keys.iter().map(|k| format!("{{key_missing,{k}}}")).collect();
        let one_line = format!("[{}]", list.join(","));
        // Erlang's `~p` breaks a list that does not fit its line.
        if one_line.len() > 78 {
            ApiError::BadRequest(format!("[{}]", list.join(",\n ")))
        } else {
            ApiError::BadRequest(one_line)
        }
    }
}

impl From<warren_broker::access::AccessError> for ApiError {
    fn from(e: warren_broker::access::AccessError) -> Self {
        use warren_broker::access::AccessError;
        match e {
            AccessError::NoSuchUser(_) | AccessError::NoSuchVhost(_) => ApiError::NotFound,
            AccessError::Store(e) => ApiError::Internal(e.to_string()),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

/// The one place warp's rejections become responses: our `ApiError`s as they say, warp's
/// own (no route, bad method, oversized body) in the same JSON shape.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let err = if let Some(e) = rejection.find::<ApiError>() {
        e.clone()
    } else if rejection.is_not_found() {
        ApiError::NotFound
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::BodyTooLarge(0)
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        ApiError::Internal("internal error".into())
    };
    Ok(err.into_response())
}

impl From<warren_http::body::BodyError> for ApiError {
    fn from(e: warren_http::body::BodyError) -> Self {
        match e {
            warren_http::body::BodyError::TooLarge(limit) => ApiError::BodyTooLarge(limit),
            warren_http::body::BodyError::Read(why) => {
                ApiError::BadRequest(format!("cannot read the request body: {why}"))
            }
        }
    }
}
