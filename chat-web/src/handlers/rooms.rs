//! Rooms: list, create, show, join (public or by invitation), leave, 1:1 chats.

use warp::http::StatusCode;
use warp::{Rejection, Reply};

use super::reject;
use crate::directory::{DirectoryEvent, Room, direct_room_id};
use crate::error::ApiError;
use crate::model::{AddMember, JoinRoom, NewRoom, RoomChange};
use crate::state::{App, no_such_room};

/// The shortest retention a room can have.
pub const MIN_RETENTION_SECS: u64 = 10;
/// The longest (100 years, as `retention_days`' 36500).
pub const MAX_RETENTION_SECS: u64 = 36_500 * 86_400;

fn event_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub async fn list(app: App, user: String) -> Result<impl Reply, Rejection> {
    let views: Vec<_> = app.directory.visible_rooms(&user).iter().map(|r| r.view(&user)).collect();
    Ok(warp::reply::json(&views))
}

pub async fn create(app: App, user: String, new: NewRoom) -> Result<impl Reply, Rejection> {
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(reject(ApiError::Unprocessable("room names are 1 to 64 characters".into())));
    }
    let days = new.retention_days.unwrap_or(app.config.default_retention_days);
    if days > 36_500 {
        return Err(reject(ApiError::Unprocessable("retention_days is at most 36500".into())));
    }
    if new.retention_seconds.is_some_and(|s| !(MIN_RETENTION_SECS..=MAX_RETENTION_SECS).contains(&s)) {
        return Err(reject(ApiError::Unprocessable(format!(
            "retention_seconds is {MIN_RETENTION_SECS} to {MAX_RETENTION_SECS}"
        ))));
    }
    // whole days stay days (what older front ends read); anything else is kept in seconds
    let (days, seconds) = match new.retention_seconds {
        Some(s) if s.is_multiple_of(86_400) => (u32::try_from(s / 86_400).unwrap_or(36_500), None),
        Some(s) => (u32::try_from(s.div_ceil(86_400)).unwrap_or(36_500), Some(s)),
        None => (days, None),
    };
    let simple = uuid::Uuid::new_v4().simple().to_string();
    let room = Room {
        id: format!("r{}", &simple[..12]),
        name,
        public: new.public,
        direct: false,
        retention_days: days,
        retention_seconds: seconds,
        created_by: user.clone(),
        invite: uuid::Uuid::new_v4().simple().to_string(),
        archived: false,
        members: Default::default(),
    };
    app.amqp.declare_room(&room.id, room.retention_secs()).await.map_err(reject)?;
    app.record(DirectoryEvent::RoomCreated { id: event_id(), room: room.clone() }).await.map_err(reject)?;
    let room = app.directory.room(&room.id).ok_or_else(|| reject(ApiError::Conflict("room id clash".into())))?;
    Ok(warp::reply::with_status(warp::reply::json(&room.view(&user)), StatusCode::CREATED))
}

pub async fn show(app: App, id: String, user: String) -> Result<impl Reply, Rejection> {
    let room = app.visible_room(&id, &user).map_err(reject)?;
    Ok(warp::reply::json(&room.view(&user)))
}

/// Join a public room, or a private one with its invitation; without one, a private room
/// (or a 1:1 chat of others) does not exist for the caller.
pub async fn join(app: App, id: String, user: String, body: JoinRoom) -> Result<impl Reply, Rejection> {
    let room = app.directory.room(&id).ok_or_else(|| reject(no_such_room(&id)))?;
    if !room.members.contains(&user) {
        let invited = body.invite.as_deref().is_some_and(|c| !room.invite.is_empty() && c == room.invite);
        if room.direct || (!room.public && !invited) {
            return Err(reject(no_such_room(&id)));
        }
        let event = DirectoryEvent::MemberJoined { id: event_id(), room: id.clone(), user: user.clone() };
        app.record(event).await.map_err(reject)?;
    }
    let room = app.directory.room(&id).ok_or_else(|| reject(no_such_room(&id)))?;
    Ok(warp::reply::json(&room.view(&user)))
}

/// A member adds someone by name to a private room (an invitation without the link).
pub async fn add_member(app: App, id: String, user: String, body: AddMember) -> Result<impl Reply, Rejection> {
    let room = app.member_room(&id, &user).map_err(reject)?;
    if room.direct || room.public {
        return Err(reject(ApiError::Unprocessable("people join public rooms themselves; 1:1 chats have two".into())));
    }
    let other = body.user.trim().to_owned();
    if !app.directory.user_exists(&other) {
        return Err(reject(ApiError::NotFound(format!("no user {other}"))));
    }
    if !room.members.contains(&other) {
        let event = DirectoryEvent::MemberJoined { id: event_id(), room: id.clone(), user: other };
        app.record(event).await.map_err(reject)?;
    }
    let room = app.directory.room(&id).ok_or_else(|| reject(no_such_room(&id)))?;
    Ok(warp::reply::json(&room.view(&user)))
}

