//! `ApiError`: every failure a client can see, mapped once to an HTTP status and a JSON body.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::{Rejection, Reply};

/// An error a REST or WebSocket client can cause or observe.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing, expired or unknown token")]
    Unauthorized,
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
    /// A shared file over `--max-upload-mb` (the limit in bytes).
    #[error("the file is larger than the limit of {}", size_text(*.0))]
    FileTooLarge(usize),
    #[error("{0}")]
    Unprocessable(String),
    #[error("expected application/json")]
    UnsupportedMediaType,
    /// Over a rate limit; the number is the `Retry-After` in seconds.
    #[error("too many requests, retry in {0} s")]
    TooManyRequests(u64),
    #[error("broker unavailable: {0}")]
    Broker(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// `n` bytes as people read it: whole MB, else KB, else bytes.
fn size_text(n: usize) -> String {
    const MB: usize = 1024 * 1024;
    if n >= MB && n.is_multiple_of(MB) {
        format!("{} MB", n / MB)
    } else if n >= 1024 {
        format!("{:.1} KB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::BadCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) | ApiError::BodyTooLarge(_) | ApiError::FileTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Broker(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short machine-readable name for the error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::BadCredentials => "bad_credentials",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooLarge(_) | ApiError::BodyTooLarge(_) | ApiError::FileTooLarge(_) => "too_large",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::TooManyRequests(_) => "rate_limited",
            ApiError::Broker(_) => "broker_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: self.code(), status: self.status().as_u16(), message: self.to_string() }
    }
}

impl warp::reject::Reject for ApiError {}

impl From<lapin::Error> for ApiError {
    fn from(e: lapin::Error) -> Self {
        ApiError::Broker(e.to_string())
    }
}

/// The JSON shape of every error, over REST and as a WebSocket `error` event.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: &'static str,
    pub status: u16,
    pub message: String,
}

/// The one place that turns rejections into JSON + status (and `Retry-After` on a 429).
pub async fn recover(rejection: Rejection) -> Result<impl Reply, Infallible> {
    let retry_after = match rejection.find::<ApiError>() {
        Some(ApiError::TooManyRequests(secs)) => Some(secs.to_string()),
        _ => None,
    };
    let err = if let Some(e) = rejection.find::<ApiError>() {
        e.body()
    } else if rejection.is_not_found() {
        ApiError::NotFound("no such resource".into()).body()
    } else if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        ApiError::Unprocessable(e.to_string()).body()
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::TooLarge(crate::MAX_MESSAGE_BYTES).body()
    } else if rejection.find::<warp::reject::MissingHeader>().is_some() {
        ApiError::Unauthorized.body()
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        ApiError::BadRequest("invalid query string".into()).body()
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ErrorBody { error: "method_not_allowed", status: 405, message: "method not allowed".into() }
    } else if rejection.find::<warp::reject::UnsupportedMediaType>().is_some() {
        ErrorBody { error: "unsupported_media_type", status: 415, message: "expected application/json".into() }
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        ErrorBody { error: "internal", status: 500, message: "internal error".into() }
    };
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reply = warp::reply::with_status(warp::reply::json(&err), status).into_response();
    Ok(match retry_after {
        Some(secs) => warp::reply::with_header(reply, warp::http::header::RETRY_AFTER, secs).into_response(),
        None => reply,
    })
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
