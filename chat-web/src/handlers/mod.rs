//! REST handlers, one file per resource. Each returns `Result<impl Reply, Rejection>` and
//! reports failures as `ApiError`, which `error::recover` turns into JSON.

pub mod accounts;
pub mod files;
pub mod messages;
pub mod rooms;

use warp::Rejection;

use crate::error::ApiError;

pub fn reject(e: ApiError) -> Rejection {
    warp::reject::custom(e)
}
