//! The `use_chat` hook: owns the socket, feeds what arrives into the state
//! reducer, sends what the user does, and reconnects with backoff when the
//! link drops (rejoining under the same nickname).

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;

use chat_shared::{ClientMessage, MessageText, Nickname, ServerMessage};
use futures_channel::mpsc;
use futures_util::future::{Either, select};
use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, State};
use gloo_timers::future::TimeoutFuture;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::backoff::Backoff;
use crate::socket_url;
use crate::state::{ChatAction, ChatState};

/// What components get from [`use_chat`].
#[derive(Clone, PartialEq)]
pub struct ChatHandle {
    /// The current state, re-rendering on change.
    pub state: UseReducerHandle<ChatState>,
    /// Join the chat under a nickname.
    pub join: Callback<Nickname>,
    /// Post a message.
    pub send: Callback<MessageText>,
}

/// What the UI side and the connection task share.
#[derive(Default)]
struct Link {
    /// Frames to write to the open socket; `None` while disconnected.
    outbox: Option<mpsc::UnboundedSender<ClientMessage>>,
    /// The nickname to rejoin with after a reconnect.
    nick: Option<Nickname>,
    /// Set when the component unmounts, so the task stops reconnecting.
    stopped: bool,
}

impl Link {
    /// Queues a frame for the socket; dropped if the socket is not open, which
    /// the UI prevents by disabling input while disconnected.
    fn send(&self, message: ClientMessage) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.unbounded_send(message);
        }
    }
}

/// Connects to the chat server of the current page and keeps connected.
#[hook]
pub fn use_chat() -> ChatHandle {
    let state = use_reducer(ChatState::default);
    let link = use_mut_ref(Link::default);

    {
        let dispatcher = state.dispatcher();
        let link = link.clone();
        use_effect_with((), move |_| {
            if let Some(url) = socket_url::current() {
                spawn_local(keep_connected(url, dispatcher, link.clone()));
            }
            move || {
                let mut link = link.borrow_mut();
                link.stopped = true;
                // Dropping the sender ends the task's current exchange.
                link.outbox = None;
            }
        });
    }

    let join = {
        let dispatcher = state.dispatcher();
        let link = link.clone();
        Callback::from(move |nick: Nickname| {
            dispatcher.dispatch(ChatAction::Joining(nick.clone()));
            let mut link = link.borrow_mut();
            link.nick = Some(nick.clone());
            link.send(ClientMessage::Hello { nick });
        })
    };
    let send = Callback::from(move |text: MessageText| link.borrow().send(ClientMessage::Send { text }));

    ChatHandle { state, join, send }
}

/// Connects, exchanges frames until the socket drops, waits, and tries again.
async fn keep_connected(url: String, dispatcher: UseReducerDispatcher<ChatState>, link: Rc<RefCell<Link>>) {
    let mut backoff = Backoff::default();
    while !link.borrow().stopped {
        if let Some(socket) = open(&url).await {
            backoff.reset();
            dispatcher.dispatch(ChatAction::Connected);
            exchange(socket, &dispatcher, &link).await;
        }
        if link.borrow().stopped {
            break;
        }
        dispatcher.dispatch(ChatAction::Disconnected);
        TimeoutFuture::new(backoff.next_delay_ms(js_sys::Math::random())).await;
    }
}

/// Opens a socket and waits until it is open; `None` if it fails.
async fn open(url: &str) -> Option<WebSocket> {
    let mut socket = WebSocket::open(url).ok()?;
    // The sink becomes ready once the socket leaves the CONNECTING state.
    poll_fn(|cx| socket.poll_ready_unpin(cx)).await.ok()?;
    matches!(socket.state(), State::Open).then_some(socket)
}

/// Relays frames both ways until the socket closes or the UI goes away.
async fn exchange(socket: WebSocket, dispatcher: &UseReducerDispatcher<ChatState>, link: &Rc<RefCell<Link>>) {
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut outgoing) = mpsc::unbounded();
    {
        let mut link = link.borrow_mut();
        if let Some(nick) = link.nick.clone() {
            dispatcher.dispatch(ChatAction::Joining(nick.clone()));
            let _ = outbox.unbounded_send(ClientMessage::Hello { nick });
        }
        link.outbox = Some(outbox);
    }

    loop {
        match select(stream.next(), outgoing.next()).await {
            Either::Left((Some(Ok(Message::Text(text))), _)) => match ServerMessage::decode(&text) {
                Ok(message) => dispatcher.dispatch(ChatAction::Received(message)),
                Err(error) => web_sys::console::warn_1(&format!("ignoring an unreadable frame: {error}").into()),
            },
            Either::Left((Some(Ok(Message::Bytes(_))), _)) => {}
            Either::Left((Some(Err(_)) | None, _)) => break,
            Either::Right((Some(message), _)) => {
                if sink.send(Message::Text(message.encode())).await.is_err() {
                    break;
                }
            }
            Either::Right((None, _)) => {
                let _ = sink.close().await;
                break;
            }
        }
    }
    link.borrow_mut().outbox = None;
}
