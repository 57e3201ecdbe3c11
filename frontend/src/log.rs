//! The log of the room on screen: stored messages by increasing id, with
//! notices ("alice joined") between them, bounded in length.
//!
//! It keeps its first and last message ids, so the reducer's questions (what
//! to resume after, what to page before, is this message new) cost nothing
//! however long the log is.

use std::ops::Deref;
use std::rc::Rc;

use chat_shared::{ChatMessage, DELETED_TEXT, MessageText};

/// Most entries kept in the log; older ones are dropped to bound memory
/// (scrolling up loads them again).
pub const MAX_LOG_ENTRIES: usize = 2_000;

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// A stored message.
    Message(ChatMessage),
    /// "alice joined" and the like; `key` is unique within the log.
    Notice {
        /// Unique within the log, for rendering.
        key: u64,
        /// What happened.
        text: String,
    },
}

impl LogEntry {
    /// The stored message's id; `None` for a notice.
    pub fn message_id(&self) -> Option<u64> {
        match self {
            LogEntry::Message(message) => Some(message.id),
            LogEntry::Notice { .. } => None,
        }
    }
}

/// The entries, shared cheaply with the components that render them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Log {
    entries: Rc<Vec<LogEntry>>,
    first_id: Option<u64>,
    last_id: Option<u64>,
    /// Numbers notices; never reset, so keys stay unique across rooms.
    next_notice: u64,
    /// Messages the log's deletions delete, so a copy that arrives after its
    /// deletion (an older page read just before it) is shown deleted too.
    /// Sorted.
    deleted: Vec<u64>,
}

impl Deref for Log {
    type Target = [LogEntry];

    fn deref(&self) -> &[LogEntry] {
        &self.entries
    }
}

impl Log {
    /// The entries, for rendering (a cheap clone).
    pub fn entries(&self) -> Rc<Vec<LogEntry>> {
        self.entries.clone()
    }

    /// The id of the oldest message in the log, to page before.
    pub fn first_id(&self) -> Option<u64> {
        self.first_id
    }

    /// The id of the newest message in the log, to resume after.
    pub fn last_id(&self) -> Option<u64> {
        self.last_id
    }

    /// Whether the log holds message `id`'s place already (it lies between
    /// the first and last ids, which have no gaps between them).
    pub fn covers(&self, id: u64) -> bool {
        matches!((self.first_id, self.last_id), (Some(first), Some(last)) if (first..=last).contains(&id))
    }

    /// An empty log that goes on numbering notices where this one stopped.
    pub fn cleared(&self) -> Log {
        Log { next_notice: self.next_notice, ..Log::default() }
    }

    /// Appends a notice.
    pub fn notice(&mut self, text: String) -> bool {
        self.next_notice += 1;
        let key = self.next_notice;
        self.append([LogEntry::Notice { key, text }])
    }

    /// Appends entries (messages must come after the last one); returns
    /// whether the oldest entries were dropped to stay within the bound.
    pub fn append(&mut self, entries: impl IntoIterator<Item = LogEntry>) -> bool {
        let before = self.entries.len();
        Rc::make_mut(&mut self.entries).extend(entries);
        let added = before..self.entries.len();
        if let Some(id) = self.entries[added.clone()].iter().rev().find_map(LogEntry::message_id) {
            self.last_id = Some(id);
            self.first_id = self.first_id.or_else(|| self.entries[added.clone()].iter().find_map(LogEntry::message_id));
        }
        self.apply_deletions(added);
        if self.entries.len() <= MAX_LOG_ENTRIES {
            return false;
        }
        let log = Rc::make_mut(&mut self.entries);
        log.drain(..log.len() - MAX_LOG_ENTRIES);
        self.first_id = log.iter().find_map(LogEntry::message_id);
        true
    }

    /// Shows as deleted what the deletions among entries `added` delete, and
    /// the messages among them that a deletion the log holds deletes.
    fn apply_deletions(&mut self, added: std::ops::Range<usize>) {
        let mut affected = false;
        for entry in &self.entries[added] {
            if let LogEntry::Message(message) = entry {
                if let Some(target) = message.deletes
                    && let Err(at) = self.deleted.binary_search(&target)
                {
                    self.deleted.insert(at, target);
                    affected = true;
                }
                affected |= !message.deleted && self.deleted.binary_search(&message.id).is_ok();
            }
        }
        if !affected {
            return;
        }
        for entry in Rc::make_mut(&mut self.entries) {
            if let LogEntry::Message(message) = entry
                && !message.deleted
                && self.deleted.binary_search(&message.id).is_ok()
                && let Ok(text) = MessageText::parse(DELETED_TEXT)
            {
                message.deleted = true;
                message.text = text;
            }
        }
    }

