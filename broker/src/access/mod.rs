//! `AccessControl`: users, vhost records, permissions and topic permissions, as RabbitMQ's
//! internal auth backend keeps them (`rabbit_auth_backend_internal`), durable in the store.
//!
//! Connections never take its lock per method: they hold an `Arc<Permissions>` (compiled once
//! per user and vhost) and the generation it was built from, and fetch a new one only when
//! `generation()` moved (one atomic load per frame).

pub mod password;
pub mod permissions;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use warren_persistence::{DefinitionSet, PermissionDef, Store, StoreError, TopicPermissionDef, UserDef, VhostDef};

use crate::auth::{self, AuthError};
use crate::blocking::blocking;
pub use permissions::{Perm, Permissions, Resource};

/// RabbitMQ's user tags (any other tag is kept too, as RabbitMQ does).
pub const KNOWN_TAGS: &[&str] = &["administrator", "monitoring", "management", "policymaker", "impersonator"];

/// What an administrative change can run into; the texts are rabbitmqctl's.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("User \"{0}\" already exists")]
    UserExists(String),
    #[error("User \"{0}\" does not exist")]
    NoSuchUser(String),
    #[error("Virtual host \"{0}\" does not exist")]
    NoSuchVhost(String),
    #[error("Invalid regular expression '{0}': {1}")]
    InvalidRegex(String, String),
    #[error("Unsupported hashing algorithm '{0}' for user \"{1}\"")]
    HashingAlgorithm(String, String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot store the change: {0}")]
    Store(#[from] StoreError),
}

#[derive(Debug, Default)]
struct State {
    users: BTreeMap<String, UserDef>,
    vhosts: BTreeMap<String, VhostDef>,
    /// by (vhost, user)
    permissions: BTreeMap<(String, String), PermissionDef>,
    /// by (vhost, user, exchange)
    topic_permissions: BTreeMap<(String, String, String), TopicPermissionDef>,
}

pub struct AccessControl {
    state: RwLock<State>,
    /// Held across a change's disk write, so logins keep reading meanwhile.
    changing: Mutex<()>,
    generation: AtomicU64,
    /// Compiled permissions by (vhost, user), emptied on every change.
    compiled: Mutex<HashMap<(String, String), Arc<Permissions>>>,
    store: Option<Arc<Store>>,
    /// Users that may log in from loopback addresses only (RabbitMQ's loopback_users).
    loopback_users: Vec<String>,
}

impl std::fmt::Debug for AccessControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.read();
        f.debug_struct("AccessControl").field("users", &st.users.len()).field("vhosts", &st.vhosts.len()).finish()
    }
}

fn check_regex(source: &str) -> Result<(), AccessError> {
    permissions::Pattern::compile(source)
        .map(|_| ())
        .map_err(|e| AccessError::InvalidRegex(source.into(), e.to_string()))
}

impl AccessControl {
    /// Access control over what `defs` holds (an empty set for a broker without a store).
    pub fn new(store: Option<Arc<Store>>, defs: &DefinitionSet, loopback_users: Vec<String>) -> Self {
        let mut st = State::default();
        for u in &defs.users {
            st.users.insert(u.name.clone(), u.clone());
        }
        for v in &defs.vhosts {
            st.vhosts.insert(v.name.clone(), v.clone());
        }
        for p in &defs.permissions {
            st.permissions.insert((p.vhost.clone(), p.user.clone()), p.clone());
        }
        for t in &defs.topic_permissions {
            st.topic_permissions.insert((t.vhost.clone(), t.user.clone(), t.exchange.clone()), t.clone());
        }
        Self {
            state: RwLock::new(st),
            changing: Mutex::new(()),
            generation: AtomicU64::new(1),
            compiled: Mutex::new(HashMap::new()),
            store,
            loopback_users,
        }
    }

    /// Moves on every change of users, vhosts or permissions.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A change: write it to disk (when there is a store) and then apply it in memory.
    fn change<T>(
        &self,
        persist: impl FnOnce(&Store) -> Result<(), StoreError>,
        apply: impl FnOnce(&mut State) -> T,
    ) -> Result<T, AccessError> {
        if let Some(store) = &self.store {
            blocking(|| persist(store))?;
        }
        let out = apply(&mut self.state.write());
        self.compiled.lock().clear();
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(out)
    }

