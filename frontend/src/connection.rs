//! The `use_chat` hook: owns the socket, feeds what arrives into the state
//! reducer, and turns what the user does into protocol messages.
//!
//! On every (re)connect it joins the room on screen, resuming after the last
//! message id it holds, then resends whatever is still pending (the server
//! stores a resend once). While the link is down, sends are queued.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;

use chat_shared::limits::{HISTORY_PAGE, HISTORY_PAGE_MAX, TYPING_SEND_INTERVAL_MS};
use chat_shared::{ClientId, ClientMessage, MessageText, Nickname, ServerMessage};
use futures_channel::mpsc;
use futures_util::future::{Either, select};
use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, State};
use gloo_timers::callback::Interval;
use gloo_timers::future::TimeoutFuture;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::backoff::Backoff;
use crate::browser;
use crate::socket_url;
use crate::state::{ChatAction, ChatState, ConnectionStatus, Pending};

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
}

/// What the UI side and the connection task share.
struct Link {
    /// Frames to write to the open socket; `None` while disconnected.
    outbox: Option<mpsc::UnboundedSender<ClientMessage>>,
    /// This browser tab's secret (takes over its own nickname on reconnect).
    tab: ClientId,
    /// Random per page load, the start of this page's message ids; unrelated
    /// to the secret.
    id_prefix: String,
    /// Numbers this tab's messages.
    sent: u64,
    /// When `typing` was last sent (ms).
    typing_sent_at: u64,
    /// Set when the component unmounts, so the task stops reconnecting.
    stopped: bool,
}

impl Link {
    /// Writes a frame if the socket is open; returns whether it could.
    fn send(&self, message: ClientMessage) -> bool {
        self.outbox.as_ref().is_some_and(|outbox| outbox.unbounded_send(message).is_ok())
    }

    fn next_client_id(&mut self) -> ClientId {
        self.sent += 1;
        ClientId::parse(format!("{}-{}", self.id_prefix, self.sent)).expect("hex and digits make a valid client id")
    }
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
    });
    let connected = state.connection == ConnectionStatus::Connected;

    use_connection(state.dispatcher(), link.clone());
    use_clock(state.dispatcher());
    use_room_from_url(state.dispatcher());

    // (Re)join whenever the link comes up, the nickname is chosen or the room changes.
    {
        let link = link.clone();
        let snapshot = state.clone();
        use_effect_with((connected, state.nick.clone(), state.room.clone()), move |(connected, nick, room)| {
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
    // Once in, resend what is still unconfirmed, and remember the name for next time.
    {
        let link = link.clone();
        let snapshot = state.clone();
        use_effect_with((state.joined, state.room.clone()), move |(joined, _)| {
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

    ChatHandle { state, choose_nick, send, typing, load_older }
}

/// Runs the connection task for the component's lifetime.
#[hook]
fn use_connection(dispatcher: UseReducerDispatcher<ChatState>, link: Rc<RefCell<Link>>) {
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

/// Ticks once a second so typing indicators expire on time.
#[hook]
fn use_clock(dispatcher: UseReducerDispatcher<ChatState>) {
    use_effect_with((), move |_| {
        let interval = Interval::new(1_000, move || dispatcher.dispatch(ChatAction::Tick(browser::now_ms())));
        move || drop(interval)
    });
}

/// Follows the URL hash (`#/r/<room>`), so links and back/forward switch rooms.
#[hook]
fn use_room_from_url(dispatcher: UseReducerDispatcher<ChatState>) {
    use_effect_with((), move |_| {
        let listener = web_sys::window().map(|window| {
            gloo_events::EventListener::new(&window, "hashchange", move |_| {
                dispatcher.dispatch(ChatAction::EnterRoom(browser::current_room()));
            })
        });
        move || drop(listener)
    });
}

/// Connects, exchanges frames until the socket drops, waits, and tries again.
async fn keep_connected(url: String, dispatcher: UseReducerDispatcher<ChatState>, link: Rc<RefCell<Link>>) {
    let mut backoff = Backoff::default();
    while !link.borrow().stopped {
        if let Some(socket) = open(&url).await {
            backoff.reset();
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
    link.borrow_mut().outbox = Some(outbox);
    // Announced after the outbox exists, so the join effect can use it.
    dispatcher.dispatch(ChatAction::Connected);
    // A User Timing mark: navigation-to-connected shows in devtools and is what the benchmark reads.
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark("chat-connected");
    }

    loop {
        match select(stream.next(), outgoing.next()).await {
            Either::Left((Some(Ok(Message::Text(text))), _)) => match ServerMessage::decode(&text) {
                Ok(message) => dispatcher.dispatch(ChatAction::Received(message, browser::now_ms())),
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
