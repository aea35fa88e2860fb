//! Messages: history (newest first, `before` cursor), post, edit, delete, mark read.

use std::net::SocketAddr;

use serde::Deserialize;
use warp::http::StatusCode;
use warp::{Rejection, Reply};

use super::reject;
use crate::model::{HistoryQuery, PostMessage, SearchQuery};
use crate::ratelimit::AddrKey;
use crate::state::App;

pub async fn history(app: App, room: String, user: String, q: HistoryQuery) -> Result<impl Reply, Rejection> {
    let room = app.member_room(&room, &user).map_err(reject)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let page = app.history(&room, q.before, limit).await.map_err(reject)?;
    Ok(warp::reply::json(&page))
}

pub async fn post(
    app: App,
    room: String,
    user: String,
    addr: Option<SocketAddr>,
    body: PostMessage,
) -> Result<impl Reply, Rejection> {
    app.local.budgets.post(&user, AddrKey::of(addr)).map_err(reject)?;
    let msg = crate::posting::post_once(&app, &room, &user, &body.text, None, body.reply_to.as_deref())
        .await
        .map_err(reject)?;
    Ok(warp::reply::with_status(warp::reply::json(&msg), StatusCode::CREATED))
}

pub async fn edit(
    app: App,
    room: String,
    id: String,
    user: String,
    addr: Option<SocketAddr>,
    body: PostMessage,
) -> Result<impl Reply, Rejection> {
    app.local.budgets.post(&user, AddrKey::of(addr)).map_err(reject)?;
    let msg = app.change(&room, &user, &id, Some(&body.text)).await.map_err(reject)?;
    Ok(warp::reply::json(&msg))
}

pub async fn delete(
    app: App,
    room: String,
    id: String,
    user: String,
    addr: Option<SocketAddr>,
) -> Result<impl Reply, Rejection> {
    app.local.budgets.post(&user, AddrKey::of(addr)).map_err(reject)?;
    app.change(&room, &user, &id, None).await.map_err(reject)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct ReadUpTo {
    pub offset: u64,
}

pub async fn read(app: App, room: String, user: String, body: ReadUpTo) -> Result<impl Reply, Rejection> {
    app.mark_read(&room, &user, body.offset).await.map_err(reject)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Search the user's rooms (or one room) on the server: `?q=words&room=id`.
pub async fn search(app: App, user: String, q: SearchQuery) -> Result<impl Reply, Rejection> {
    let hits = app.search(&user, &q.q, q.room.as_deref()).await.map_err(reject)?;
    Ok(warp::reply::json(&hits))
}