    // ---- logging in

    /// Check a start-ok response (PLAIN or AMQPLAIN) against the users; returns the user name.
    pub fn login(&self, mechanism: &str, response: &[u8], peer: IpAddr) -> Result<String, AuthError> {
        let (name, password) = auth::parse_response(mechanism, response)?;
        if password.is_empty() {
            return Err(AuthError::BlankPassword(name));
        }
        if !self.check_password(&name, &password) {
            return Err(AuthError::InvalidCredentials(name));
        }
        // (::ffff:127.0.0.1, an IPv4 client of a dual-stack listener, is loopback too)
        if self.loopback_users.contains(&name) && !peer.to_canonical().is_loopback() {
            return Err(AuthError::LoopbackOnly(name));
        }
        Ok(name)
    }

    /// Whether `password` is `user`'s.
    pub fn check_password(&self, user: &str, password: &str) -> bool {
        let st = self.state.read();
        st.users.get(user).is_some_and(|u| password::verify(&u.hashing_algorithm, &u.password_hash, password))
    }

    pub fn vhost_exists(&self, vhost: &str) -> bool {
        self.state.read().vhosts.contains_key(vhost)
    }

    /// `user`'s compiled permissions on `vhost` (shared; rebuilt after a change).
    pub fn permissions(&self, user: &str, vhost: &str) -> Arc<Permissions> {
        let key = (vhost.to_owned(), user.to_owned());
        if let Some(p) = self.compiled.lock().get(&key) {
            return p.clone();
        }
        let generation = self.generation();
        let compiled = {
            let st = self.state.read();
            let topics: Vec<&TopicPermissionDef> = st
                .topic_permissions
                .range((vhost.to_owned(), user.to_owned(), String::new())..)
                .take_while(|((v, u, _), _)| v == vhost && u == user)
                .map(|(_, t)| t)
                .collect();
            Arc::new(Permissions::new(user, vhost, st.permissions.get(&key), &topics, generation))
        };
        // Only cache what no change overtook.
        if self.generation() == generation {
            self.compiled.lock().insert(key, compiled.clone());
        }
        compiled
    }

    // ---- users

    pub fn user(&self, name: &str) -> Option<UserDef> {
        self.state.read().users.get(name).cloned()
    }

    pub fn users(&self) -> Vec<UserDef> {
        self.state.read().users.values().cloned().collect()
    }

    /// `rabbitmqctl add_user`: a new user without tags or permissions.
    pub fn add_user(&self, name: &str, password: &str) -> Result<(), AccessError> {
        let _changing = self.changing.lock();
        if name.is_empty() {
            return Err(AccessError::Invalid("user name cannot be empty".into()));
        }
        if self.state.read().users.contains_key(name) {
            return Err(AccessError::UserExists(name.into()));
        }
        self.put_user_locked(new_user(name, password, Vec::new()))
    }

    /// A service user (the chat's, one from the configuration) logs in with `password`: made
    /// without tags if missing, its password replaced (tags kept) if it differs, nothing
    /// written if it matches. Returns whether the user existed before.
    pub fn ensure_password(&self, name: &str, password: &str) -> Result<bool, AccessError> {
        let existing = self.user(name);
        if !self.check_password(name, password) {
            let tags = existing.as_ref().map(|u| u.tags.clone()).unwrap_or_default();
            self.put_user(new_user(name, password, tags))?;
        }
        Ok(existing.is_some())
    }

    /// Create or replace a user as given (definitions import, seeding).
    pub fn put_user(&self, def: UserDef) -> Result<(), AccessError> {
        let _changing = self.changing.lock();
        if !def.password_hash.is_empty() && !password::supported(&def.hashing_algorithm) {
            return Err(AccessError::HashingAlgorithm(def.hashing_algorithm, def.name));
        }
        self.put_user_locked(def)
    }

    fn put_user_locked(&self, def: UserDef) -> Result<(), AccessError> {
        self.change(
            |s| s.definitions.put_user(&def),
            |st| {
                st.users.insert(def.name.clone(), def.clone());
            },
        )
    }

    fn update_user(&self, name: &str, f: impl FnOnce(&mut UserDef)) -> Result<(), AccessError> {
        let _changing = self.changing.lock();
        let mut def = self.user(name).ok_or_else(|| AccessError::NoSuchUser(name.into()))?;
        f(&mut def);
        self.put_user_locked(def)
    }

