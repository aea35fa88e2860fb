//! `Directory`: accounts, rooms and memberships, folded from the `chat.directory` stream.
//!
//! Every front end folds the same stream, so they all agree; a front end applies its own
//! events as soon as the broker confirms them and skips them when they come back (by id).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::model::RoomView;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Room {
    pub id: String,
    pub name: String,
    pub public: bool,
    #[serde(default)]
    pub direct: bool,
    pub retention_days: u32,
    /// A retention shorter than a day, or not whole days (seconds): overrides
    /// `retention_days`, which older front ends read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_seconds: Option<u64>,
    pub created_by: String,
    #[serde(default)]
    pub invite: String,
    /// Read-only: kept and readable, no one posts any more.
    #[serde(default)]
    pub archived: bool,
    #[serde(default, skip_serializing)]
    pub members: BTreeSet<String>,
}

/// One event on `chat.directory`. Unknown kinds are ignored (newer front ends may add some).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DirectoryEvent {
    UserRegistered {
        id: String,
        user: String,
        password_hash: String,
    },
    RoomCreated {
        id: String,
        room: Room,
    },
    MemberJoined {
        id: String,
        room: String,
        user: String,
    },
    MemberLeft {
        id: String,
        room: String,
        user: String,
    },
    Sync {
        id: String,
    },
    PasswordChanged {
        id: String,
        user: String,
        password_hash: String,
    },
    /// An administrator disabled (or enabled again) an account.
    UserDisabled {
        id: String,
        user: String,
        disabled: bool,
    },
    /// An administrator's role given or taken (the first account has it from the start).
    AdminSet {
        id: String,
        user: String,
        admin: bool,
    },
    RoomRenamed {
        id: String,
        room: String,
        name: String,
    },
    RoomArchived {
        id: String,
        room: String,
        archived: bool,
    },
    RoomDeleted {
        id: String,
        room: String,
    },
    InviteRotated {
        id: String,
        room: String,
        invite: String,
    },
    /// The key login tokens are signed with (hex): the first one on the stream holds.
    TokenKey {
        id: String,
        key: String,
    },
    /// A logout: token `token` (its id) is void on every front end until it expires anyway.
    TokenRevoked {
        id: String,
        token: String,
        expires_at: u64,
    },
}

impl DirectoryEvent {
    pub fn id(&self) -> &str {
        match self {
            DirectoryEvent::UserRegistered { id, .. }
            | DirectoryEvent::RoomCreated { id, .. }
            | DirectoryEvent::MemberJoined { id, .. }
            | DirectoryEvent::MemberLeft { id, .. }
            | DirectoryEvent::Sync { id }
            | DirectoryEvent::PasswordChanged { id, .. }
            | DirectoryEvent::UserDisabled { id, .. }
            | DirectoryEvent::AdminSet { id, .. }
            | DirectoryEvent::RoomRenamed { id, .. }
            | DirectoryEvent::RoomArchived { id, .. }
            | DirectoryEvent::RoomDeleted { id, .. }
            | DirectoryEvent::InviteRotated { id, .. }
            | DirectoryEvent::TokenKey { id, .. }
            | DirectoryEvent::TokenRevoked { id, .. } => id,
        }
    }
}

#[derive(Default)]
struct State {
    users: HashMap<String, String>,
    disabled: BTreeSet<String>,
    /// The first account, and those an administrator made administrators.
    admins: BTreeSet<String>,
    rooms: HashMap<String, Room>,
    token_key: Option<String>,
    /// Every event folded so far, and whether it took effect (first event wins).
    seen: HashMap<String, bool>,
}

#[derive(Default)]
pub struct Directory {
    state: RwLock<State>,
    /// Counts the events that took effect: whoever caches an answer (a session forwarding a
    /// room's events caches whether its user is still a member) asks again only when it moved.
    changes: AtomicU64,
}

