//! `Presence`: who is online, away or offline, across every front end on the broker.
//!
//! Each front end counts its own WebSocket sessions per user and announces changes on
//! `chat.events`; every front end (itself included) folds those announcements per node.
//! Front ends also say they are alive every few seconds: one not heard from for a while (it
//! crashed, or lost its broker connection) has its users' entries dropped, so they do not stay
//! online forever.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Online,
    Away,
    Offline,
}

#[derive(Default)]
struct Local {
    sessions: usize,
    away: usize,
}

#[derive(Default)]
pub struct Presence {
    local: Mutex<HashMap<String, Local>>,
    global: Mutex<HashMap<String, HashMap<String, Status>>>,
    /// When each front end (node) was last heard from.
    heard: Mutex<HashMap<String, Instant>>,
    /// Nodes dropped for silence (their users' entries are gone until they announce again).
    forgotten: Mutex<std::collections::HashSet<String>>,
}

impl Presence {
    fn local_status(l: &Local) -> Status {
        if l.sessions == 0 {
            Status::Offline
        } else if l.away >= l.sessions {
            Status::Away
        } else {
            Status::Online
        }
    }

    /// Change the local session counts of `user`; returns the new local status if it changed.
    pub fn local_change(&self, user: &str, sessions: isize, away: isize) -> Option<Status> {
        let mut local = self.local.lock();
        let l = local.entry(user.to_owned()).or_default();
        let before = Self::local_status(l);
        l.sessions = l.sessions.saturating_add_signed(sessions);
        l.away = l.away.saturating_add_signed(away).min(l.sessions);
        let after = Self::local_status(l);
        if l.sessions == 0 {
            local.remove(user);
        }
        (before != after).then_some(after)
    }

    /// Every local user with their status (to re-announce when another front end starts).
    pub fn local_snapshot(&self) -> Vec<(String, Status)> {
        self.local.lock().iter().map(|(u, l)| (u.clone(), Self::local_status(l))).collect()
    }

    /// Fold an announcement; returns the user's new effective status if it changed.
    pub fn apply(&self, node: &str, user: &str, status: Status) -> Option<Status> {
        self.heard_from(node);
        let mut global = self.global.lock();
        let before = Self::effective_in(&global, user);
        let nodes = global.entry(user.to_owned()).or_default();
        if status == Status::Offline {
            nodes.remove(node);
        } else {
            nodes.insert(node.to_owned(), status);
        }
        if nodes.is_empty() {
            global.remove(user);
        }
        let after = Self::effective_in(&global, user);
        (before != after).then_some(after)
    }

    fn effective_in(global: &HashMap<String, HashMap<String, Status>>, user: &str) -> Status {
        match global.get(user) {
            Some(nodes) if nodes.values().any(|s| *s == Status::Online) => Status::Online,
            Some(nodes) if !nodes.is_empty() => Status::Away,
            _ => Status::Offline,
        }
    }

    /// `node` said something: it is alive. True when it had been forgotten for silence (its
    /// users must be announced again).
    pub fn heard_from(&self, node: &str) -> bool {
        self.heard.lock().insert(node.to_owned(), Instant::now());
        self.forgotten.lock().remove(node)
    }

    /// Drop every node silent for longer than `silence`, with its users' entries; returns the
    /// users whose effective status changed, with the new status.
    pub fn forget_silent(&self, silence: Duration) -> Vec<(String, Status)> {
        let silent: Vec<String> = {
            let mut heard = self.heard.lock();
            let silent: Vec<String> =
                heard.iter().filter(|(_, at)| at.elapsed() > silence).map(|(node, _)| node.clone()).collect();
            for node in &silent {
                heard.remove(node);
            }
            self.forgotten.lock().extend(silent.iter().cloned());
            silent
        };
        if silent.is_empty() {
            return Vec::new();
        }
        let mut global = self.global.lock();
        let users: Vec<String> = global.keys().cloned().collect();
        let mut changed = Vec::new();
        for user in users {
            let before = Self::effective_in(&global, &user);
            if let Some(nodes) = global.get_mut(&user) {
                nodes.retain(|node, _| !silent.contains(node));
                if nodes.is_empty() {
                    global.remove(&user);
                }
            }
            let after = Self::effective_in(&global, &user);
            if before != after {
                changed.push((user, after));
            }
        }
        changed
    }

    pub fn status(&self, user: &str) -> Status {
        Self::effective_in(&self.global.lock(), user)
    }

    /// Everyone not offline.
    pub fn snapshot(&self) -> HashMap<String, Status> {
        let global = self.global.lock();
        global.keys().map(|u| (u.clone(), Self::effective_in(&global, u))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_counts_and_nodes() {
        let p = Presence::default();
        assert_eq!(p.local_change("a", 1, 0), Some(Status::Online));
        assert_eq!(p.local_change("a", 1, 0), None);
        assert_eq!(p.local_change("a", 0, 2), Some(Status::Away));
        assert_eq!(p.local_change("a", -2, -2), Some(Status::Offline));
        assert_eq!(p.apply("n1", "a", Status::Online), Some(Status::Online));
        assert_eq!(p.apply("n2", "a", Status::Away), None);
        assert_eq!(p.apply("n1", "a", Status::Offline), Some(Status::Away));
        assert_eq!(p.apply("n2", "a", Status::Offline), Some(Status::Offline));
        assert!(p.snapshot().is_empty());
    }

    #[test]
    fn silent_nodes_are_forgotten_with_their_users() {
        let p = Presence::default();
        p.apply("crashed", "a", Status::Online);
        p.apply("crashed", "b", Status::Online);
        p.apply("alive", "b", Status::Away);
        std::thread::sleep(Duration::from_millis(30));
        p.heard_from("alive");
        let mut changed = p.forget_silent(Duration::from_millis(20));
        changed.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(changed, [("a".to_owned(), Status::Offline), ("b".to_owned(), Status::Away)]);
        assert_eq!(p.status("b"), Status::Away);
        assert!(p.forget_silent(Duration::from_millis(20)).is_empty(), "forgotten once");
        assert!(p.heard_from("crashed"), "a forgotten node that speaks again is news");
        assert!(!p.heard_from("crashed"));
    }
}
