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
}

/// Publishes room changes to every node.
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

    /// Tells every node that `room` changed (tried for a while: a node that
    /// misses it still drops its cached standing within a minute, and its
    /// sessions check again when its own subscription comes back).
    pub async fn publish(&self, change: &RoomChange) {
        let room = &change.room;
        let Ok(payload) = serde_json::to_string(change) else { return };
        for attempt in 0..5u32 {
            let published = async {
                let mut connection = self.client.get_multiplexed_async_connection().await?;
                redis::cmd("PUBLISH").arg(&self.channel).arg(&payload).query_async::<()>(&mut connection).await
            };
            match tokio::time::timeout(Duration::from_secs(2), published).await {
                Ok(Ok(())) => return,
                Ok(Err(error)) => tracing::warn!(%error, %room, attempt, "cannot tell other nodes of a room change"),
                Err(_) => tracing::warn!(%room, attempt, "telling other nodes of a room change timed out"),
            }
            tokio::time::sleep(Duration::from_millis(500) * (attempt + 1)).await;
        }
    }
}

/// Hears changes until the policy is gone.
async fn hear(client: redis::Client, channel: String, policy: Weak<RoomPolicy>) {
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if pubsub.subscribe(&channel).await.is_ok() {
                    let Some(strong) = policy.upgrade() else { return };
                    strong.regained().await;
                    drop(strong);
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let Some(policy) = policy.upgrade() else { return };
                        let payload = message.get_payload::<String>().unwrap_or_default();
                        match serde_json::from_str::<RoomChange>(&payload) {
                            Ok(change) => policy.heard(&change).await,
                            Err(error) => tracing::warn!(%error, "an unreadable room change"),
                        }
                    }
                    let Some(policy) = policy.upgrade() else { return };
                    tracing::warn!(
                        "lost the room-change subscription; reading rooms from the database until it is back"
                    );
                    policy.lost();
                }
            }
            Err(error) => tracing::debug!(%error, "cannot hear room changes from redis; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