    /// Adds stored messages: older ones go before the log, newer ones after,
    /// ones it covers are skipped, so pages and resumes never duplicate.
    /// Returns whether the oldest entries were dropped.
    pub fn merge(&mut self, messages: Vec<ChatMessage>) -> bool {
        let first = self.first_id;
        let (older, newer): (Vec<_>, Vec<_>) =
            messages.into_iter().filter(|m| !self.covers(m.id)).partition(|m| first.is_some_and(|first| m.id < first));
        if let Some(oldest) = older.first() {
            self.first_id = Some(oldest.id);
            let count = older.len();
            Rc::make_mut(&mut self.entries).splice(0..0, older.into_iter().map(LogEntry::Message));
            self.apply_deletions(0..count);
        }
        self.append(newer.into_iter().map(LogEntry::Message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::{MessageText, Nickname, RoomName};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn message(id: u64) -> ChatMessage {
        ChatMessage {
            room: RoomName::lobby(),
            id,
            ts: 0,
            nick: Nickname::parse("alice").expect("nick"),
            text: MessageText::parse(format!("m{id}")).expect("text"),
            client_id: None,
            deletes: None,
            deleted: false,
        }
    }

    fn deletion(id: u64, target: u64) -> ChatMessage {
        ChatMessage { deletes: Some(target), ..message(id) }
    }

    fn deleted(log: &Log) -> Vec<u64> {
        log.iter()
            .filter_map(|e| matches!(e, LogEntry::Message(m) if m.deleted).then(|| e.message_id()).flatten())
            .collect()
    }

    #[test]
    fn a_deletion_shows_its_message_deleted_whichever_arrives_first() {
        let mut log = Log::default();
        log.merge((10..=12).map(message).collect());
        log.merge(vec![deletion(13, 11)]);
        assert_eq!(deleted(&log), [11]);
        assert_eq!(log.last_id(), Some(13), "a deletion has its place in the order");
        let shown = log.iter().find(|e| e.message_id() == Some(11));
        assert!(matches!(shown, Some(LogEntry::Message(m)) if m.text.as_str() == DELETED_TEXT), "its text is gone");
        // An older page read before the deletion of one of its messages.
        log.merge(vec![message(8), message(9)]);
        log.merge(vec![deletion(14, 8)]);
        assert_eq!(deleted(&log), [8, 11]);
        log.merge(vec![deletion(15, 5)]);
        log.merge((5..=7).map(message).collect());
        assert_eq!(deleted(&log), [5, 8, 11], "a page that comes after its message's deletion");
    }

    fn ids(log: &Log) -> Vec<u64> {
        log.iter().filter_map(LogEntry::message_id).collect()
    }

    #[test]
    fn first_and_last_ids_follow_every_change() {
        let mut log = Log::default();
        assert_eq!((log.first_id(), log.last_id()), (None, None));
        log.notice("hello".into());
        assert_eq!((log.first_id(), log.last_id()), (None, None), "notices have no id");
        log.merge((10..=12).map(message).collect());
        assert_eq!((log.first_id(), log.last_id()), (Some(10), Some(12)));
        log.merge((5..=11).map(message).collect());
        assert_eq!(ids(&log), [5, 6, 7, 8, 9, 10, 11, 12], "older go first, covered ones are skipped");
        assert_eq!((log.first_id(), log.last_id()), (Some(5), Some(12)));
        log.notice("bob joined".into());
        assert_eq!(log.last_id(), Some(12));
    }

    #[test]
    fn the_bound_drops_the_oldest_and_moves_the_first_id() {
        let mut log = Log::default();
        assert!(!log.merge((1..=MAX_LOG_ENTRIES as u64).map(message).collect()));
        assert!(log.merge(vec![message(MAX_LOG_ENTRIES as u64 + 1)]), "one too many");
        assert_eq!(log.len(), MAX_LOG_ENTRIES);
        assert_eq!((log.first_id(), log.last_id()), (Some(2), Some(MAX_LOG_ENTRIES as u64 + 1)));
    }

    #[test]
    fn a_cleared_log_keeps_numbering_notices() {
        let mut log = Log::default();
        log.notice("one".into());
        let mut next = log.cleared();
        next.notice("two".into());
        assert!(matches!(next.first(), Some(LogEntry::Notice { key: 2, .. })));
        assert_eq!(next.len(), 1);
    }
}
