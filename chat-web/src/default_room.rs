//! The default public room (`general` unless configured otherwise): created by the first front
//! end that starts on a broker without it, joined by every account at sign-up.
//!
//! Its id is derived from its name, so front ends starting together on a fresh broker create
//! the same room; the directory keeps the first `room_created` and ignores the others.

use crate::directory::{DirectoryEvent, Room};
use crate::error::ApiError;
use crate::state::App;

/// The room id for a default room named `name`: lower-case letters, digits and `-` (anything
/// else becomes `-`), at most 48 characters; None for a name with nothing usable.
pub fn room_id(name: &str) -> Option<String> {
    let slug: String = name
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .take(48)
        .collect();
    let slug = slug.trim_matches('-').to_owned();
    (!slug.is_empty()).then_some(slug)
}

fn event_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Create the configured default room unless the directory has it already.
pub async fn ensure(app: &App) -> Result<(), ApiError> {
    let Some(name) = app.config.default_room.clone() else {
        return Ok(());
    };
    let Some(id) = room_id(&name) else {
        tracing::warn!(%name, "no default room: the name has no letter or digit");
        return Ok(());
    };
    if app.directory.room(&id).is_some() {
        return Ok(());
    }
    let room = Room {
        id: id.clone(),
        name: name.trim().to_owned(),
        public: true,
        direct: false,
        retention_days: app.config.default_retention_days,
        retention_seconds: None,
        created_by: String::new(),
        invite: String::new(),
        members: Default::default(),
        archived: false,
    };
    app.amqp.declare_room(&id, room.retention_secs()).await?;
    app.record(DirectoryEvent::RoomCreated { id: event_id(), room }).await?;
    tracing::info!(room = %id, "created the default room");
    Ok(())
}

/// Make `user` (just registered) a member of the default room, if there is one.
pub async fn join(app: &App, user: &str) -> Result<(), ApiError> {
    let Some(id) = app.config.default_room.as_deref().and_then(room_id) else {
        return Ok(());
    };
    if app.directory.room(&id).is_none() || app.directory.is_member(&id, user) {
        return Ok(());
    }
    let event = DirectoryEvent::MemberJoined { id: event_id(), room: id, user: user.to_owned() };
    app.record(event).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::room_id;

    #[test]
    fn ids_from_names() {
        assert_eq!(room_id("general").as_deref(), Some("general"));
        assert_eq!(room_id(" Town Square! ").as_deref(), Some("town-square"));
        assert_eq!(room_id("!!!"), None);
        assert_eq!(room_id(&"x".repeat(100)).map(|s| s.len()), Some(48));
    }
}