impl Directory {
    /// Fold one event; false if it was seen before or lost a race (first event wins).
    pub fn apply(&self, event: &DirectoryEvent) -> bool {
        let mut s = self.state.write();
        if s.seen.contains_key(event.id()) {
            return false;
        }
        let took_effect = Self::fold(&mut s, event);
        s.seen.insert(event.id().to_owned(), took_effect);
        if took_effect {
            self.changes.fetch_add(1, Ordering::Release);
        }
        took_effect
    }

    /// How many events have taken effect so far: an answer read after this stays good as long
    /// as it does not move.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Whether event `id` has been folded and took effect (whoever folded it first: the
    /// stream consumer or the front end that published it).
    pub fn took_effect(&self, id: &str) -> bool {
        self.state.read().seen.get(id).copied().unwrap_or(false)
    }

    fn fold(s: &mut State, event: &DirectoryEvent) -> bool {
        match event {
            DirectoryEvent::UserRegistered { user, password_hash, .. } => {
                if s.users.contains_key(user) {
                    return false;
                }
                if s.users.is_empty() {
                    s.admins.insert(user.clone());
                }
                s.users.insert(user.clone(), password_hash.clone());
            }
            DirectoryEvent::PasswordChanged { user, password_hash, .. } => match s.users.get_mut(user) {
                Some(h) => *h = password_hash.clone(),
                None => return false,
            },
            DirectoryEvent::UserDisabled { user, disabled, .. } => {
                if !s.users.contains_key(user) {
                    return false;
                }
                if *disabled {
                    s.disabled.insert(user.clone());
                } else {
                    s.disabled.remove(user);
                }
            }
            DirectoryEvent::AdminSet { user, admin, .. } => {
                if !s.users.contains_key(user) {
                    return false;
                }
                if *admin {
                    s.admins.insert(user.clone());
                } else {
                    s.admins.remove(user);
                }
            }
            DirectoryEvent::RoomRenamed { room, name, .. } => match s.rooms.get_mut(room) {
                Some(r) if !r.direct => r.name = name.clone(),
                _ => return false,
            },
            DirectoryEvent::RoomArchived { room, archived, .. } => match s.rooms.get_mut(room) {
                Some(r) => r.archived = *archived,
                None => return false,
            },
            DirectoryEvent::RoomDeleted { room, .. } => {
                if s.rooms.remove(room).is_none() {
                    return false;
                }
            }
            DirectoryEvent::InviteRotated { room, invite, .. } => match s.rooms.get_mut(room) {
                Some(r) if !r.direct => r.invite = invite.clone(),
                _ => return false,
            },
            DirectoryEvent::RoomCreated { room, .. } => {
                if s.rooms.contains_key(&room.id) {
                    return false;
                }
                let mut room = room.clone();
                // a room made by the chat itself (the default room) starts with no member
                room.members = BTreeSet::new();
                if !room.created_by.is_empty() {
                    room.members.insert(room.created_by.clone());
                }
                if room.direct {
                    // a 1:1 room's members are the names in its id
                    if let Some(rest) = room.id.strip_prefix("dm_") {
                        room.members.extend(rest.split('_').map(str::to_owned));
                    }
                }
                s.rooms.insert(room.id.clone(), room);
            }
            DirectoryEvent::MemberJoined { room, user, .. } => match s.rooms.get_mut(room) {
                // a 1:1 chat takes back only the two it is between (one who closed it)
                Some(r)
                    if !r.direct || r.id.strip_prefix("dm_").is_some_and(|rest| rest.split('_').any(|n| n == user)) =>
                {
                    r.members.insert(user.clone());
                }
                _ => return false,
            },
            DirectoryEvent::MemberLeft { room, user, .. } => match s.rooms.get_mut(room) {
                Some(r) => {
                    r.members.remove(user);
                }
                None => return false,
            },
            DirectoryEvent::TokenKey { key, .. } => {
                if s.token_key.is_some() {
                    return false;
                }
                s.token_key = Some(key.clone());
            }
            DirectoryEvent::Sync { .. } | DirectoryEvent::TokenRevoked { .. } => {}
        }
        true
    }

