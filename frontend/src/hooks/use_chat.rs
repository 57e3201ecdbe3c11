//! The `use_chat` hook: the state reducer, the socket (through
//! `use_connection`), and what the user does turned
//! into protocol messages.
//!
//! On every (re)connect it joins the room on screen, resuming after the last
//! message id it holds, then resends whatever is still pending (the server
//! stores a resend once). While the link is down, sends are queued.

use chat_shared::limits::{HISTORY_PAGE, HISTORY_PAGE_MAX, TYPING_SEND_INTERVAL_MS};
use chat_shared::{ClientMessage, MessageText, Nickname};
use yew::prelude::*;

use super::use_clock::use_clock;
use super::use_connection::{Link, use_connection};
use super::use_room_from_url::use_room_from_url;
use crate::state::{ChatAction, ChatState, ConnectionStatus, Pending};
use crate::{browser, embedding};

/// What components get from [`use_chat`].
#[derive(Clone, PartialEq)]
pub struct ChatHandle {
    /// The current state, re-rendering on change.
    pub state: UseReducerHandle<ChatState>,
    /// Join under a nickname.
    pub choose_nick: Callback<Nickname>,
    /// Post a message to the room on screen.
    pub send: Callback<MessageText>,
    /// The user typed a key in the composer.
    pub typing: Callback<()>,
    /// The reader scrolled to the top: fetch an older page.
    pub load_older: Callback<()>,
    /// Back to the join form (signed out).
    pub forget_nick: Callback<()>,
    /// Drop the socket and open a new one (the session cookie changed: it
    /// counts at the upgrade). Nothing is sent on the old one meanwhile.
    pub reconnect: Callback<()>,
}

/// Connects to the chat server of the current page and keeps connected.
#[hook]
pub fn use_chat() -> ChatHandle {
    let state = use_reducer(|| ChatState::new(browser::current_room(), browser::saved_nick()));
    let link = use_mut_ref(|| Link {
        outbox: None,
        tab: browser::tab_secret(),
        id_prefix: browser::random_hex(8),
        sent: 0,
        typing_sent_at: 0,
        stopped: false,
        token: embedding::page_token(),
    });
    let connected = state.connection == ConnectionStatus::Connected;

    use_connection(state.dispatcher(), link.clone());
    use_clock(state.dispatcher());
    use_room_from_url(state.dispatcher());

    // (Re)join whenever the link comes up, the nickname is chosen or the room
    // changes, again for a fresh member list once a crowd has thinned, and
    // again after a join refused for now.
    {
        let link = link.clone();
        let snapshot = state.clone();
        let when = (connected, state.nick.clone(), state.room.clone(), state.member_refreshes, state.join_retries);
        use_effect_with(when, move |(connected, nick, room, _, _)| {
            if let (true, Some(nick)) = (*connected, nick.clone()) {
                let link = link.borrow();
                let after = snapshot.last_id();
                link.send(ClientMessage::Join {
                    room: room.clone(),
                    nick,
                    tab: link.tab.clone(),
                    after,
                    epoch: after.and(snapshot.epoch.clone()),
                });
            }
        });
    }
    // Once in, resend what is still unconfirmed, and remember the name for
    // next time; resend again after sends were refused for now.
    {
        let link = link.clone();
        let snapshot = state.clone();
        use_effect_with((state.joined, state.room.clone(), state.resends), move |(joined, _, _)| {
            if *joined {
                browser::save_nick(snapshot.nick.as_ref());
                let link = link.borrow();
                for pending in snapshot.pending_here() {
                    link.send(ClientMessage::Send {
                        room: pending.room.clone(),
                        client_id: pending.client_id.clone(),
                        text: pending.text.clone(),
                    });
                }
            }
        });
    }
    // Catch up: after a resume (in pages) or a gap before a live message.
    {
        let (link, snapshot, dispatcher) = (link.clone(), state.clone(), state.dispatcher());
        use_effect_with((state.wants_newer(), state.last_id()), move |(wants, last)| {
            if let (true, Some(after)) = (*wants, *last)
                && link.borrow().send(ClientMessage::HistoryAfter {
                    room: snapshot.room.clone(),
                    after,
                    limit: HISTORY_PAGE_MAX,
                })
            {
                dispatcher.dispatch(ChatAction::FetchingNewer);
            }
        });
    }
    use_effect_with(state.nick.is_none(), |no_nick| {
        if *no_nick {
            browser::save_nick(None);
        }
    });

    let choose_nick = {
        let dispatcher = state.dispatcher();
        Callback::from(move |nick| dispatcher.dispatch(ChatAction::ChooseNick(nick)))
    };
    let send = {
        let (dispatcher, link) = (state.dispatcher(), link.clone());
        let (room, joined) = (state.room.clone(), state.joined);
        Callback::from(move |text: MessageText| {
            let client_id = link.borrow_mut().next_client_id();
            // The message ends the indicator on the other side; the next keystroke starts a new one.
            link.borrow_mut().typing_sent_at = 0;
            let pending = Pending { client_id: client_id.clone(), room: room.clone(), text: text.clone() };
            dispatcher.dispatch(ChatAction::Queue(pending));
            if joined {
                link.borrow().send(ClientMessage::Send { room: room.clone(), client_id, text });
            }
        })
    };
    let typing = {
        let link = link.clone();
        let (room, joined) = (state.room.clone(), state.joined);
        Callback::from(move |()| {
            let now = browser::now_ms();
            let mut link = link.borrow_mut();
            if joined && now.saturating_sub(link.typing_sent_at) >= TYPING_SEND_INTERVAL_MS {
                link.typing_sent_at = now;
                link.send(ClientMessage::Typing { room: room.clone() });
            }
        })
    };
    let forget_nick = {
        let dispatcher = state.dispatcher();
        Callback::from(move |()| dispatcher.dispatch(ChatAction::ForgetNick))
    };
    let reconnect = {
        let link = link.clone();
        Callback::from(move |()| link.borrow_mut().outbox = None)
    };

    let load_older = {
        let (dispatcher, snapshot) = (state.dispatcher(), state.clone());
        Callback::from(move |()| {
            let busy = snapshot.loading_older || snapshot.fetching_newer;
            if let (true, false, Some(before)) = (snapshot.has_more, busy, snapshot.first_id())
                && link.borrow().send(ClientMessage::History {
                    room: snapshot.room.clone(),
                    before,
                    limit: HISTORY_PAGE,
                })
            {
                dispatcher.dispatch(ChatAction::LoadingOlder);
            }
        })
    };

    ChatHandle { state, choose_nick, send, typing, load_older, forget_nick, reconnect }
}
