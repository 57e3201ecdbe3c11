//! The socket, for the component's lifetime: connects, relays frames both
//! ways, and reconnects with backoff when the link drops (spread out when the
//! server closed it for everyone, see [`crate::backoff`]).

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;

use chat_shared::limits::{CLOSE_TOKEN_EXPIRED, CLOSE_TOKEN_REFUSED};
use chat_shared::{ClientId, ClientMessage, ServerMessage};
use futures_channel::mpsc;
use futures_util::future::{Either, select};
use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, State, WebSocketError};
use gloo_timers::future::TimeoutFuture;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::backoff::{Backoff, closed_by_server_for_everyone};
use crate::socket_url;
use crate::state::{ChatAction, ChatState};
use crate::{browser, embedding};

/// What the UI side and the connection task share.
pub(super) struct Link {
    /// Frames to write to the open socket; `None` while disconnected.
    pub(super) outbox: Option<mpsc::UnboundedSender<ClientMessage>>,
    /// This browser tab's secret (takes over its own nickname on reconnect).
    pub(super) tab: ClientId,
    /// Random per page load, the start of this page's message ids; unrelated
    /// to the secret.
    pub(super) id_prefix: String,
    /// Numbers this tab's messages.
    pub(super) sent: u64,
    /// When `typing` was last sent (ms).
    pub(super) typing_sent_at: u64,
    /// Set when the component unmounts, so the task stops reconnecting.
    pub(super) stopped: bool,
    /// The connection token the embedding page gave (none: not embedded),
    /// replaced by each newer one it posts.
    pub(super) token: Option<String>,
}

impl Link {
    /// Writes a frame if the socket is open; returns whether it could.
    pub(super) fn send(&self, message: ClientMessage) -> bool {
        self.outbox.as_ref().is_some_and(|outbox| outbox.unbounded_send(message).is_ok())
    }

    pub(super) fn next_client_id(&mut self) -> ClientId {
        self.sent += 1;
        ClientId::parse(format!("{}-{}", self.id_prefix, self.sent)).expect("hex and digits make a valid client id")
    }
}

/// Runs the connection task for the component's lifetime.
#[hook]
pub(super) fn use_connection(dispatcher: UseReducerDispatcher<ChatState>, link: Rc<RefCell<Link>>) {
    use_effect_with((), move |_| {
        if let Some(url) = socket_url::current() {
            spawn_local(keep_connected(url, dispatcher, link.clone()));
        }
        // A newer token from the embedding page: in use at once, and on every reconnect.
        let tokens = embedding::listen_for_tokens({
            let link = link.clone();
            move |token| {
                link.borrow().send(ClientMessage::Refresh { token: token.clone() });
                link.borrow_mut().token = Some(token);
            }
        });
        move || {
            drop(tokens);
            let mut link = link.borrow_mut();
            link.stopped = true;
            // Dropping the sender ends the task's current exchange.
            link.outbox = None;
        }
    });
}

/// Connects, exchanges frames until the socket drops, waits, and tries again.
async fn keep_connected(url: String, dispatcher: UseReducerDispatcher<ChatState>, link: Rc<RefCell<Link>>) {
    let mut backoff = Backoff::default();
    while !link.borrow().stopped {
        let mut ended = None;
        let url = embedding::with_token(&url, link.borrow().token.as_deref());
        if let Some(socket) = open(&url).await {
            backoff.reset();
            ended = Some(exchange(socket, &dispatcher, &link).await);
        }
        if link.borrow().stopped {
            break;
        }
        dispatcher.dispatch(ChatAction::Disconnected);
        if let Some(Ended { close_code: Some(CLOSE_TOKEN_EXPIRED | CLOSE_TOKEN_REFUSED), .. }) = ended {
            embedding::ask_for_token();
        }
        let random = js_sys::Math::random();
        let delay = match ended {
            Some(Ended { close_code: Some(code), online }) if closed_by_server_for_everyone(code) => {
                backoff.after_server_close_ms(online, random)
            }
            _ => backoff.next_delay_ms(random),
        };
        TimeoutFuture::new(delay).await;
    }
}

/// How an exchange ended.
struct Ended {
    /// The server's close code, if it closed the link with one.
    close_code: Option<u16>,
    /// How many people the last room list counted (those of the listed rooms).
    online: u32,
}

/// Opens a socket and waits until it is open; `None` if it fails.
async fn open(url: &str) -> Option<WebSocket> {
    let mut socket = WebSocket::open(url).ok()?;
    // The sink becomes ready once the socket leaves the CONNECTING state.
    poll_fn(|cx| socket.poll_ready_unpin(cx)).await.ok()?;
    matches!(socket.state(), State::Open).then_some(socket)
}

/// Relays frames both ways until the socket closes or the UI goes away.
async fn exchange(socket: WebSocket, dispatcher: &UseReducerDispatcher<ChatState>, link: &Rc<RefCell<Link>>) -> Ended {
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut outgoing) = mpsc::unbounded();
    link.borrow_mut().outbox = Some(outbox);
    // Announced after the outbox exists, so the join effect can use it.
    dispatcher.dispatch(ChatAction::Connected);
    // A User Timing mark: navigation-to-connected shows in devtools and is what the benchmark reads.
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark("chat-connected");
    }

    let mut ended = Ended { close_code: None, online: 0 };
    loop {
        match select(stream.next(), outgoing.next()).await {
            Either::Left((Some(Ok(Message::Text(text))), _)) => match ServerMessage::decode_light(&text) {
                Ok(message) => {
                    if let ServerMessage::Rooms { rooms } | ServerMessage::Joined { rooms, .. } = &message
                        && !rooms.is_empty()
                    {
                        ended.online = rooms.iter().fold(0, |sum, room| sum.saturating_add(room.online));
                    }
                    if let ServerMessage::TokenExpiring { .. } = &message {
                        embedding::ask_for_token();
                    }
                    dispatcher.dispatch(ChatAction::Received(message, browser::now_ms()));
                }
                Err(error) => web_sys::console::warn_1(&format!("ignoring an unreadable frame: {error}").into()),
            },
            Either::Left((Some(Ok(Message::Bytes(_))), _)) => {}
            Either::Left((Some(Err(WebSocketError::ConnectionClose(event))), _)) => {
                ended.close_code = Some(event.code);
                break;
            }
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
    ended
}
