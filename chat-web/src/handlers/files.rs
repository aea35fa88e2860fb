//! Shared files: upload (`POST /api/rooms/{id}/files?name=...`, the raw bytes as the body and
//! their type as Content-Type) and download (`GET /api/files/{room}/{file}`).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::{Buf, Bytes};
use futures_util::Stream;
use warp::http::{Response, StatusCode, header};
use warp::{Rejection, Reply};

use super::reject;
use crate::files::{self, FileMeta};
use crate::model::UploadQuery;
use crate::ratelimit::AddrKey;
use crate::state::App;

/// Bytes per chunk of a download's response body.
const CHUNK: usize = 64 * 1024;
/// What a served file may do: nothing (no script, no plugin, no fetch, a sandboxed origin).
const FILE_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox";

/// What an upload request says besides its body.
#[derive(Debug)]
pub struct UploadRequest {
    pub room: String,
    pub user: String,
    pub addr: Option<SocketAddr>,
    pub query: UploadQuery,
    pub content_type: Option<String>,
    /// Its Content-Length, if it gave one.
    pub announced: Option<u64>,
}

/// Upload: membership and the posting budget are checked before a byte of the body is read;
/// then the body waits for an upload slot (a front end holds a bounded number in memory) and
/// is read up to the limit (413 past it, the rest never read).
pub async fn upload<S, B, E>(app: App, req: UploadRequest, body: S) -> Result<impl Reply, Rejection>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
    E: std::fmt::Display,
{
    let UploadRequest { room, user, addr, query: q, content_type, announced } = req;
    let room = app.writable_room(&room, &user).map_err(reject)?;
    // a file is a message: the same posting budget
    app.local.budgets.post(&user, AddrKey::of(addr)).map_err(reject)?;
    let name = files::clean_name(&q.name).map_err(reject)?;
    let content_type = files::clean_type(content_type.as_deref());
    let limit = app.config.max_upload_bytes;
    let too_large = || reject(crate::ApiError::FileTooLarge(limit));
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let _slot = app.local.transfers.upload().await.map_err(reject)?;
    let bytes = warren_http::body::read_capped(body, limit, announced).await.map_err(|e| match e {
        warren_http::body::BodyError::TooLarge(_) => too_large(),
        other => reject(other.into()),
    })?;
    if bytes.is_empty() {
        return Err(reject(crate::ApiError::Unprocessable("the file is empty".into())));
    }
    let msg = app.share_file(&room, &user, &name, &content_type, &bytes).await.map_err(reject)?;
    tracing::debug!(room = %room.id, %user, size = bytes.len(), "file shared");
    Ok(warp::reply::with_status(warp::reply::json(&msg), StatusCode::CREATED))
}

/// Download, for a member of the room: raster images inline, everything else (SVG included)
/// as an attachment; a sandboxing CSP and `nosniff` either way. The download slot is held
/// until the body is sent.
pub async fn download(app: App, room: String, id: String, user: String) -> Result<impl Reply, Rejection> {
    let slot = app.local.transfers.download().await.map_err(reject)?;
    let (file, bytes) = app.shared_file(&room, &user, &id).await.map_err(reject)?;
    let inline = files::inline_image(&file.content_type, &bytes);
    let content_type = inline.unwrap_or(file.content_type.as_str()).to_owned();
    let length = bytes.len();
    let chunks = futures_util::stream::unfold((bytes, slot), |(mut rest, slot)| async move {
        if rest.is_empty() {
            return None;
        }
        let chunk = rest.split_to(rest.len().min(CHUNK));
        Some((Ok::<Bytes, Infallible>(chunk), (rest, slot)))
    });
    response(&file, &content_type, inline.is_some(), length, warp::hyper::Body::wrap_stream(chunks))
}

fn response(
    file: &FileMeta,
    content_type: &str,
    inline: bool,
    length: usize,
    body: warp::hyper::Body,
) -> Result<Response<warp::hyper::Body>, Rejection> {
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, length)
        .header(header::CONTENT_DISPOSITION, files::disposition(&file.name, inline))
        .header(header::CONTENT_SECURITY_POLICY, FILE_CSP)
        .header("x-content-type-options", "nosniff")
        // the same id is always the same bytes; private: only this user's browser keeps it
        .header(header::CACHE_CONTROL, "private, max-age=86400, immutable")
        .body(body)
        .map_err(|e| reject(crate::ApiError::Internal(format!("cannot build the file response: {e}"))))
}
