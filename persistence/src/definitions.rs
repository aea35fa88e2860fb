//! Durable definitions (exchanges, queues, bindings) in sled. sled 0.34's `flush()` stops at
//! sync_file_range (sled issue #1452), so every change is followed by an fsync of sled's own
//! files through descriptors opened once: a declare-ok means the definition is on disk.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExchangeDef {
    pub vhost: String,
    pub name: String,
    pub kind: String,
    pub auto_delete: bool,
    pub internal: bool,
    /// The exchange's arguments as a JSON document (amq-protocol's FieldTable serialization).
    pub arguments: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueDef {
    pub vhost: String,
    pub name: String,
    pub auto_delete: bool,
    pub arguments: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BindingDef {
    pub vhost: String,
    /// The source exchange.
    pub exchange: String,
    /// The destination: a queue, or an exchange when `to_exchange` (exchange.bind).
    pub queue: String,
    pub routing_key: String,
    pub arguments: serde_json::Value,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub to_exchange: bool,
}

/// A user as RabbitMQ keeps it: `password_hash` is base64(salt ++ hash(salt ++ password)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDef {
    pub name: String,
    pub password_hash: String,
    pub hashing_algorithm: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VhostDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A user's configure/write/read regular expressions on one vhost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionDef {
    pub user: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

/// A user's write/read regular expressions for routing keys on one topic exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPermissionDef {
    pub user: String,
    pub vhost: String,
    pub exchange: String,
    pub write: String,
    pub read: String,
}

/// Everything durable that was declared.
#[derive(Debug, Default)]
pub struct DefinitionSet {
    pub exchanges: Vec<ExchangeDef>,
    pub queues: Vec<QueueDef>,
    pub bindings: Vec<BindingDef>,
    pub users: Vec<UserDef>,
    pub vhosts: Vec<VhostDef>,
    pub permissions: Vec<PermissionDef>,
    pub topic_permissions: Vec<TopicPermissionDef>,
    /// The default user and vhost were created once (RabbitMQ does it on a fresh node only).
    pub seeded: bool,
}

pub struct Definitions {
    db: sled::Db,
    exchanges: sled::Tree,
    queues: sled::Tree,
    bindings: sled::Tree,
    users: sled::Tree,
    vhosts: sled::Tree,
    permissions: sled::Tree,
    topic_permissions: sled::Tree,
    meta: sled::Tree,
    dir: PathBuf,
    /// sled's files, fsync'd after each flush.
    files: Vec<File>,
}

/// The meta key set once the default user and vhost exist.
const SEEDED: &str = "seeded";

fn key(parts: &[&str]) -> Vec<u8> {
    // A NUL separator cannot occur in AMQP names that matter here and keeps keys unambiguous.
    parts.join("\u{0}").into_bytes()
}

/// Whether sled failed to open because its file lock is held. sled 0.34 does not pass the
/// lock's own `WouldBlock` on: it reports `ErrorKind::Other` with "could not acquire lock on
/// ..." and the OS error in the message, so the kind alone never matched and the retry below
/// never ran (a CI run failed a same-process reopen at once on it).
fn lock_held(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().starts_with("could not acquire lock")
}

