//! Room changes across nodes: the node that changes a room (a member
//! removed, an invite accepted, a room created, a ban, a kick) publishes it
//! on Redis; every node drops what it cached of that room and has the room's
//! sessions check again. While the subscription is down a node trusts no
//! cached standing, and once it is back every session checks again: a
//! change published meanwhile was missed.

use std::sync::{Arc, Weak};
use std::time::Duration;

use chat_shared::{Epoch, RoomName};
use futures_util::StreamExt;

use super::RoomPolicy;

/// A change of a room, as nodes tell each other.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoomChange {
    /// The room.
    pub room: RoomName,
    /// The name a moderator kicked out of it, if that is the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kicked: Option<String>,
    /// The ban made, if that is the change (carried, so a node that cannot
    /// read the database at that moment still keeps the banned out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banned: Option<super::known::KnownBan>,
    /// With `kicked`, a guest's (or token user's) name: the kicked session
    /// also bans its own address, which only its node knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_ban: Option<super::kicks::AddressBan>,
    /// Whose standing changed: one party's (an account added, removed,
    /// promoted, banned; `Anyone`: only what the room is, as slow mode), so
    /// only their sessions check again; none: anyone's (the room made private).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concerns: Option<super::rules::Party>,
}

impl RoomChange {
    /// A change of `room` for `concerns` (see the field), and nothing more.
    pub fn of(room: &RoomName, concerns: Option<super::rules::Party>) -> Self {
        Self { room: room.clone(), kicked: None, banned: None, address_ban: None, concerns }
    }
}

/// Publishes room changes to every node.
#[derive(Clone)]
pub struct ChangeRelay {
    client: redis::Client,
    channel: String,
}

impl ChangeRelay {
    /// The relay of history `epoch`; starts hearing changes into `policy`.
    pub fn start(client: redis::Client, epoch: &Epoch, policy: &Arc<RoomPolicy>) -> Self {
        let channel = format!("chat:{}:room-changed", epoch.as_str());
        tokio::spawn(hear(client.clone(), channel.clone(), Arc::downgrade(policy)));
        Self { client, channel }
    }

    /// Tells every node that a room changed. The first try is awaited, so
    /// the request that made the change answers once the other nodes were
    /// told (the caller's next join, on any node, sees it); if Redis is away,
    /// it is tried again for a while in the background (a node that misses
    /// it still drops its cached standing within a minute, and its sessions
    /// check again when its own subscription comes back).
    pub async fn publish(&self, change: RoomChange) {
        let Ok(payload) = serde_json::to_string(&change) else { return };
        if self.try_publish(&change.room, &payload, 0).await {
            return;
        }
        let relay = self.clone();
        tokio::spawn(async move {
            for attempt in 1..5u32 {
                tokio::time::sleep(Duration::from_millis(500) * attempt).await;
                if relay.try_publish(&change.room, &payload, attempt).await {
                    return;
                }
            }
        });
    }

    async fn try_publish(&self, room: &RoomName, payload: &str, attempt: u32) -> bool {
        let published = async {
            let mut connection = self.client.get_multiplexed_async_connection().await?;
            redis::cmd("PUBLISH").arg(&self.channel).arg(payload).query_async::<()>(&mut connection).await
        };
        match tokio::time::timeout(Duration::from_secs(2), published).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::warn!(%error, %room, attempt, "cannot tell other nodes of a room change");
                false
            }
            Err(_) => {
                tracing::warn!(%room, attempt, "telling other nodes of a room change timed out");
                false
            }
        }
    }
}

/// How often the subscription is pinged, so a Redis that stopped answering
/// (a partition: nothing closes the connection) is noticed, as the bus does.
const PING_EVERY: Duration = Duration::from_secs(5);

/// How long a ping may go unanswered before the subscription counts as lost.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Hears changes until the policy is gone.
async fn hear(client: redis::Client, channel: String, policy: Weak<RoomPolicy>) {
    loop {
        // Bounded: in a partition a connection attempt may hang.
        match tokio::time::timeout(PING_TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(mut pubsub)) => {
                let subscribed = tokio::time::timeout(PING_TIMEOUT, pubsub.subscribe(&channel)).await;
                if matches!(subscribed, Ok(Ok(()))) {
                    let Some(strong) = policy.upgrade() else { return };
                    strong.regained().await;
                    drop(strong);
                    let (mut sink, mut stream) = pubsub.split();
                    let mut pings = tokio::time::interval(PING_EVERY);
                    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            message = stream.next() => {
                                let Some(message) = message else { break };
                                let Some(policy) = policy.upgrade() else { return };
                                let payload = message.get_payload::<String>().unwrap_or_default();
                                match serde_json::from_str::<RoomChange>(&payload) {
                                    Ok(change) => policy.heard(&change).await,
                                    Err(error) => tracing::warn!(%error, "an unreadable room change"),
                                }
                            }
                            _ = pings.tick() => {
                                // Any reply will do (subscribed, Redis answers ["pong", ""]).
                                let ping = tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await;
                                if !matches!(ping, Ok(Ok(_))) {
                                    break;
                                }
                            }
                        }
                    }
                    let Some(policy) = policy.upgrade() else { return };
                    tracing::warn!(
                        "lost the room-change subscription; reading rooms from the database until it is back"
                    );
                    policy.lost();
                }
            }
            Ok(Err(error)) => tracing::debug!(%error, "cannot hear room changes from redis; retrying"),
            Err(_) => tracing::debug!("connecting to redis for room changes timed out; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