    /// The token key (hex): the first `token_key` event of the stream.
    pub fn token_key(&self) -> Option<String> {
        self.state.read().token_key.clone()
    }

    pub fn password_hash(&self, user: &str) -> Option<String> {
        self.state.read().users.get(user).cloned()
    }

    pub fn user_exists(&self, user: &str) -> bool {
        self.state.read().users.contains_key(user)
    }

    pub fn is_disabled(&self, user: &str) -> bool {
        self.state.read().disabled.contains(user)
    }

    pub fn is_admin(&self, user: &str) -> bool {
        self.state.read().admins.contains(user)
    }

    /// Every account with its role and whether it is disabled, by name.
    pub fn accounts(&self) -> Vec<(String, bool, bool)> {
        let s = self.state.read();
        let mut v: Vec<_> = s.users.keys().map(|u| (u.clone(), s.admins.contains(u), s.disabled.contains(u))).collect();
        v.sort();
        v
    }

    /// The room whose invitation code is `code` (sign-up by invitation).
    pub fn room_by_invite(&self, code: &str) -> Option<Room> {
        let s = self.state.read();
        s.rooms.values().find(|r| !r.invite.is_empty() && r.invite == code).cloned()
    }

    pub fn users(&self) -> Vec<String> {
        let mut v: Vec<String> = self.state.read().users.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn room(&self, id: &str) -> Option<Room> {
        self.state.read().rooms.get(id).cloned()
    }

    pub fn is_member(&self, room: &str, user: &str) -> bool {
        self.state.read().rooms.get(room).is_some_and(|r| r.members.contains(user))
    }

    /// Rooms `user` may see in a listing: every public room and the private ones they are in.
    pub fn visible_rooms(&self, user: &str) -> Vec<Room> {
        let s = self.state.read();
        let mut v: Vec<Room> = s.rooms.values().filter(|r| r.public || r.members.contains(user)).cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        v
    }

    pub fn rooms_of(&self, user: &str) -> Vec<Room> {
        let s = self.state.read();
        s.rooms.values().filter(|r| r.members.contains(user)).cloned().collect()
    }

    /// The members of `room` (empty if unknown).
    pub fn members(&self, room: &str) -> Vec<String> {
        self.state.read().rooms.get(room).map(|r| r.members.iter().cloned().collect()).unwrap_or_default()
    }
}

impl Room {
    /// How long the room keeps messages, in seconds (0: forever).
    pub fn retention_secs(&self) -> u64 {
        self.retention_seconds.unwrap_or(u64::from(self.retention_days) * 86_400)
    }

    /// The view of this room for `viewer` (the invite code only for members).
    pub fn view(&self, viewer: &str) -> RoomView {
        let member = self.members.contains(viewer);
        RoomView {
            id: self.id.clone(),
            name: self.name.clone(),
            public: self.public,
            direct: self.direct,
            retention_days: self.retention_days,
            retention_seconds: self.retention_secs(),
            created_by: self.created_by.clone(),
            members: self.members.iter().cloned().collect(),
            invite: (member && !self.public && !self.direct).then(|| self.invite.clone()),
            archived: self.archived,
            unread: None,
            last_offset: None,
        }
    }
}

/// The id of the 1:1 room of two users: derived from the sorted names.
pub fn direct_room_id(a: &str, b: &str) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    format!("dm_{x}_{y}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: &str, public: bool, by: &str) -> Room {
        Room {
            id: id.into(),
            name: id.into(),
            public,
            direct: id.starts_with("dm_"),
            retention_days: 7,
            retention_seconds: None,
            created_by: by.into(),
            invite: "code".into(),
            archived: false,
            members: BTreeSet::new(),
        }
    }