    pub fn change_password(&self, name: &str, password: &str) -> Result<(), AccessError> {
        self.update_user(name, |u| {
            u.password_hash = password::hash(password);
            u.hashing_algorithm = password::SHA256.into();
        })
    }

    pub fn set_user_tags(&self, name: &str, tags: &[String]) -> Result<(), AccessError> {
        self.update_user(name, |u| u.tags = tags.to_vec())
    }

    /// Delete a user with its permissions everywhere.
    pub fn delete_user(&self, name: &str) -> Result<(), AccessError> {
        let _changing = self.changing.lock();
        if !self.state.read().users.contains_key(name) {
            return Err(AccessError::NoSuchUser(name.into()));
        }
        self.change(
            |s| s.definitions.delete_user(name),
            |st| {
                st.users.remove(name);
                st.permissions.retain(|(_, u), _| u != name);
                st.topic_permissions.retain(|(_, u, _), _| u != name);
            },
        )
    }

    // ---- vhosts (the records; the broker creates the VirtualHost objects)

    pub fn vhosts(&self) -> Vec<VhostDef> {
        self.state.read().vhosts.values().cloned().collect()
    }

    pub fn put_vhost(&self, def: VhostDef) -> Result<(), AccessError> {
        let _changing = self.changing.lock();
        self.change(
            |s| s.definitions.put_vhost(&def),
            |st| {
                st.vhosts.insert(def.name.clone(), def.clone());
            },
        )
    }

    /// Forget a vhost and every permission on it (the store's part is the broker's).
    pub fn forget_vhost(&self, name: &str) {
        let _changing = self.changing.lock();
        let _ = self.change(
            |_| Ok(()),
            |st| {
                st.vhosts.remove(name);
                st.permissions.retain(|(v, _), _| v != name);
                st.topic_permissions.retain(|(v, _, _), _| v != name);
            },
        );
    }

    // ---- permissions

    fn check_user_and_vhost(&self, user: &str, vhost: &str) -> Result<(), AccessError> {
        let st = self.state.read();
        if !st.users.contains_key(user) {
            return Err(AccessError::NoSuchUser(user.into()));
        }
        if !st.vhosts.contains_key(vhost) {
            return Err(AccessError::NoSuchVhost(vhost.into()));
        }
        Ok(())
    }

    pub fn permission_list(&self) -> Vec<PermissionDef> {
        self.state.read().permissions.values().cloned().collect()
    }

    pub fn topic_permission_list(&self) -> Vec<TopicPermissionDef> {
        self.state.read().topic_permissions.values().cloned().collect()
    }

    pub fn set_permissions(&self, def: PermissionDef) -> Result<(), AccessError> {
        let _changing = self.changing.lock();
        for re in [&def.configure, &def.write, &def.read] {
            check_regex(re)?;
        }
        self.check_user_and_vhost(&def.user, &def.vhost)?;
        self.change(
            |s| s.definitions.put_permission(&def),
            |st| {
                st.permissions.insert((def.vhost.clone(), def.user.clone()), def.clone());
            },
        )
    }

    pub fn clear_permissions(&self, user: &str, vhost: &str) -> Result<(), AccessError> {
        let _changing = self.changing.lock();
        self.check_user_and_vhost(user, vhost)?;
        self.change(
            |s| s.definitions.delete_permission(vhost, user),
            |st| {
                st.permissions.remove(&(vhost.to_owned(), user.to_owned()));
            },
        )
    }

    pub fn set_topic_permissions(&self, def: TopicPermissionDef) -> Result<(), AccessError> {
        let _changing = self.changing.lock();
        for re in [&def.write, &def.read] {
            check_regex(re)?;
        }
        self.check_user_and_vhost(&def.user, &def.vhost)?;
        self.change(
            |s| s.definitions.put_topic_permission(&def),
            |st| {
                st.topic_permissions.insert((def.vhost.clone(), def.user.clone(), def.exchange.clone()), def.clone());
            },
        )
    }

