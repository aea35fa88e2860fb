//! Sign up, log in, log out, who am I, who is there.

use std::net::SocketAddr;

use serde_json::json;
use warp::http::StatusCode;
use warp::{Rejection, Reply};

use super::reject;
use crate::auth::{check_password, check_username};
use crate::directory::DirectoryEvent;
use crate::error::ApiError;
use crate::model::{Credentials, TokenReply};
use crate::ratelimit::AddrKey;
use crate::state::App;

fn token_reply(app: &App, user: &str, status: StatusCode) -> Result<impl Reply + use<>, Rejection> {
    let (token, expires_at) = app.local.tokens.issue(user).map_err(reject)?;
    Ok(warp::reply::with_status(
        warp::reply::json(&TokenReply { token, username: user.to_owned(), expires_at }),
        status,
    ))
}

pub async fn register(app: App, addr: Option<SocketAddr>, c: Credentials) -> Result<impl Reply, Rejection> {
    app.local.budgets.signup(AddrKey::of(addr)).map_err(reject)?;
    let user = c.username.trim().to_owned();
    check_username(&user).map_err(reject)?;
    check_password(&c.password).map_err(reject)?;
    if app.directory.user_exists(&user) {
        return Err(reject(ApiError::Conflict(format!("user {user} exists"))));
    }
    let password_hash = app.local.passwords.hash(c.password).await.map_err(reject)?;
    let event =
        DirectoryEvent::UserRegistered { id: uuid::Uuid::new_v4().to_string(), user: user.clone(), password_hash };
    if !app.record(event).await.map_err(reject)? {
        return Err(reject(ApiError::Conflict(format!("user {user} exists"))));
    }
    tracing::info!(%user, "registered");
    // every new account is in the default public room at once
    crate::default_room::join(&app, &user).await.map_err(reject)?;
    token_reply(&app, &user, StatusCode::CREATED)
}

pub async fn login(app: App, addr: Option<SocketAddr>, c: Credentials) -> Result<impl Reply, Rejection> {
    let user = c.username.trim().to_owned();
    let addr = AddrKey::of(addr);
    app.local.budgets.login(addr, &user).map_err(reject)?;
    let addr_key = addr.to_string();
    for limiter_check in [app.local.login_by_user.check(&user), app.local.login_by_addr.check(&addr_key)] {
        if let Err(wait) = limiter_check {
            return Err(reject(ApiError::TooManyRequests(wait)));
        }
    }
    let ok = app.local.passwords.verify(c.password, app.directory.password_hash(&user)).await.map_err(reject)?;
    if !ok {
        app.local.login_by_user.hit(&user);
        app.local.login_by_addr.hit(&addr_key);
        return Err(reject(ApiError::BadCredentials));
    }
    app.local.login_by_user.clear(&user);
    token_reply(&app, &user, StatusCode::OK)
}

pub async fn logout(app: App, token: String) -> Result<impl Reply, Rejection> {
    app.revoke_token(&token).await.map_err(reject)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(app: App, user: String) -> Result<impl Reply, Rejection> {
    let mut rooms = Vec::new();
    for room in app.directory.rooms_of(&user) {
        let mut view = room.view(&user);
        if let Ok(log) = app.room_log(&room).await {
            view.unread = Some(log.unread(&user));
            view.last_offset = log.last_offset();
        }
        rooms.push(view);
    }
    Ok(warp::reply::json(&json!({"username": user, "rooms": rooms, "presence": app.presence.snapshot()})))
}

pub async fn users(app: App, _user: String) -> Result<impl Reply, Rejection> {
    let list: Vec<_> =
        app.directory.users().into_iter().map(|u| json!({"username": u, "status": app.presence.status(&u)})).collect();
    Ok(warp::reply::json(&list))
}