pub async fn leave(app: App, id: String, user: String) -> Result<impl Reply, Rejection> {
    app.member_room(&id, &user).map_err(reject)?;
    let event = DirectoryEvent::MemberLeft { id: event_id(), room: id, user };
    app.record(event).await.map_err(reject)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn direct(app: App, other: String, user: String) -> Result<impl Reply, Rejection> {
    if other == user {
        return Err(reject(ApiError::Unprocessable("a 1:1 chat needs another user".into())));
    }
    if !app.directory.user_exists(&other) {
        return Err(reject(ApiError::NotFound(format!("no user {other}"))));
    }
    let id = direct_room_id(&user, &other);
    if app.directory.room(&id).is_none() {
        let room = Room {
            id: id.clone(),
            name: id.trim_start_matches("dm_").replace('_', " & "),
            public: false,
            direct: true,
            retention_days: app.config.default_retention_days,
            retention_seconds: None,
            created_by: user.clone(),
            invite: String::new(),
            archived: false,
            members: Default::default(),
        };
        app.amqp.declare_room(&id, room.retention_secs()).await.map_err(reject)?;
        app.record(DirectoryEvent::RoomCreated { id: event_id(), room }).await.map_err(reject)?;
    } else if !app.directory.is_member(&id, &user) {
        // closed before: open it again
        let event = DirectoryEvent::MemberJoined { id: event_id(), room: id.clone(), user: user.clone() };
        app.record(event).await.map_err(reject)?;
    }
    let room = app.directory.room(&id).ok_or_else(|| reject(no_such_room(&id)))?;
    Ok(warp::reply::json(&room.view(&user)))
}

/// Rename or archive (read-only) a room: its owner or an administrator.
pub async fn change(app: App, id: String, user: String, body: RoomChange) -> Result<impl Reply, Rejection> {
    app.managed_room(&id, &user).map_err(reject)?;
    if let Some(name) = body.name {
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(reject(ApiError::Unprocessable("room names are 1 to 64 characters".into())));
        }
        app.record(DirectoryEvent::RoomRenamed { id: event_id(), room: id.clone(), name }).await.map_err(reject)?;
    }
    if let Some(archived) = body.archived {
        app.record(DirectoryEvent::RoomArchived { id: event_id(), room: id.clone(), archived })
            .await
            .map_err(reject)?;
    }
    let room = app.directory.room(&id).ok_or_else(|| reject(no_such_room(&id)))?;
    Ok(warp::reply::json(&room.view(&user)))
}

/// Delete a room for everyone: its owner or an administrator. Its stream is deleted with it
/// (every message, at once); no one can open it any more.
pub async fn delete(app: App, id: String, user: String) -> Result<impl Reply, Rejection> {
    app.managed_room(&id, &user).map_err(reject)?;
    app.record(DirectoryEvent::RoomDeleted { id: event_id(), room: id.clone() }).await.map_err(reject)?;
    app.drop_room_stream(&id).await.map_err(reject)?;
    tracing::info!(%user, room = %id, "room deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member: the owner or an administrator. Their pages lose the room at once.
pub async fn remove_member(app: App, id: String, member: String, user: String) -> Result<impl Reply, Rejection> {
    let room = app.managed_room(&id, &user).map_err(reject)?;
    if !room.members.contains(&member) {
        return Err(reject(ApiError::NotFound(format!("{member} is not a member of {id}"))));
    }
    app.record(DirectoryEvent::MemberLeft { id: event_id(), room: id.clone(), user: member }).await.map_err(reject)?;
    let room = app.directory.room(&id).ok_or_else(|| reject(no_such_room(&id)))?;
    Ok(warp::reply::json(&room.view(&user)))
}

/// A new invitation code for a private room (the old link stops working): the owner or an
/// administrator.
pub async fn rotate_invite(app: App, id: String, user: String) -> Result<impl Reply, Rejection> {
    let room = app.managed_room(&id, &user).map_err(reject)?;
    if room.public {
        return Err(reject(ApiError::Unprocessable("public rooms need no invitation".into())));
    }
    let invite = uuid::Uuid::new_v4().simple().to_string();
    app.record(DirectoryEvent::InviteRotated { id: event_id(), room: id.clone(), invite }).await.map_err(reject)?;
    let room = app.directory.room(&id).ok_or_else(|| reject(no_such_room(&id)))?;
    Ok(warp::reply::json(&room.view(&user)))
}
