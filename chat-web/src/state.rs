//! `App`: the cheap-clone handle every request and session uses. It owns no chat state of its
//! own: the directory and room logs are folds of broker streams, tokens and rate limits are
//! per front end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use crate::ChatConfig;
use crate::amqp::feed::{self, StartAt};
use crate::amqp::files as amqp_files;
use crate::amqp::{Amqp, DIRECTORY_QUEUE, Rotation, room_queue};
use crate::auth::{Passwords, Tokens};
use crate::bots::Bots;
use crate::directory::{Directory, DirectoryEvent, Room};
use crate::error::ApiError;
use crate::files::{FileMeta, Transfers};
use crate::global_events::GlobalEvents;
use crate::model::{ChatMessage, now_ms};
use crate::presence::{Presence, Status};
use crate::ratelimit::{Budgets, FailureLimiter};
use crate::room_log::{Outgoing, RoomLog};

const FOLD_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

/// What a front end keeps when it replaces its broker connection: sign-ins, rate limits and
/// the password pool. Everything else is folded from the broker again.
#[derive(Clone)]
pub struct Local {
    pub tokens: Arc<Tokens>,
    pub passwords: Passwords,
    pub budgets: Arc<Budgets>,
    /// Login failures per account, then per address: a lockout after too many.
    pub login_by_user: Arc<FailureLimiter>,
    pub login_by_addr: Arc<FailureLimiter>,
    /// Which node of `--amqp-url` to try first when (re)connecting.
    pub rotation: Arc<Rotation>,
    /// The open Server-Sent Events sessions (the fallback transport), by id.
    pub event_streams: Arc<crate::sse::sessions::Sessions>,
    /// File uploads and downloads held in memory at once.
    pub transfers: Arc<Transfers>,
}

impl Local {
    pub fn new(config: &ChatConfig) -> Local {
        let window = Duration::from_secs(60);
        Local {
            tokens: Arc::new(Tokens::new(config.token_ttl)),
            passwords: Passwords::new(config.hash_threads),
            budgets: Arc::new(Budgets::new(&config.limits)),
            login_by_user: Arc::new(FailureLimiter::new(config.login_attempts_per_user, window)),
            login_by_addr: Arc::new(FailureLimiter::new(config.login_attempts_per_addr, window)),
            rotation: Arc::new(Rotation::default()),
            event_streams: Arc::default(),
            transfers: Arc::new(Transfers::default()),
        }
    }
}