    /// Clear a user's topic permissions on a vhost: for one exchange, or all.
    pub fn clear_topic_permissions(&self, user: &str, vhost: &str, exchange: Option<&str>) -> Result<(), AccessError> {
        let _changing = self.changing.lock();
        self.check_user_and_vhost(user, vhost)?;
        self.change(
            |s| s.definitions.delete_topic_permissions(vhost, user, exchange),
            |st| {
                st.topic_permissions
                    .retain(|(v, u, x), _| !(v == vhost && u == user && exchange.is_none_or(|e| e == x)));
            },
        )
    }
}

/// A user record with a freshly hashed password.
pub fn new_user(name: &str, password: &str, tags: Vec<String>) -> UserDef {
    UserDef {
        name: name.to_owned(),
        password_hash: password::hash(password),
        hashing_algorithm: password::SHA256.into(),
        tags,
    }
}

/// Full permissions (`.*` three times), as the default user gets.
pub fn full_permissions(user: &str, vhost: &str) -> PermissionDef {
    PermissionDef {
        user: user.to_owned(),
        vhost: vhost.to_owned(),
        configure: ".*".into(),
        write: ".*".into(),
        read: ".*".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    fn control() -> AccessControl {
        let ac = AccessControl::new(None, &DefinitionSet::default(), vec!["guest".into()]);
        ac.put_vhost(VhostDef { name: "/".into(), description: String::new(), tags: vec![] }).unwrap();
        ac.put_user(new_user("guest", "guest", vec!["administrator".into()])).unwrap();
        ac.set_permissions(full_permissions("guest", "/")).unwrap();
        ac
    }

    #[test]
    fn login_checks_hash_blank_password_and_loopback() {
        let ac = control();
        assert_eq!(ac.login("PLAIN", b"\0guest\0guest", LOCAL), Ok("guest".into()));
        assert!(matches!(ac.login("PLAIN", b"\0guest\0nope", LOCAL), Err(AuthError::InvalidCredentials(_))));
        assert!(matches!(ac.login("PLAIN", b"\0guest\0guest", REMOTE), Err(AuthError::LoopbackOnly(_))));
        // a dual-stack listener's loopback clients: ::1, and 127.0.0.1 as ::ffff:127.0.0.1
        for local in ["::1", "::ffff:127.0.0.1"] {
            assert_eq!(ac.login("PLAIN", b"\0guest\0guest", local.parse().unwrap()), Ok("guest".into()), "{local}");
        }
        let mapped_remote = "::ffff:192.0.2.1".parse().unwrap();
        assert!(matches!(ac.login("PLAIN", b"\0guest\0guest", mapped_remote), Err(AuthError::LoopbackOnly(_))));
        assert!(matches!(ac.login("PLAIN", b"\0nobody\0x", LOCAL), Err(AuthError::InvalidCredentials(_))));
        ac.add_user("bob", "").unwrap();
        assert!(matches!(ac.login("PLAIN", b"\0bob\0", LOCAL), Err(AuthError::BlankPassword(_))));
    }

    #[test]
    fn permissions_are_cached_until_a_change() {
        let ac = control();
        ac.add_user("bob", "pw").unwrap();
        let before = ac.permissions("bob", "/");
        assert!(!before.may_open());
        assert!(Arc::ptr_eq(&before, &ac.permissions("bob", "/")));
        let g = ac.generation();
        ac.set_permissions(PermissionDef {
            user: "bob".into(),
            vhost: "/".into(),
            configure: "".into(),
            write: "x".into(),
            read: ".*".into(),
        })
        .unwrap();
        assert!(ac.generation() > g);
        let after = ac.permissions("bob", "/");
        assert!(after.may_open());
        assert!(after.check(Perm::Write, Resource::Exchange, "x").is_ok());
        assert!(matches!(ac.set_permissions(full_permissions("nobody", "/")), Err(AccessError::NoSuchUser(_))));
        assert!(matches!(ac.set_permissions(full_permissions("bob", "nope")), Err(AccessError::NoSuchVhost(_))));
        let bad = PermissionDef { configure: "(".into(), ..full_permissions("bob", "/") };
        assert!(matches!(ac.set_permissions(bad), Err(AccessError::InvalidRegex(..))));
        ac.delete_user("bob").unwrap();
        assert!(ac.permission_list().iter().all(|p| p.user != "bob"));
        assert!(matches!(ac.add_user("guest", "x"), Err(AccessError::UserExists(_))));
    }
}