    #[test]
    fn fold_is_idempotent_and_first_wins() {
        let d = Directory::default();
        let reg = |id: &str, h: &str| DirectoryEvent::UserRegistered {
            id: id.into(),
            user: "alice".into(),
            password_hash: h.into(),
        };
        assert!(d.apply(&reg("1", "h1")));
        assert!(!d.apply(&reg("1", "h1")));
        assert!(!d.apply(&reg("2", "h2")));
        assert_eq!(d.password_hash("alice").unwrap(), "h1");
        assert!(d.is_admin("alice"), "the first account administers");
        d.apply(&DirectoryEvent::UserRegistered { id: "3".into(), user: "bob".into(), password_hash: "hb".into() });
        assert!(!d.is_admin("bob"));
        d.apply(&DirectoryEvent::UserDisabled { id: "4".into(), user: "bob".into(), disabled: true });
        assert!(d.is_disabled("bob"));
        d.apply(&DirectoryEvent::PasswordChanged { id: "5".into(), user: "bob".into(), password_hash: "hb2".into() });
        assert_eq!(d.password_hash("bob").unwrap(), "hb2");
    }

    #[test]
    fn room_moderation() {
        let d = Directory::default();
        d.apply(&DirectoryEvent::RoomCreated { id: "e1".into(), room: room("r1", false, "alice") });
        d.apply(&DirectoryEvent::RoomRenamed { id: "e2".into(), room: "r1".into(), name: "new".into() });
        d.apply(&DirectoryEvent::InviteRotated { id: "e3".into(), room: "r1".into(), invite: "c2".into() });
        d.apply(&DirectoryEvent::RoomArchived { id: "e4".into(), room: "r1".into(), archived: true });
        let r = d.room("r1").unwrap();
        assert_eq!((r.name.as_str(), r.invite.as_str(), r.archived), ("new", "c2", true));
        assert_eq!(d.room_by_invite("c2").unwrap().id, "r1");
        assert!(d.room_by_invite("code").is_none(), "the old invitation is void");
        d.apply(&DirectoryEvent::RoomDeleted { id: "e5".into(), room: "r1".into() });
        assert!(d.room("r1").is_none());
    }

    #[test]
    fn the_first_token_key_holds() {
        let d = Directory::default();
        assert!(d.token_key().is_none());
        assert!(d.apply(&DirectoryEvent::TokenKey { id: "k1".into(), key: "aa".into() }));
        assert!(!d.apply(&DirectoryEvent::TokenKey { id: "k2".into(), key: "bb".into() }));
        assert_eq!(d.token_key().as_deref(), Some("aa"));
    }

    #[test]
    fn memberships() {
        let d = Directory::default();
        d.apply(&DirectoryEvent::RoomCreated { id: "e1".into(), room: room("r1", false, "alice") });
        assert!(d.is_member("r1", "alice"));
        assert!(!d.is_member("r1", "bob"));
        assert!(d.visible_rooms("bob").is_empty());
        d.apply(&DirectoryEvent::MemberJoined { id: "e2".into(), room: "r1".into(), user: "bob".into() });
        assert!(d.is_member("r1", "bob"));
        d.apply(&DirectoryEvent::MemberLeft { id: "e3".into(), room: "r1".into(), user: "bob".into() });
        assert!(!d.is_member("r1", "bob"));
        let dm = direct_room_id("zed", "amy");
        assert_eq!(dm, "dm_amy_zed");
        d.apply(&DirectoryEvent::RoomCreated { id: "e4".into(), room: room(&dm, false, "zed") });
        assert!(d.is_member(&dm, "amy") && d.is_member(&dm, "zed"));
        // closed by one, reopened by them; nobody else joins a 1:1 chat
        d.apply(&DirectoryEvent::MemberLeft { id: "e5".into(), room: dm.clone(), user: "amy".into() });
        assert!(!d.is_member(&dm, "amy"));
        assert!(d.apply(&DirectoryEvent::MemberJoined { id: "e6".into(), room: dm.clone(), user: "amy".into() }));
        assert!(d.is_member(&dm, "amy"));
        assert!(!d.apply(&DirectoryEvent::MemberJoined { id: "e7".into(), room: dm.clone(), user: "eve".into() }));
    }
}
