//! Posting a message in a room, at most once per client id; a message that addresses a bot
//! (`@name ...`, `/name ...`) is also a request to it.

use serde_json::json;

use crate::bots;
use crate::error::ApiError;
use crate::model::{ChatMessage, now_ms};
use crate::state::{App, new_id};

/// Post a message; it is "sent" once the broker confirmed it and it is in the log. At most
/// once per `client_id`: the message id is derived from the room, the author and the client's
/// id, so a client that sends again what it never saw "sent" (its front end or broker node went
/// away meanwhile) gets the message that made it into the stream, if one did, instead of a
/// duplicate.
pub async fn post_once(
    app: &App,
    room: &str,
    author: &str,
    text: &str,
    client_id: Option<&str>,
    reply_to: Option<&str>,
) -> Result<ChatMessage, ApiError> {
    App::check_text(text)?;
    let room = app.writable_room(room, author)?;
    let log = app.room_log(&room).await?;
    let id = match client_id {
        Some(c) => message_id(&room.id, author, c),
        None => new_id(),
    };
    if let Some(m) = log.message(&id) {
        return Ok(m);
    }
    let mut body = json!({"id": id, "kind": "message", "room": room.id, "text": text, "ts": now_ms()});
    if let Some(target) = reply_to {
        if log.message(target).is_none() {
            return Err(ApiError::NotFound(format!("no message {target} to reply to")));
        }
        body["reply_to"] = target.into();
    }
    app.publish_room(&log, author, body).await?;
    let msg = log.message(&id).ok_or_else(|| ApiError::Broker("message lost".into()))?;
    // `@name ...` or `/name ...`: a request to that bot, answered in the room
    if let Some((bot, args)) = bots::mention::addressee(text) {
        let (app, room, author, msg, bot, args) =
            (app.clone(), room.id.clone(), author.to_owned(), msg.clone(), bot.to_owned(), args.to_owned());
        tokio::spawn(async move {
            if let Err(e) = bots::replies::ask(&app, &room, &author, &msg, &bot, &args).await {
                tracing::warn!(%room, %bot, "cannot ask the bot: {e}");
            }
        });
    }
    Ok(msg)
}

/// The id of a message `author` sent to `room` from a client that named it `client_id`.
fn message_id(room: &str, author: &str, client_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(room)
        .chain_update([0])
        .chain_update(author)
        .chain_update([0])
        .chain_update(client_id)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string()
}