pub struct Inner {
    pub config: ChatConfig,
    pub amqp: Amqp,
    /// Requests to bots and their replies in progress.
    pub bots: Bots,
    pub directory: Arc<Directory>,
    pub local: Local,
    pub presence: Presence,
    /// Presence, account, room and membership changes, for every session of this front end.
    pub global: Arc<GlobalEvents>,
    /// This front end's id in presence announcements.
    pub node: String,
    rooms: Mutex<HashMap<String, Arc<RoomLog>>>,
    feeds: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Turns true when this state's broker connection is gone and a new `App` takes over:
    /// its WebSocket sessions close, and their clients reconnect to the new one.
    retired: watch::Sender<bool>,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

/// The answer for a room that does not exist, and for a private room to a non-member.
pub fn no_such_room(id: &str) -> ApiError {
    ApiError::NotFound(format!("no room {id}"))
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn wait_folded(rx: oneshot::Receiver<u64>, what: &str) -> Result<u64, ApiError> {
    match tokio::time::timeout(FOLD_TIMEOUT, rx).await {
        Ok(Ok(offset)) => Ok(offset),
        _ => Err(ApiError::Broker(format!("{what} did not come back from the broker"))),
    }
}

impl App {
    /// Connect to the broker and open the bots' channel: a state that does not listen yet
    /// (`crate::start` makes it a running one), and in direct reply-to mode the bots' reply
    /// consumer.
    pub(crate) async fn connect(config: ChatConfig, local: Local) -> Result<(App, Option<lapin::Consumer>), ApiError> {
        let amqp = Amqp::connect(&config.amqp_url, config.amqp_ca_pem.as_deref(), &local.rotation).await?;
        let (bots, direct_replies) = match Bots::open(&amqp, config.bots.clone()).await {
            Ok(opened) => opened,
            Err(e) => {
                amqp.close().await;
                return Err(e);
            }
        };
        let global = Arc::new(GlobalEvents::default());
        let app = App {
            inner: Arc::new(Inner {
                local,
                config,
                amqp,
                bots,
                directory: Arc::new(Directory::default()),
                presence: Presence::default(),
                global,
                node: new_id(),
                rooms: Mutex::new(HashMap::new()),
                feeds: Mutex::new(Vec::new()),
                retired: watch::channel(false).0,
            }),
        };
        Ok((app, direct_replies))
    }

    /// Keep `task` running as long as this state: it is stopped at shutdown.
    pub(crate) fn keep(&self, task: tokio::task::JoinHandle<()>) {
        self.feeds.lock().push(task);
    }

    /// A handle that does not keep the state alive (for background tasks).
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    pub(crate) fn upgrade(weak: &std::sync::Weak<Inner>) -> Option<App> {
        weak.upgrade().map(|inner| App { inner })
    }

    /// Every `presence_heartbeat`: say this front end is alive, and drop the users of front
    /// ends silent for three heartbeats (their sessions are gone with them).
    pub(crate) fn keep_presence_fresh(&self) {
        let every = self.config.presence_heartbeat;
        let weak = Arc::downgrade(&self.inner);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let app = App { inner };
                app.announce(&json!({"type": "alive", "node": app.node})).await;
                for (user, status) in app.presence.forget_silent(every * 3) {
                    app.tell_sessions_presence(&user, status);
                }
            }
        });
        self.feeds.lock().push(task);
    }

    pub(crate) async fn listen(&self) -> Result<(), ApiError> {
        self.load_directory().await?;
        let weak = Arc::downgrade(&self.inner);
        let events = feed::consume_events(&self.amqp, move |body| {
            if let Some(inner) = weak.upgrade() {
                App { inner }.on_event(body);
            }
        })
        .await?;
        self.feeds.lock().push(events);
        Ok(())
    }

    async fn load_directory(&self) -> Result<(), ApiError> {
        // sync markers this front end waits for: all it folded before one is what the stream held
        let markers: Arc<Mutex<HashMap<String, oneshot::Sender<u64>>>> = Arc::default();
        let waiting = markers.clone();
        let directory = self.directory.clone();
        let global = self.global.clone();
        let tokens = self.local.tokens.clone();
        let service = self.amqp.user().to_owned();
        let task = feed::consume_stream(&self.amqp, DIRECTORY_QUEUE, StartAt::First, move |d| {
            // Accounts, rooms and memberships are whatever the chat itself recorded: an event
            // another AMQP client put on the stream is not folded.
            if !feed::from_service(d, &service) {
                let by = d.properties.user_id().as_ref().map(|u| u.as_str().to_owned());
                tracing::warn!(?by, "ignored a chat.directory event not published by the chat");
                return;
            }
            let Ok(event) = serde_json::from_slice::<DirectoryEvent>(&d.data) else {
                return;
            };
            match &event {
                DirectoryEvent::Sync { id } => {
                    if let Some(tx) = waiting.lock().remove(id) {
                        let _ = tx.send(0);
                    }
                }
                DirectoryEvent::TokenRevoked { token, expires_at, .. } => tokens.revoke_id(token, *expires_at),
                _ => {}
            }
            if directory.apply(&event) {
                took_effect(&tokens, &event);
                notify_members(&directory, &global, &event);
            }
        })
        .await?;
        self.feeds.lock().push(task);
        let sync = || async {
            let marker = new_id();
            let (tx, rx) = oneshot::channel();
            markers.lock().insert(marker.clone(), tx);
            let body = serde_json::to_vec(&DirectoryEvent::Sync { id: marker }).unwrap_or_default();
            self.amqp.publish_to_queue(DIRECTORY_QUEUE, &body).await?;
            wait_folded(rx, "the directory").await
        };
        sync().await?;
        if self.directory.token_key().is_none() {
            // The first front end of a chat makes the token key. Front ends starting together
            // may each publish one: the first on the stream holds for all, so this one folds
            // (never applies its own) and reads the key after a second sync.
            let event = DirectoryEvent::TokenKey { id: new_id(), key: crate::auth::new_token_key() };
            let body = serde_json::to_vec(&event).map_err(|e| ApiError::Internal(e.to_string()))?;
            self.amqp.publish_to_queue(DIRECTORY_QUEUE, &body).await?;
            sync().await?;
        }
        let key =
            self.directory.token_key().ok_or_else(|| ApiError::Broker("no token key in chat.directory".into()))?;
        if !self.local.tokens.set_key(&key) {
            return Err(ApiError::Internal("the token key in chat.directory is not hex".into()));
        }
        tracing::info!(users = self.directory.users().len(), "chat directory loaded");
        Ok(())
    }

    /// Log out: token `token` is void on every front end (a directory event), and here at once.
    pub async fn revoke_token(&self, token: &str) -> Result<(), ApiError> {
        let (id, expires_at) = self.local.tokens.revocation(token)?;
        self.local.tokens.revoke_id(&id, expires_at);
        self.record(DirectoryEvent::TokenRevoked { id: new_id(), token: id, expires_at }).await?;
        Ok(())
    }

    /// Publish a directory event (confirmed), then fold it locally.
    pub async fn record(&self, event: DirectoryEvent) -> Result<bool, ApiError> {
        let body = serde_json::to_vec(&event).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        self.amqp.publish_to_queue(DIRECTORY_QUEUE, &body).await?;
        // The stream consumer may have folded it already (it can beat the confirm).
        if self.directory.apply(&event) {
            took_effect(&self.local.tokens, &event);
            notify_members(&self.directory, &self.global, &event);
        }
        Ok(self.directory.took_effect(event.id()))
    }

    /// The folded log of `room`, consuming its stream first if this front end had not yet.
    pub async fn room_log(&self, room: &Room) -> Result<Arc<RoomLog>, ApiError> {
        let (log, fresh) = {
            let mut rooms = self.rooms.lock();
            match rooms.get(&room.id) {
                Some(log) => (log.clone(), false),
                None => {
                    let log = RoomLog::with_window(&room.id, self.config.history_window);
                    rooms.insert(room.id.clone(), log.clone());
                    (log, true)
                }
            }
        };
        if fresh && let Err(e) = self.activate(&log, room).await {
            self.rooms.lock().remove(&room.id);
            return Err(e);
        }
        let mut ready = log.ready();
        let wait = ready.wait_for(|r| *r);
        match tokio::time::timeout(FOLD_TIMEOUT, wait).await {
            Ok(Ok(_)) => Ok(log),
            _ => Err(ApiError::Broker(format!("room {} is not available", room.id))),
        }
    }

    /// The log of room `id` if this front end folds it already.
    pub fn active_room_log(&self, id: &str) -> Option<Arc<RoomLog>> {
        self.rooms.lock().get(id).cloned()
    }

    async fn activate(&self, log: &Arc<RoomLog>, room: &Room) -> Result<(), ApiError> {
        self.amqp.declare_room(&room.id, room.retention_secs()).await?;
        log.set_retention(Some(room.retention_secs() * 1000));
        let marker = new_id();
        let mut synced = log.wait_for(&marker);
        let service = self.amqp.user().to_owned();
        let sink = log.clone();
        let weak = self.downgrade();
        let id = room.id.clone();
        let task = feed::consume_stream_until(
            &self.amqp,
            &room_queue(&room.id),
            StartAt::First,
            move |d| {
                if let Some(inc) = feed::decode(d, &service) {
                    sink.apply(inc);
                }
            },
            // a room deleted meanwhile: its stream went with it, the connection is fine
            move || {
                let weak = weak.clone();
                let id = id.clone();
                async move { App::upgrade(&weak).is_some_and(|app| app.forget_if_deleted(&id)) }
            },
        )
        .await?;
        self.feeds.lock().push(task);
        let body = serde_json::to_vec(&json!({"id": marker, "kind": "sync", "ts": now_ms()})).unwrap_or_default();
        self.amqp.publish_to_queue(&room_queue(&room.id), &body).await?;
        // a long stream takes a while to fold: wait as long as it moves on
        let mut seen = log.last_offset();
        loop {
            match tokio::time::timeout(FOLD_TIMEOUT, &mut synced).await {
                Ok(Ok(_)) => break,
                Err(_) if log.last_offset() != seen => seen = log.last_offset(),
                _ => return Err(ApiError::Broker("the room did not come back from the broker".into())),
            }
        }
        log.set_ready();
        Ok(())
    }

    /// If room `id` was deleted, drop its log (true); its stream is gone.
    fn forget_if_deleted(&self, id: &str) -> bool {
        if self.directory.room(id).is_some() {
            return false;
        }
        self.rooms.lock().remove(id);
        tracing::info!(room = %id, "stopped following a deleted room");
        true
    }

    /// Delete room `id`'s stream (the room was deleted): this front end stops following it
    /// first, and the others see the room gone from the directory when their consumers end.
    pub async fn drop_room_stream(&self, id: &str) -> Result<(), ApiError> {
        self.rooms.lock().remove(id);
        self.amqp.delete_room(id).await
    }

    /// Every `every`: rooms drop what their retention no longer keeps, and tell their pages.
    pub(crate) fn sweep_expired(&self) {
        let every = self.config.expiry_sweep;
        let weak = self.downgrade();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(app) = App::upgrade(&weak) else { break };
                let logs: Vec<Arc<RoomLog>> = app.rooms.lock().values().cloned().collect();
                let now = now_ms();
                for log in logs {
                    if let Some(event) = log.expire(now) {
                        tracing::debug!(room = %log.id, %event, "messages expired");
                    }
                }
            }
        });
        self.feeds.lock().push(task);
    }

    /// A room `user` may know of: a public one, or one they are a member of. A private room
    /// (or 1:1 chat) of others is answered exactly as a room that does not exist.
    pub fn visible_room(&self, room: &str, user: &str) -> Result<Room, ApiError> {
        match self.directory.room(room) {
            Some(r) if r.public || r.members.contains(user) => Ok(r),
            _ => Err(no_such_room(room)),
        }
    }

    /// An administrator: the first account, one made so, or one named by `--admin`.
    pub fn is_admin(&self, user: &str) -> bool {
        self.directory.is_admin(user) || self.config.admins.iter().any(|a| a == user)
    }

    pub fn require_admin(&self, user: &str) -> Result<(), ApiError> {
        if self.is_admin(user) { Ok(()) } else { Err(ApiError::Forbidden("administrators only".into())) }
    }

    /// A room `user` may moderate (rename, archive, delete, remove members, rotate the
    /// invitation): its owner (creator) or an administrator. Not a 1:1 chat.
    pub fn managed_room(&self, room: &str, user: &str) -> Result<Room, ApiError> {
        let r = match self.directory.room(room) {
            Some(r) if self.is_admin(user) => r,
            _ => self.visible_room(room, user)?,
        };
        if r.direct {
            return Err(ApiError::Unprocessable("a 1:1 chat has no owner".into()));
        }
        if r.created_by == user || self.is_admin(user) {
            Ok(r)
        } else {
            Err(ApiError::Forbidden(format!("only the owner of {room} or an administrator may do that")))
        }
    }

    /// A room `user` may post in: a member, and the room is not archived.
    pub fn writable_room(&self, room: &str, user: &str) -> Result<Room, ApiError> {
        let r = self.member_room(room, user)?;
        if r.archived {
            return Err(ApiError::Forbidden(format!("{} is archived (read-only)", r.name)));
        }
        Ok(r)
    }

    /// A room `user` is a member of (404 unknown or private, 403 public but not a member).
    pub fn member_room(&self, room: &str, user: &str) -> Result<Room, ApiError> {
        let r = self.visible_room(room, user)?;
        if r.members.contains(user) {
            Ok(r)
        } else {
            Err(ApiError::Forbidden(format!("you are not a member of {room}")))
        }
    }

    /// Publish a room event by `author` and wait until it is folded; returns its offset.
    pub(crate) async fn publish_room(&self, log: &RoomLog, author: &str, body: Value) -> Result<u64, ApiError> {
        let id = body.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let folded = log.wait_for(&id);
        let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if let Err(e) = self.amqp.publish_room(&log.id, author, &bytes).await {
            log.forget_waiter(&id);
            return Err(e);
        }
        wait_folded(folded, "the message").await
    }

    /// Publish an event of bot `bot`'s reply (its placeholder, its final text) in room `room`
    /// and wait until it is folded.
    pub async fn publish_bot_reply(&self, room: &str, bot: &str, body: Value) -> Result<u64, ApiError> {
        let r = self.directory.room(room).ok_or_else(|| no_such_room(room))?;
        let log = self.room_log(&r).await?;
        let id = body.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let folded = log.wait_for(&id);
        let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if let Err(e) = self.amqp.publish_room_for_bot(room, bot, &bytes).await {
            log.forget_waiter(&id);
            return Err(e);
        }
        wait_folded(folded, "the bot's reply").await
    }

    pub fn check_text(text: &str) -> Result<(), ApiError> {
        if text.len() > crate::MAX_MESSAGE_BYTES {
            return Err(ApiError::TooLarge(crate::MAX_MESSAGE_BYTES));
        }
        if text.trim().is_empty() {
            return Err(ApiError::Unprocessable("empty message".into()));
        }
        Ok(())
    }

    /// Share a file in `room` (already checked writable by `author`): store its bytes in the
    /// room's files stream, then post the message that shows it (its id is the file's).
    pub async fn share_file(
        &self,
        room: &Room,
        author: &str,
        name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<ChatMessage, ApiError> {
        let log = self.room_log(room).await?;
        let id = new_id();
        let upload = amqp_files::Upload { id: &id, name, content_type, uploader: author };
        let offset = amqp_files::store(&self.amqp, &room.id, room.retention_secs(), &upload, bytes).await?;
        let file = FileMeta {
            id: id.clone(),
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            size: bytes.len() as u64,
            offset,
        };
        let body = json!({"id": id, "kind": "message", "room": room.id, "text": "", "file": file, "ts": now_ms()});
        self.publish_room(&log, author, body).await?;
        log.message(&id).ok_or_else(|| ApiError::Broker("message lost".into()))
    }

    /// File `id` shared in `room`, for a member: what it is and its bytes (404 once its message
    /// is deleted or the stream no longer holds it).
    pub async fn shared_file(&self, room: &str, user: &str, id: &str) -> Result<(FileMeta, bytes::Bytes), ApiError> {
        let room = self.member_room(room, user)?;
        let log = self.room_log(&room).await?;
        let file = log.message(id).and_then(|m| m.file).ok_or_else(|| ApiError::NotFound(format!("no file {id}")))?;
        let stored = amqp_files::fetch(&self.amqp, &room.id, file.offset, &file.id).await?;
        Ok((file, stored.bytes))
    }

    /// Edit (Some(text)) or delete (None) one's own message.
    pub async fn change(
        &self,
        room: &str,
        user: &str,
        target: &str,
        text: Option<&str>,
    ) -> Result<ChatMessage, ApiError> {
        if let Some(t) = text {
            Self::check_text(t)?;
        }
        let room = self.writable_room(room, user)?;
        let log = self.room_log(&room).await?;
        let msg = log.message(target).ok_or_else(|| ApiError::NotFound(format!("no message {target}")))?;
        if msg.author != user || msg.bot {
            return Err(ApiError::Forbidden("you can only change your own messages".into()));
        }
        if msg.deleted {
            return Err(ApiError::Conflict("message was deleted".into()));
        }
        let kind = if text.is_some() { "edit" } else { "delete" };
        let body = json!({"id": new_id(), "kind": kind, "room": room.id, "target": target, "text": text.unwrap_or(""), "ts": now_ms()});
        self.publish_room(&log, user, body).await?;
        log.message(target).ok_or_else(|| ApiError::NotFound(format!("no message {target}")))
    }

    /// Add (`on`) or take back `user`'s `emoji` reaction to message `target`.
    pub async fn react(&self, room: &str, user: &str, target: &str, emoji: &str, on: bool) -> Result<(), ApiError> {
        if emoji.is_empty() || emoji.len() > 32 || emoji.chars().count() > 8 {
            return Err(ApiError::Unprocessable("a reaction is one emoji".into()));
        }
        let room = self.writable_room(room, user)?;
        let log = self.room_log(&room).await?;
        if log.message(target).is_none_or(|m| m.deleted) {
            return Err(ApiError::NotFound(format!("no message {target}")));
        }
        let body = json!({"id": new_id(), "kind": "reaction", "room": room.id, "target": target, "emoji": emoji, "on": on, "ts": now_ms()});
        self.publish_room(&log, user, body).await?;
        Ok(())
    }

    /// Record that `user` has read `room` up to `offset` (a receipt in the room stream).
    pub async fn mark_read(&self, room: &str, user: &str, offset: u64) -> Result<(), ApiError> {
        let room = self.member_room(room, user)?;
        let log = self.room_log(&room).await?;
        if log.read_offset(user).is_some_and(|o| o >= offset) {
            return Ok(());
        }
        let body = json!({"id": new_id(), "kind": "receipt", "status": "read", "room": room.id, "offset": offset, "ts": now_ms()});
        self.publish_room(&log, user, body).await?;
        Ok(())
    }

    /// Publish a transient event on `chat.events` (presence, typing, delivered receipts).
    pub async fn announce(&self, event: &Value) {
        if let Err(e) = self.amqp.publish_event(event.to_string().as_bytes()).await {
            tracing::warn!("cannot publish event: {e}");
        }
    }

    /// Local session count change for `user`; announces a status change to every front end.
    pub async fn presence_change(&self, user: &str, sessions: isize, away: isize) {
        if let Some(status) = self.presence.local_change(user, sessions, away) {
            self.announce(&json!({"type": "presence", "node": self.node, "user": user, "status": status})).await;
        }
    }

    fn on_event(&self, body: &[u8]) {
        let Ok(event) = serde_json::from_slice::<Value>(body) else {
            return;
        };
        let str_of = |k: &str| event.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        match event.get("type").and_then(Value::as_str) {
            Some("hello") if str_of("node") != self.node => {
                let app = self.clone();
                tokio::spawn(async move {
                    for (user, status) in app.presence.local_snapshot() {
                        app.announce(&json!({"type": "presence", "node": app.node, "user": user, "status": status}))
                            .await;
                    }
                });
            }
            Some("presence") => {
                let Ok(status) = serde_json::from_value::<Status>(event.get("status").cloned().unwrap_or_default())
                else {
                    return;
                };
                let user = str_of("user");
                if let Some(now) = self.presence.apply(&str_of("node"), &user, status) {
                    self.tell_sessions_presence(&user, now);
                }
            }
            Some("alive") => self.on_alive(&str_of("node")),
            // a bot's reply growing (sent by the front end that asked the bot)
            Some("chunk") => {
                let pos = event.get("pos").and_then(Value::as_u64).unwrap_or(u64::MAX);
                if let Some(log) = self.active_room_log(&str_of("room"))
                    && let Ok(pos) = usize::try_from(pos)
                {
                    log.grow(&str_of("id"), pos, &str_of("text"));
                }
            }
            Some(kind @ ("typing" | "receipt")) => {
                let room = str_of("room");
                if let Some(log) = self.active_room_log(&room) {
                    let mut e = event.clone();
                    if let Some(obj) = e.as_object_mut() {
                        obj.remove("node");
                    }
                    // a delivered receipt matters to the message's author only: sent to the
                    // whole room, a busy room's receipts grow with the square of its members
                    let author = if kind == "receipt" { log.author_of(&str_of("id")) } else { None };
                    log.send(match author {
                        Some(author) => Outgoing::for_users(&e, vec![author]),
                        None => Outgoing::transient(&e),
                    });
                }
            }
            _ => {}
        }
    }

    /// Tell this front end's sessions that `user`'s presence is now `status`.
    fn tell_sessions_presence(&self, user: &str, status: Status) {
        self.global.send(Outgoing::transient(&json!({"type": "presence", "user": user, "status": status})));
    }

    fn on_alive(&self, node: &str) {
        // a front end dropped for silence is back (it was stalled, not gone): ask every front
        // end to announce its users again, as when one starts
        if self.presence.heard_from(node) {
            let app = self.clone();
            tokio::spawn(async move { app.announce(&json!({"type": "hello", "node": app.node})).await });
        }
    }

    pub async fn shutdown(&self) {
        for task in self.feeds.lock().drain(..) {
            task.abort();
        }
        self.amqp.close().await;
    }

    /// Resolves when the broker connection is lost.
    pub async fn connection_lost(&self) {
        self.amqp.lost().await;
    }

    /// Close this state's sessions (its broker connection is gone) and stop its consumers.
    pub async fn retire(&self) {
        self.retired.send_replace(true);
        self.shutdown().await;
    }

    /// Watch for `retire`: sessions end when it turns true.
    pub fn retired(&self) -> watch::Receiver<bool> {
        self.retired.subscribe()
    }

    pub fn is_retired(&self) -> bool {
        *self.retired.borrow()
    }
}

