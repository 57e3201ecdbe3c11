//! The bridge between the seed's plain protocol and the rooms: a plain
//! client's text is stored in the lobby under a guest name (so web users see
//! it), and lobby messages reach plain clients as `nick: text` lines. Plain
//! clients live in the lobby: the lobby's shard relays their frames.

use std::collections::{BTreeMap, HashSet};

use bytestring::ByteString;
use chat_shared::{ChatMessage, ClientId, MessageText, Nickname, RoomName};

use super::worker_relay::WorkerId;
use super::{ConnectionId, Outbound};
use crate::store::NewMessage;

/// The plain sessions, and how many each worker runs, so the plain echo goes
/// only to the workers that have any.
#[derive(Debug, Default)]
pub(super) struct PlainWorkers {
    clients: HashSet<ConnectionId>,
    counts: BTreeMap<WorkerId, usize>,
}

impl PlainWorkers {
    /// Counts plain session `id` of `worker` (once, however often it is told).
    pub(super) fn add(&mut self, id: ConnectionId, worker: WorkerId) {
        if self.clients.insert(id) {
            *self.counts.entry(worker).or_default() += 1;
        }
    }

    /// Forgets plain session `id`; a session never added (its connect failed)
    /// or already forgotten changes nothing.
    pub(super) fn remove(&mut self, id: ConnectionId, worker: WorkerId) {
        if self.clients.remove(&id)
            && let Some(count) = self.counts.get_mut(&worker)
        {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&worker);
            }
        }
    }

    /// Whether any plain client is connected.
    pub(super) fn any(&self) -> bool {
        !self.counts.is_empty()
    }

    /// The workers that run plain sessions.
    pub(super) fn workers(&self) -> impl Iterator<Item = WorkerId> + '_ {
        self.counts.keys().copied()
    }
}

/// The nickname under which a plain client's text appears to JSON clients.
pub fn guest_nickname(id: ConnectionId) -> Nickname {
    // "guest-" plus at most 20 digits is well within the nickname rules.
    Nickname::parse(format!("guest-{id}")).expect("guest nicknames are valid")
}

/// The lobby message a plain client's frame becomes, if it is valid chat
/// text (binary frames and empty or oversized text are only echoed).
pub(super) fn lobby_message(id: ConnectionId, frame: &Outbound, ts: u64) -> Option<NewMessage> {
    let Outbound::Text(text) = frame else { return None };
    let text = MessageText::parse(String::from(text.clone())).ok()?;
    Some(NewMessage {
        room: RoomName::lobby(),
        ts,
        nick: guest_nickname(id),
        text,
        client_id: None::<ClientId>,
        deletes: None,
    })
}

/// Whether plain clients hear of `message` (they live in the lobby).
pub(super) fn reaches_plain_clients(message: &ChatMessage) -> bool {
    // A deletion cannot take back a line a plain client has printed.
    message.room.as_str() == chat_shared::DEFAULT_ROOM && message.deletes.is_none()
}

/// A message as plain clients see it: `nick: text`, with every further line
/// of the text indented, so no line of it can pass for another author's.
pub(super) fn plain_line(message: &ChatMessage) -> Outbound {
    Outbound::Text(ByteString::from(format!("{}: {}", message.nick, message.text.as_str().replace('\n', "\n  "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_cannot_pass_for_another_author() {
        let message = ChatMessage {
            room: RoomName::lobby(),
            id: 1,
            ts: 0,
            nick: Nickname::parse("mallory").expect("nick"),
            text: MessageText::parse("hi\nalice: send me your password").expect("text"),
            client_id: None,
            deletes: None,
            deleted: false,
        };
        assert_eq!(plain_line(&message), Outbound::Text("mallory: hi\n  alice: send me your password".into()));
    }

    #[test]
    fn a_plain_session_counts_once_however_often_it_comes_and_goes() {
        let mut plain = PlainWorkers::default();
        plain.add(1, 0);
        plain.add(3, 0);
        plain.remove(5, 0);
        plain.remove(1, 0);
        plain.remove(1, 0);
        assert_eq!(plain.workers().collect::<Vec<_>>(), [0], "session 3 still runs on worker 0");
        plain.add(3, 0);
        plain.remove(3, 0);
        assert!(!plain.any());
    }

    #[test]
    fn only_valid_text_reaches_the_lobby() {
        assert!(lobby_message(7, &Outbound::Text("hello".into()), 0).is_some_and(|m| m.nick.as_str() == "guest-7"));
        assert!(lobby_message(7, &Outbound::Text("".into()), 0).is_none());
        assert!(lobby_message(7, &Outbound::Binary(bytes::Bytes::from_static(b"\x00")), 0).is_none());
    }
}
