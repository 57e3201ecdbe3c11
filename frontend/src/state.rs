//! The client's state and the reducer that applies socket and user events to it.

use std::rc::Rc;

use chat_shared::{ChatMessage, ErrorCode, Nickname, ServerMessage};
use yew::Reducible;

/// Most messages kept on screen; older ones are dropped to bound memory.
pub const MAX_MESSAGES: usize = 1_000;

/// The state of the link to the server, as the user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionStatus {
    /// First attempt under way.
    #[default]
    Connecting,
    /// The socket is open.
    Connected,
    /// The socket dropped; retrying.
    Reconnecting,
}

impl ConnectionStatus {
    /// What the status bar says.
    pub fn label(self) -> &'static str {
        match self {
            Self::Connecting => "Connecting…",
            Self::Connected => "Connected",
            Self::Reconnecting => "Reconnecting…",
        }
    }

    /// A stable name for styling and tests.
    pub fn key(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
        }
    }
}

/// Everything the UI renders.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatState {
    /// The link to the server.
    pub connection: ConnectionStatus,
    /// The nickname the server welcomed us with.
    pub joined_as: Option<Nickname>,
    /// A `hello` is on its way and not yet answered.
    pub joining: bool,
    /// The messages received, oldest first, at most [`MAX_MESSAGES`].
    pub messages: Rc<Vec<ChatMessage>>,
    /// The last error the server reported, for the user to read.
    pub error: Option<String>,
}

/// What can happen to the state.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatAction {
    /// The socket opened.
    Connected,
    /// The socket closed; a reconnect is scheduled.
    Disconnected,
    /// We asked to join under this nickname.
    Joining(Nickname),
    /// The server sent this.
    Received(ServerMessage),
}

impl Reducible for ChatState {
    type Action = ChatAction;

    fn reduce(self: Rc<Self>, action: ChatAction) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            ChatAction::Connected => next.connection = ConnectionStatus::Connected,
            ChatAction::Disconnected => {
                next.connection = ConnectionStatus::Reconnecting;
                next.joining = false;
            }
            ChatAction::Joining(_) => {
                next.joining = true;
                next.error = None;
            }
            ChatAction::Received(ServerMessage::Welcome { nick }) => {
                next.joined_as = Some(nick);
                next.joining = false;
                next.error = None;
            }
            ChatAction::Received(ServerMessage::Message(message)) => {
                let messages = Rc::make_mut(&mut next.messages);
                messages.push(message);
                if messages.len() > MAX_MESSAGES {
                    messages.drain(..messages.len() - MAX_MESSAGES);
                }
            }
            ChatAction::Received(ServerMessage::Error { code, message }) => {
                if code != ErrorCode::AlreadyJoined {
                    next.joining = false;
                }
                next.error = Some(message);
            }
        }
        Rc::new(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_shared::MessageText;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn nick(s: &str) -> Nickname {
        Nickname::parse(s).expect("nick")
    }

    fn message(id: u64, text: &str) -> ServerMessage {
        ServerMessage::Message(ChatMessage {
            id,
            ts: 1_700_000_000_000,
            nick: nick("alice"),
            text: MessageText::parse(text).expect("text"),
        })
    }

    fn apply(state: Rc<ChatState>, actions: impl IntoIterator<Item = ChatAction>) -> Rc<ChatState> {
        actions.into_iter().fold(state, Reducible::reduce)
    }

    #[test]
    fn starts_connecting_and_not_joined() {
        let state = ChatState::default();
        assert_eq!(state.connection, ConnectionStatus::Connecting);
        assert_eq!(state.joined_as, None);
        assert!(state.messages.is_empty());
    }

    #[test]
    fn join_flow_goes_through_joining_to_welcomed() {
        let state = apply(Rc::default(), [ChatAction::Connected, ChatAction::Joining(nick("bob"))]);
        assert!(state.joining);
        assert_eq!(state.joined_as, None);
        let state = state.reduce(ChatAction::Received(ServerMessage::Welcome { nick: nick("bob") }));
        assert!(!state.joining);
        assert_eq!(state.joined_as, Some(nick("bob")));
        assert_eq!(state.connection, ConnectionStatus::Connected);
    }

    #[test]
    fn messages_append_in_arrival_order() {
        let state =
            apply(Rc::default(), [ChatAction::Received(message(1, "a")), ChatAction::Received(message(2, "b"))]);
        let texts: Vec<&str> = state.messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["a", "b"]);
    }

    #[test]
    fn the_log_is_bounded() {
        let state =
            apply(Rc::default(), (1..=MAX_MESSAGES as u64 + 5).map(|id| ChatAction::Received(message(id, "x"))));
        assert_eq!(state.messages.len(), MAX_MESSAGES);
        assert_eq!(state.messages[0].id, 6);
    }

    #[test]
    fn a_drop_shows_reconnecting_and_keeps_the_log_and_nickname() {
        let state = apply(
            Rc::default(),
            [
                ChatAction::Connected,
                ChatAction::Received(ServerMessage::Welcome { nick: nick("bob") }),
                ChatAction::Received(message(1, "kept")),
                ChatAction::Disconnected,
            ],
        );
        assert_eq!(state.connection, ConnectionStatus::Reconnecting);
        assert_eq!(state.connection.label(), "Reconnecting…");
        assert_eq!(state.joined_as, Some(nick("bob")));
        assert_eq!(state.messages.len(), 1);
    }

    #[test]
    fn a_refused_hello_ends_joining_and_shows_the_reason() {
        let state = apply(
            Rc::default(),
            [
                ChatAction::Joining(nick("bob")),
                ChatAction::Received(ServerMessage::error(ErrorCode::InvalidMessage, "a nickname cannot be empty")),
            ],
        );
        assert!(!state.joining);
        assert_eq!(state.error.as_deref(), Some("a nickname cannot be empty"));
    }
}