/// What a folded event does beyond the directory: a disabled account's sign-ins end (its
/// WebSockets close with them), on every front end.
fn took_effect(tokens: &crate::auth::Tokens, event: &DirectoryEvent) {
    if let DirectoryEvent::UserDisabled { user, disabled, .. } = event {
        if *disabled {
            tokens.revoke_user(user);
        } else {
            tokens.enable_user(user);
        }
    }
}

/// Push directory changes to this front end's sessions, so no page polls: a room's members
/// (and one who just left it, on every device) get its new member list, and their clients
/// subscribe to a room they are now in; a new public room and a new account reach everyone.
fn notify_members(directory: &Directory, global: &GlobalEvents, event: &DirectoryEvent) {
    let (room, left) = match event {
        DirectoryEvent::UserRegistered { user, .. } => {
            global.send(Outgoing::transient(&json!({"type": "user", "user": user})));
            return;
        }
        DirectoryEvent::RoomCreated { room, .. } if room.public => {
            global.send(Outgoing::transient(
                &json!({"type": "room", "room": room.id, "members": directory.members(&room.id)}),
            ));
            return;
        }
        DirectoryEvent::RoomCreated { room, .. } => (&room.id, None),
        DirectoryEvent::RoomDeleted { room, .. } => {
            // its members are gone with it: tell everyone (an id is all a stranger learns)
            global.send(Outgoing::transient(&json!({"type": "room", "room": room, "deleted": true})));
            return;
        }
        DirectoryEvent::RoomRenamed { room, .. }
        | DirectoryEvent::RoomArchived { room, .. }
        | DirectoryEvent::InviteRotated { room, .. } => {
            if directory.room(room).is_some_and(|r| r.public) {
                global.send(Outgoing::transient(
                    &json!({"type": "room", "room": room, "members": directory.members(room)}),
                ));
                return;
            }
            (room, None)
        }
        DirectoryEvent::MemberJoined { room, .. } => (room, None),
        DirectoryEvent::MemberLeft { room, user, .. } => (room, Some(user)),
        _ => return,
    };
    let members = directory.members(room);
    let mut audience = members.clone();
    if let Some(user) = left
        && !audience.contains(user)
    {
        audience.push(user.clone());
    }
    if !audience.is_empty() {
        global.send(Outgoing::for_users(&json!({"type": "room", "room": room, "members": members}), audience));
    }
}
