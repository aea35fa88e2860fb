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

/// Everything durable that was declared.
#[derive(Debug, Default)]
pub struct DefinitionSet {
    pub exchanges: Vec<ExchangeDef>,
    pub queues: Vec<QueueDef>,
    pub bindings: Vec<BindingDef>,
}

pub struct Definitions {
    db: sled::Db,
    exchanges: sled::Tree,
    queues: sled::Tree,
    bindings: sled::Tree,
    dir: PathBuf,
    /// sled's files, fsync'd after each flush.
    files: Vec<File>,
}

fn key(parts: &[&str]) -> Vec<u8> {
    // A NUL separator cannot occur in AMQP names that matter here and keeps keys unambiguous.
    parts.join("\u{0}").into_bytes()
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
                Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock && attempts < 250 => {
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
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&path).map_err(|e| StoreError::io(&path, e))?.filter_map(Result::ok) {
            if entry.path().is_file() {
                files.push(File::open(entry.path()).map_err(|e| StoreError::io(&entry.path(), e))?);
            }
        }
        files.push(File::open(&path).map_err(|e| StoreError::io(&path, e))?);
        Ok(Self { db, exchanges, queues, bindings, dir: path, files })
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
}
