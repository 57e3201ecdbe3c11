//! History pages as a client receives them: read from the store's readers,
//! bounded in count and in bytes (so any page fits the client's outbound
//! queue, however large its messages), with client ids removed (they are
//! their author's business) and with `has_more` / `has_newer` saying whether
//! the client has more to fetch in either direction.

use std::sync::Arc;

use chat_shared::limits::{HISTORY_PAGE_MAX, HISTORY_PAGE_MAX_BYTES};
use chat_shared::{ChatMessage, RoomName, ServerMessage};

use crate::store::{HistoryStore, Page, StoreError};

/// Bytes of a message's JSON besides its text and nickname (field names,
/// room, id, timestamp), rounded up.
const ENVELOPE_BYTES: usize = 128;

/// Builds history pages for one session.
#[derive(Clone)]
pub struct HistoryPages {
    store: Arc<dyn HistoryStore>,
    max_bytes: usize,
}

impl HistoryPages {
    /// Pages of at most [`HISTORY_PAGE_MAX_BYTES`], and at most a quarter of
    /// the session's outbound queue, so a page and live traffic fit together.
    pub fn new(store: Arc<dyn HistoryStore>, outbound_queue_bytes: usize) -> Self {
        Self { store, max_bytes: HISTORY_PAGE_MAX_BYTES.min(outbound_queue_bytes / 4) }
    }

    /// The newest messages of `room`.
    pub async fn latest(&self, room: &RoomName, limit: u32) -> Result<ServerMessage, StoreError> {
        let limit = clamp(limit);
        let messages = self.store.page(room, Page::Latest { limit: limit + 1 }).await?;
        Ok(self.backward(room, messages, limit))
    }

    /// The newest messages of `room` with ids below `before`.
    pub async fn before(&self, room: &RoomName, before: u64, limit: u32) -> Result<ServerMessage, StoreError> {
        let limit = clamp(limit);
        let messages = self.store.page(room, Page::Before { id: before, limit: limit + 1 }).await?;
        Ok(self.backward(room, messages, limit))
    }

    /// The oldest messages of `room` with ids above `after`.
    pub async fn after(&self, room: &RoomName, after: u64, limit: u32) -> Result<ServerMessage, StoreError> {
        let limit = clamp(limit);
        let mut messages = self.store.page(room, Page::After { id: after, limit: limit + 1 }).await?;
        let mut has_newer = messages.len() > limit as usize;
        messages.truncate(limit as usize);
        let fitting = self.fitting(messages.iter());
        has_newer |= fitting < messages.len();
        messages.truncate(fitting);
        // Ids start at 1, so anything at or below a positive `after` is older.
        let has_more = after > 0;
        Ok(ServerMessage::History { room: room.clone(), messages: anonymous(messages), has_more, has_newer })
    }

    /// A page that ends at the newest of `messages` (oldest first, one more
    /// than `limit` if older ones exist).
    fn backward(&self, room: &RoomName, mut messages: Vec<ChatMessage>, limit: u32) -> ServerMessage {
        let mut has_more = messages.len() > limit as usize;
        let excess = messages.len().saturating_sub(limit as usize);
        messages.drain(..excess);
        let fitting = self.fitting(messages.iter().rev());
        has_more |= fitting < messages.len();
        messages.drain(..messages.len() - fitting);
        ServerMessage::History { room: room.clone(), messages: anonymous(messages), has_more, has_newer: false }
    }

    /// How many of `messages`, taken in order, fit the byte budget (at least one).
    fn fitting<'a>(&self, messages: impl Iterator<Item = &'a ChatMessage>) -> usize {
        let mut used = 0;
        let mut count = 0;
        for message in messages {
            used += encoded_len_bound(message);
            if count > 0 && used > self.max_bytes {
                break;
            }
            count += 1;
        }
        count
    }
}

fn clamp(limit: u32) -> u32 {
    limit.clamp(1, HISTORY_PAGE_MAX)
}

/// An upper bound of a message's size in JSON: every byte that JSON may
/// escape counted as a six-byte `\u00XX`.
fn encoded_len_bound(message: &ChatMessage) -> usize {
    let escaped = |s: &str| s.len() + 5 * s.bytes().filter(|b| *b < 0x20 || *b == b'"' || *b == b'\\').count();
    ENVELOPE_BYTES + escaped(message.text.as_str()) + escaped(message.nick.as_str())
}

/// Client ids are sent only to their author, with its live copy.
fn anonymous(mut messages: Vec<ChatMessage>) -> Vec<ChatMessage> {
    for message in &mut messages {
        message.client_id = None;
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::{ClientId, MessageText, Nickname};

    fn message(id: u64, text: &str) -> ChatMessage {
        ChatMessage {
            room: RoomName::lobby(),
            id,
            ts: 1,
            nick: Nickname::parse("alice").expect("nick"),
            text: MessageText::parse(text).expect("text"),
            client_id: Some(ClientId::parse("secret-1").expect("id")),
            deletes: None,
            deleted: false,
        }
    }

    #[test]
    fn the_bound_is_never_below_the_real_encoding() {
        for text in ["plain", "quotes \" and \\ and\nnew\tlines", "é李🙂"] {
            let m = message(1, text);
            assert!(encoded_len_bound(&m) >= ServerMessage::Message(m.clone()).encode().len(), "{text}");
        }
    }

    #[test]
    fn anonymous_pages_carry_no_client_ids() {
        assert!(anonymous(vec![message(1, "x")]).iter().all(|m| m.client_id.is_none()));
    }
}
