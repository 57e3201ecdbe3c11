//! Moderation through the documented deployment (a real nginx in front, the
//! server told to trust it): an administrator's API calls pass the proxy
//! (cookie and Origin), a deletion reaches the room, and a guest banned by
//! name is banned by the address nginx forwarded for it: the guest next to
//! it (another address behind the same nginx) chats on, and the banned one
//! is refused when it comes back, while the ban lists its own address,
//! never the proxy's.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use chat_e2e::from_address::{Socket, http_from, websocket_from};
use chat_e2e::{Artefacts, Nginx, free_port};
use chat_shared::{ClientId, ClientMessage, ErrorCode, MessageText, Nickname, RoomName, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// Sends one protocol frame.
async fn send(socket: &mut Socket, message: ClientMessage) {
    socket.send(Message::text(message.encode())).await.expect("sent");
}

/// The first frame `socket` gets that `wanted` picks something from.
async fn next_that<T>(socket: &mut Socket, mut wanted: impl FnMut(ServerMessage) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next()).await.expect("a frame in time");
        if let Some(Ok(Message::Text(text))) = frame
            && let Some(found) = ServerMessage::decode(&text).ok().and_then(&mut wanted)
        {
            return found;
        }
    }
}

/// A guest from `source` joining #dev as `nick` through `nginx`: the
/// socket, once joined, or the error code it was refused with.
async fn guest(source: Ipv4Addr, nginx: SocketAddr, origin: &str, nick: &str) -> Result<Socket, ErrorCode> {
    let mut socket = websocket_from(source, nginx, origin, None).await.expect("upgraded");
    let join = ClientMessage::Join {
        room: RoomName::parse("dev").expect("room"),
        nick: Nickname::parse(nick).expect("nick"),
        tab: ClientId::parse(format!("tab-{nick}")).expect("tab"),
        after: None,
        epoch: None,
    };
    send(&mut socket, join).await;
    let answer = next_that(&mut socket, |message| match message {
        ServerMessage::Joined { .. } => Some(Ok(())),
        ServerMessage::Error { code, .. } => Some(Err(code)),
        _ => None,
    })
    .await;
    answer.map(|()| socket)
}

/// Says `text` in #dev; its stored id.
async fn say(socket: &mut Socket, text: &str) -> u64 {
    let client_id = ClientId::parse(format!("said-{}", text.len())).expect("id");
    let message = ClientMessage::Send {
        room: RoomName::parse("dev").expect("room"),
        client_id: client_id.clone(),
        text: MessageText::parse(text).expect("text"),
    };
    send(socket, message).await;
    next_that(socket, |message| match message {
        ServerMessage::Ack { client_id: acked, id, .. } if acked == client_id => Some(id),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_through_nginx_bans_the_guests_own_address_not_the_proxys() {
    let public = free_port();
    let origin = format!("http://{public}");
    let flags = ["--trusted-proxy", "127.0.0.1/32", "--public-origin", &origin, "--admin", "root"];
    let (server, _data) = Artefacts::locate().start_server(&flags).await;
    let nginx = Nginx::start(public, server.address).await;
    let at = |last: u8| Ipv4Addr::new(127, 0, 5, last);
    let api = |method: &'static str, path: String, cookie: Option<String>, body: Option<String>| {
        let origin = origin.clone();
        async move { http_from(at(1), nginx.address, method, &path, &origin, cookie.as_deref(), body.as_deref()).await }
    };

    let registered = api(
        "POST",
        "/api/register".to_owned(),
        None,
        Some(r#"{"username":"root","password":"correct horse"}"#.to_owned()),
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let root = registered.cookie.expect("a session cookie through nginx");

    let mut bob = guest(at(2), nginx.address, &origin, "bob").await.expect("bob joins");
    let mut mallory = guest(at(3), nginx.address, &origin, "mallory").await.expect("mallory joins");

    // A deletion through nginx reaches the room.
    let spam = say(&mut mallory, "buy cheap watches").await;
    let deleted = api("DELETE", format!("/api/rooms/dev/messages/{spam}"), Some(root.clone()), None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let deletes = next_that(&mut bob, |message| match message {
        ServerMessage::Message(message) => message.deletes,
        _ => None,
    })
    .await;
    assert_eq!(deletes, spam);

    // Mallory, banned by name, is banned by her own address.
    let ban = Some(r#"{"user":"mallory"}"#.to_owned());
    let banned = api("POST", "/api/rooms/dev/bans".to_owned(), Some(root.clone()), ban).await;
    assert_eq!(banned.status, 202, "{}", banned.body);
    let told = next_that(&mut mallory, |message| match message {
        ServerMessage::Error { code, .. } => Some(code),
        _ => None,
    })
    .await;
    assert_eq!(told, ErrorCode::Banned);
    // Bob, behind the same nginx, chats on; so does a newcomer from another address.
    say(&mut bob, "still here").await;
    assert!(guest(at(4), nginx.address, &origin, "carol").await.is_ok());
    // Mallory's address is refused, under any name.
    assert_eq!(guest(at(3), nginx.address, &origin, "not-mallory").await.err(), Some(ErrorCode::Banned));
    // The ban names her address, not the proxy's.
    let bans = api("GET", "/api/rooms/dev/bans".to_owned(), Some(root), None).await;
    assert_eq!(bans.status, 200, "{}", bans.body);
    assert!(bans.body.contains("127.0.5.3") && !bans.body.contains("127.0.0.1"), "{}", bans.body);

    server.kill().await;
}
