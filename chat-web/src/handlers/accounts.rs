//! Sign up, log in, log out, who am I, who is there.

use std::net::SocketAddr;

use serde_json::json;
use warp::http::StatusCode;
use warp::{Rejection, Reply};

use super::reject;
use crate::Signup;
use crate::auth::{check_password, check_username};
use crate::directory::DirectoryEvent;
use crate::error::ApiError;
use crate::model::{AccountChange, Credentials, PasswordChange, TokenReply};
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
    // the first account may always sign up: it administers the chat
    let first = app.directory.users().is_empty();
    let invited_to = match app.config.signup {
        _ if first => None,
        Signup::Open => None,
        Signup::Closed => return Err(reject(ApiError::Forbidden("sign-up is closed; ask an administrator".into()))),
        Signup::Invite => {
            let code = c.invite.as_deref().map(|c| c.rsplit(':').next().unwrap_or(c).trim()).unwrap_or_default();
            match app.directory.room_by_invite(code) {
                Some(room) if !code.is_empty() => Some(room.id),
                _ => return Err(reject(ApiError::Forbidden("sign-up needs a valid invitation".into()))),
            }
        }
    };
    let password_hash = app.local.passwords.hash(c.password).await.map_err(reject)?;
    let event =
        DirectoryEvent::UserRegistered { id: uuid::Uuid::new_v4().to_string(), user: user.clone(), password_hash };
    if !app.record(event).await.map_err(reject)? {
        return Err(reject(ApiError::Conflict(format!("user {user} exists"))));
    }
    tracing::info!(%user, "registered");
    if let Some(room) = invited_to {
        let event = DirectoryEvent::MemberJoined { id: uuid::Uuid::new_v4().to_string(), room, user: user.clone() };
        app.record(event).await.map_err(reject)?;
    }
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
    if app.directory.is_disabled(&user) {
        return Err(reject(ApiError::Forbidden("this account is disabled".into())));
    }
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
    Ok(warp::reply::json(
        &json!({"username": user, "admin": app.is_admin(&user), "rooms": rooms, "presence": app.presence.snapshot()}),
    ))
}

pub async fn users(app: App, _user: String) -> Result<impl Reply, Rejection> {
    let list: Vec<_> =
        app.directory.users().into_iter().map(|u| json!({"username": u, "status": app.presence.status(&u)})).collect();
    Ok(warp::reply::json(&list))
}

/// What the sign-in page needs before anyone signs in: who may sign up.
pub async fn config(app: App) -> Result<impl Reply, Rejection> {
    let signup = if app.directory.users().is_empty() { Signup::Open } else { app.config.signup };
    Ok(warp::reply::json(&json!({"signup": signup, "max_upload_bytes": app.config.max_upload_bytes})))
}

/// Change one's password (the current one is checked). Other sign-ins stay valid.
pub async fn change_password(app: App, user: String, body: PasswordChange) -> Result<impl Reply, Rejection> {
    check_password(&body.new_password).map_err(reject)?;
    let ok = app.local.passwords.verify(body.old_password, app.directory.password_hash(&user)).await.map_err(reject)?;
    if !ok {
        return Err(reject(ApiError::Forbidden("the current password is not right".into())));
    }
    let password_hash = app.local.passwords.hash(body.new_password).await.map_err(reject)?;
    let event =
        DirectoryEvent::PasswordChanged { id: uuid::Uuid::new_v4().to_string(), user: user.clone(), password_hash };
    app.record(event).await.map_err(reject)?;
    tracing::info!(%user, "password changed");
    Ok(StatusCode::NO_CONTENT)
}

fn account_list(app: &App) -> Vec<serde_json::Value> {
    app.directory
        .accounts()
        .into_iter()
        .map(|(u, admin, disabled)| json!({"username": u, "admin": admin || app.is_admin(&u), "disabled": disabled}))
        .collect()
}

/// An administrator's list of accounts.
pub async fn admin_users(app: App, user: String) -> Result<impl Reply, Rejection> {
    app.require_admin(&user).map_err(reject)?;
    Ok(warp::reply::json(&account_list(&app)))
}

/// An administrator disables or enables an account (a disabled one's sessions close at once),
/// or gives or takes the administrator role.
pub async fn admin_change(app: App, admin: String, name: String, body: AccountChange) -> Result<impl Reply, Rejection> {
    app.require_admin(&admin).map_err(reject)?;
    if !app.directory.user_exists(&name) {
        return Err(reject(ApiError::NotFound(format!("no user {name}"))));
    }
    if name == admin && (body.disabled == Some(true) || body.admin == Some(false)) {
        return Err(reject(ApiError::Unprocessable("administrators cannot disable or demote themselves".into())));
    }
    let id = || uuid::Uuid::new_v4().to_string();
    if let Some(disabled) = body.disabled {
        app.record(DirectoryEvent::UserDisabled { id: id(), user: name.clone(), disabled }).await.map_err(reject)?;
        tracing::info!(%admin, user = %name, disabled, "account changed");
    }
    if let Some(is_admin) = body.admin {
        app.record(DirectoryEvent::AdminSet { id: id(), user: name.clone(), admin: is_admin }).await.map_err(reject)?;
    }
    Ok(warp::reply::json(&account_list(&app)))
}
