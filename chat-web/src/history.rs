//! History beyond what a front end keeps in memory: older pages and search read the room's
//! stream on demand (`amqp::range`), with the changes the room's log kept for them.

use serde::Serialize;

use crate::amqp::range::read_range;
use crate::amqp::room_queue;
use crate::directory::Room;
use crate::error::ApiError;
use crate::model::{ChatMessage, HistoryPage};
use crate::room_log::{Older, RoomLog};
use crate::state::App;

/// Records read per step when a page goes back into the stream (doubled while a step finds
/// too few messages, up to `MAX_STEP`).
const FIRST_STEP: u64 = 256;
const MAX_STEP: u64 = 65_536;
/// Stream records a search reads beyond the rooms' windows, shared by the rooms searched (each
/// reads at least `MIN_ROOM_SCAN`).
pub const SEARCH_SCAN: u64 = 20_000;
const MIN_ROOM_SCAN: u64 = 2_000;
/// Search results at most.
const MAX_HITS: usize = 50;

/// Search results, and how far back they looked.
#[derive(Debug, Serialize)]
pub struct SearchResults {
    /// Newest first.
    pub messages: Vec<SearchHit>,
    /// False when some room holds older messages than the search read (each room's stream is
    /// read at most `scanned_per_room` records beyond what the front end keeps in memory), or
    /// a room's stream could not be read.
    pub complete: bool,
    pub scanned_per_room: u64,
}

#[derive(Debug, Serialize)]
pub struct SearchHit {
    #[serde(flatten)]
    pub message: ChatMessage,
    /// The text around the first match (at most about 160 characters).
    pub snippet: String,
}

impl App {
    /// Up to `limit` messages of `room` before offset `before` (the newest if None), newest
    /// first: from memory, then from the stream for what is older than the window.
    pub async fn history(&self, room: &Room, before: Option<u64>, limit: usize) -> Result<HistoryPage, ApiError> {
        let log = self.room_log(room).await?;
        let (mut messages, older) = log.history(before, limit);
        let next_before = match older {
            Older::None => None,
            Older::Before(o) => Some(o),
            Older::Stream(from) if messages.len() < limit => {
                let (older, more) = self.read_older(&log, from, limit - messages.len(), MAX_STEP * 16).await?;
                messages.extend(older.into_iter().rev());
                more.then(|| messages.last().map_or(from, |m| m.offset))
            }
            Older::Stream(from) => Some(from),
        };
        Ok(HistoryPage { messages, next_before })
    }

    /// Up to `limit` messages before offset `before` read from `log`'s stream (oldest first),
    /// reading at most `budget` records; true if older ones may remain.
    async fn read_older(
        &self,
        log: &RoomLog,
        before: u64,
        limit: usize,
        budget: u64,
    ) -> Result<(Vec<ChatMessage>, bool), ApiError> {
        let queue = room_queue(&log.id);
        let mut found: Vec<ChatMessage> = Vec::new();
        let (mut end, mut step, mut read) = (before, FIRST_STEP, 0u64);
        loop {
            let start = end.saturating_sub(step);
            let range = read_range(&self.amqp, &queue, start, end).await?;
            read += end - start;
            let mut page = log.page_from(&range.records);
            page.append(&mut found);
            found = page;
            let at_start = start == 0 || range.first.is_none_or(|f| f > start);
            if at_start {
                break;
            }
            if found.len() >= limit || read >= budget {
                let more = true;
                let cut = found.len().saturating_sub(limit);
                return Ok((found.split_off(cut), more));
            }
            end = start;
            step = (step * 2).min(MAX_STEP);
        }
        let more = found.len() > limit;
        let cut = found.len().saturating_sub(limit);
        Ok((found.split_off(cut), more))
    }

    /// Messages containing `q` in `room`, or in every room `user` is a member of: the newest
    /// first, at most 50; each room's window in memory, then the records of its stream before
    /// it (`SEARCH_SCAN` in all, shared by the rooms, at least `MIN_ROOM_SCAN` each).
    pub async fn search(&self, user: &str, q: &str, room: Option<&str>) -> Result<SearchResults, ApiError> {
        let needle = q.trim().to_lowercase();
        if needle.chars().count() < 2 {
            return Err(ApiError::Unprocessable("search for at least 2 characters".into()));
        }
        if needle.len() > 200 {
            return Err(ApiError::Unprocessable("search for at most 200 bytes".into()));
        }
        let rooms = match room {
            Some(id) => vec![self.member_room(id, user)?],
            None => self.directory.rooms_of(user),
        };
        let per_room = (SEARCH_SCAN / u64::try_from(rooms.len().max(1)).unwrap_or(1)).max(MIN_ROOM_SCAN);
        let mut hits = Vec::new();
        let mut complete = true;
        for r in rooms {
            let Ok(log) = self.room_log(&r).await else { continue };
            let mut found = log.search(&needle, MAX_HITS);
            if found.len() < MAX_HITS
                && let Some(start) = log.window_start()
            {
                let scan_from = start.saturating_sub(per_room);
                let range = match read_range(&self.amqp, &room_queue(&r.id), scan_from, start).await {
                    Ok(range) => range,
                    Err(e) => {
                        tracing::warn!(room = %r.id, "search could not read the stream: {e}");
                        complete = false;
                        hits.extend(found);
                        continue;
                    }
                };
                if scan_from > 0 && range.first.is_some_and(|f| f <= scan_from) {
                    complete = false;
                }
                let older = log.page_from(&range.records);
                found.extend(
                    older
                        .into_iter()
                        .rev()
                        .filter(|m| !m.deleted && m.text.to_lowercase().contains(&needle))
                        .take(MAX_HITS - found.len()),
                );
            }
            hits.extend(found);
        }
        hits.sort_by_key(|m| std::cmp::Reverse(m.ts));
        hits.truncate(MAX_HITS);
        let messages = hits.into_iter().map(|m| SearchHit { snippet: snippet(&m.text, &needle), message: m }).collect();
        Ok(SearchResults { messages, complete, scanned_per_room: per_room })
    }
}

/// About 160 characters of `text` around the first match of `needle` (lowercase), with
/// ellipses where it was cut.
pub fn snippet(text: &str, needle: &str) -> String {
    const AROUND: usize = 60;
    let chars: Vec<char> = text.chars().collect();
    let lower: Vec<char> = text.to_lowercase().chars().collect();
    let n: Vec<char> = needle.chars().collect();
    // lowercase can change the length of some characters: then cut from the start
    let at = if lower.len() == chars.len() && !n.is_empty() {
        lower.windows(n.len()).position(|w| w == n.as_slice()).unwrap_or(0)
    } else {
        0
    };
    let from = at.saturating_sub(AROUND);
    let to = (at + n.len() + AROUND * 2).min(chars.len());
    let mut s: String = chars[from..to].iter().collect();
    if from > 0 {
        s.insert(0, '…');
    }
    if to < chars.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::snippet;

    #[test]
    fn snippets_cut_around_the_match() {
        assert_eq!(snippet("hello world", "world"), "hello world");
        let long = format!("{}needle{}", "a".repeat(100), "b".repeat(200));
        let s = snippet(&long, "needle");
        assert!(s.starts_with('…') && s.ends_with('…') && s.contains("needle"), "{s}");
        assert!(s.chars().count() < 200);
    }
}
