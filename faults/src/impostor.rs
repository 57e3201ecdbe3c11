//! An impostor: now and then, from a tab of its own, tries to join a room
//! under a name one of the clients uses, through a random node, and leaves
//! at once if it got in. It succeeds only while the name is free (its owner
//! between connections); the servers' records then show whether it ever held
//! a name at the same time as its owner (see `records`).

use std::net::SocketAddr;
use std::time::Duration;

use chat_shared::{ClientId, ClientMessage, Nickname, RoomName, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::client::Phase;

/// How long one attempt may take (a paused node never answers).
const PATIENCE: Duration = Duration::from_secs(3);

/// What the impostor did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Impostures {
    /// Joins tried under someone else's name.
    pub attempts: u32,
    /// Joins that got in (the name was free then).
    pub successes: u32,
}

/// Tries names of `victims` through `nodes` until the run goes quiet.
pub async fn run(
    victims: Vec<(RoomName, Nickname)>,
    nodes: Vec<SocketAddr>,
    seed: u64,
    mut phase: watch::Receiver<Phase>,
) -> Impostures {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut done = Impostures::default();
    if victims.is_empty() || nodes.is_empty() {
        return done;
    }
    while *phase.borrow() == Phase::Chatting {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(rng.random_range(50..250))) => {}
            _ = phase.changed() => continue,
        }
        let (room, nick) = victims[rng.random_range(0..victims.len())].clone();
        let node = nodes[rng.random_range(0..nodes.len())];
        let tab = ClientId::parse(format!("impostor{}", rng.random::<u64>())).expect("tab");
        done.attempts += 1;
        if tokio::time::timeout(PATIENCE, attempt(node, room, nick, tab)).await.unwrap_or(false) {
            done.successes += 1;
        }
    }
    done
}

/// One try: true if the server let it in.
async fn attempt(node: SocketAddr, room: RoomName, nick: Nickname, tab: ClientId) -> bool {
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(format!("ws://{node}/ws")).await else { return false };
    let join = ClientMessage::Join { room, nick, tab, after: None, epoch: None };
    if socket.send(Message::text(join.encode())).await.is_err() {
        return false;
    }
    let joined = loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => match ServerMessage::decode(&text) {
                Ok(ServerMessage::Joined { .. }) => break true,
                Ok(ServerMessage::Error { .. }) => break false,
                _ => {}
            },
            Some(Ok(_)) => {}
            _ => break false,
        }
    };
    let _ = socket.close(None).await;
    joined
}