impl Definitions {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("definitions");
        // A small cache: definitions are few and the memory budget is tight.
        let config = sled::Config::new().path(&path).cache_capacity(8 << 20);
        // sled lets go of its file lock from a thread of its own after the last handle is
        // dropped: a store reopened at once (a restart in the same process) may find it still
        // held for a moment (longer on a busy machine). Another process holding it is an error
        // after five seconds.
        let mut attempts = 0;
        let db = loop {
            match config.open() {
                Err(sled::Error::Io(e)) if lock_held(&e) && attempts < 250 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => {
                    break other.map_err(|e| StoreError::Definitions { path: path.clone(), reason: e.to_string() })?;
                }
            }
        };
        let tree = |name: &str| {
            db.open_tree(name).map_err(|e| StoreError::Definitions { path: path.clone(), reason: e.to_string() })
        };
        let (exchanges, queues, bindings) = (tree("exchanges")?, tree("queues")?, tree("bindings")?);
        let (users, vhosts, meta) = (tree("users")?, tree("vhosts")?, tree("meta")?);
        let (permissions, topic_permissions) = (tree("permissions")?, tree("topic_permissions")?);
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&path).map_err(|e| StoreError::io(&path, e))?.filter_map(Result::ok) {
            if entry.path().is_file() {
                files.push(File::open(entry.path()).map_err(|e| StoreError::io(&entry.path(), e))?);
            }
        }
        files.push(File::open(&path).map_err(|e| StoreError::io(&path, e))?);
        Ok(Self {
            db,
            exchanges,
            queues,
            bindings,
            users,
            vhosts,
            permissions,
            topic_permissions,
            meta,
            dir: path,
            files,
        })
    }

    pub fn load(&self) -> Result<DefinitionSet, StoreError> {
        fn all<T: for<'de> Deserialize<'de>>(tree: &sled::Tree, path: &Path) -> Result<Vec<T>, StoreError> {
            tree.iter()
                .map(|kv| {
                    let (_, v) =
                        kv.map_err(|e| StoreError::Definitions { path: path.to_owned(), reason: e.to_string() })?;
                    serde_json::from_slice(&v).map_err(|e| StoreError::Definitions {
                        path: path.to_owned(),
                        reason: format!("unreadable definition: {e}"),
                    })
                })
                .collect()
        }
        Ok(DefinitionSet {
            exchanges: all(&self.exchanges, &self.dir)?,
            queues: all(&self.queues, &self.dir)?,
            bindings: all(&self.bindings, &self.dir)?,
            users: all(&self.users, &self.dir)?,
            vhosts: all(&self.vhosts, &self.dir)?,
            permissions: all(&self.permissions, &self.dir)?,
            topic_permissions: all(&self.topic_permissions, &self.dir)?,
            seeded: self
                .meta
                .contains_key(SEEDED)
                .map_err(|e| StoreError::Definitions { path: self.dir.clone(), reason: e.to_string() })?,
        })
    }

    fn durable_write(&self, op: impl FnOnce() -> sled::Result<()>) -> Result<(), StoreError> {
        let err = |e: String| StoreError::Definitions { path: self.dir.clone(), reason: e };
        op().map_err(|e| err(e.to_string()))?;
        self.db.flush().map_err(|e| err(e.to_string()))?;
        for f in &self.files {
            f.sync_all().map_err(|e| StoreError::io(&self.dir, e))?;
        }
        Ok(())
    }

    fn put<T: Serialize>(&self, tree: &sled::Tree, k: Vec<u8>, v: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(v)
            .map_err(|e| StoreError::Definitions { path: self.dir.clone(), reason: e.to_string() })?;
        self.durable_write(|| tree.insert(k, bytes).map(|_| ()))
    }

    pub fn put_exchange(&self, d: &ExchangeDef) -> Result<(), StoreError> {
        self.put(&self.exchanges, key(&[&d.vhost, &d.name]), d)
    }

    pub fn delete_exchange(&self, vhost: &str, name: &str) -> Result<(), StoreError> {
        self.durable_write(|| self.exchanges.remove(key(&[vhost, name])).map(|_| ()))?;
        self.delete_bindings_where(|b| b.vhost == vhost && (b.exchange == name || (b.to_exchange && b.queue == name)))
    }

    pub fn put_queue(&self, d: &QueueDef) -> Result<(), StoreError> {
        self.put(&self.queues, key(&[&d.vhost, &d.name]), d)
    }

    pub fn delete_queue(&self, vhost: &str, name: &str) -> Result<(), StoreError> {
        self.durable_write(|| self.queues.remove(key(&[vhost, name])).map(|_| ()))?;
        self.delete_bindings_where(|b| b.vhost == vhost && !b.to_exchange && b.queue == name)
    }

    fn binding_key(d: &BindingDef) -> Vec<u8> {
        let args = d.arguments.to_string();
        if d.to_exchange {
            // A marker part keeps an exchange destination apart from a queue of the same name.
            key(&[&d.vhost, &d.exchange, "\u{1}exchange", &d.queue, &d.routing_key, &args])
        } else {
            key(&[&d.vhost, &d.exchange, &d.queue, &d.routing_key, &args])
        }
    }

    pub fn put_binding(&self, d: &BindingDef) -> Result<(), StoreError> {
        self.put(&self.bindings, Self::binding_key(d), d)
    }

    pub fn delete_binding(&self, d: &BindingDef) -> Result<(), StoreError> {
        self.durable_write(|| self.bindings.remove(Self::binding_key(d)).map(|_| ()))
    }

    fn delete_bindings_where(&self, doomed: impl Fn(&BindingDef) -> bool) -> Result<(), StoreError> {
        let keys: Vec<sled::IVec> = self
            .bindings
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, v)| serde_json::from_slice::<BindingDef>(v).is_ok_and(|b| doomed(&b)))
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.durable_write(|| {
            for k in keys {
                self.bindings.remove(k)?;
            }
            Ok(())
        })
    }

    /// Remember that the default user and vhost were created.
    pub fn mark_seeded(&self) -> Result<(), StoreError> {
        self.durable_write(|| self.meta.insert(SEEDED, &b"1"[..]).map(|_| ()))
    }

    pub fn put_user(&self, d: &UserDef) -> Result<(), StoreError> {
        self.put(&self.users, key(&[&d.name]), d)
    }

    /// Delete a user with its permissions and topic permissions in every vhost.
    pub fn delete_user(&self, name: &str) -> Result<(), StoreError> {
        let perms = self.keys_where::<PermissionDef>(&self.permissions, |p| p.user == name);
        let topics = self.keys_where::<TopicPermissionDef>(&self.topic_permissions, |p| p.user == name);
        self.durable_write(|| {
            self.users.remove(key(&[name]))?;
            for k in perms {
                self.permissions.remove(k)?;
            }
            for k in topics {
                self.topic_permissions.remove(k)?;
            }
            Ok(())
        })
    }

    pub fn put_vhost(&self, d: &VhostDef) -> Result<(), StoreError> {
        self.put(&self.vhosts, key(&[&d.name]), d)
    }

    /// Delete a vhost and everything defined in it.
    pub fn delete_vhost(&self, name: &str) -> Result<(), StoreError> {
        let exchanges = self.keys_where::<ExchangeDef>(&self.exchanges, |d| d.vhost == name);
        let queues = self.keys_where::<QueueDef>(&self.queues, |d| d.vhost == name);
        let bindings = self.keys_where::<BindingDef>(&self.bindings, |d| d.vhost == name);
        let perms = self.keys_where::<PermissionDef>(&self.permissions, |p| p.vhost == name);
        let topics = self.keys_where::<TopicPermissionDef>(&self.topic_permissions, |p| p.vhost == name);
        self.durable_write(|| {
            self.vhosts.remove(key(&[name]))?;
            for (tree, keys) in [
                (&self.exchanges, exchanges),
                (&self.queues, queues),
                (&self.bindings, bindings),
                (&self.permissions, perms),
                (&self.topic_permissions, topics),
            ] {
                for k in keys {
                    tree.remove(k)?;
                }
            }
            Ok(())
        })
    }

    pub fn put_permission(&self, d: &PermissionDef) -> Result<(), StoreError> {
        self.put(&self.permissions, key(&[&d.vhost, &d.user]), d)
    }

    pub fn delete_permission(&self, vhost: &str, user: &str) -> Result<(), StoreError> {
        self.durable_write(|| self.permissions.remove(key(&[vhost, user])).map(|_| ()))
    }

    pub fn put_topic_permission(&self, d: &TopicPermissionDef) -> Result<(), StoreError> {
        self.put(&self.topic_permissions, key(&[&d.vhost, &d.user, &d.exchange]), d)
    }

    /// Delete a user's topic permissions on a vhost: for one exchange, or all of them.
    pub fn delete_topic_permissions(&self, vhost: &str, user: &str, exchange: Option<&str>) -> Result<(), StoreError> {
        let keys = self.keys_where::<TopicPermissionDef>(&self.topic_permissions, |p| {
            p.vhost == vhost && p.user == user && exchange.is_none_or(|x| p.exchange == x)
        });
        self.durable_write(|| {
            for k in keys {
                self.topic_permissions.remove(k)?;
            }
            Ok(())
        })
    }

    fn keys_where<T: for<'de> Deserialize<'de>>(
        &self,
        tree: &sled::Tree,
        pick: impl Fn(&T) -> bool,
    ) -> Vec<sled::IVec> {
        tree.iter()
            .filter_map(Result::ok)
            .filter(|(_, v)| serde_json::from_slice::<T>(v).is_ok_and(|d| pick(&d)))
            .map(|(k, _)| k)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopen_waits_while_the_last_handle_still_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let first = Definitions::open(dir.path()).unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(first);
        });
        let second = Definitions::open(dir.path());
        holder.join().unwrap();
        assert!(second.is_ok(), "reopen failed: {:?}", second.err());
    }
}
