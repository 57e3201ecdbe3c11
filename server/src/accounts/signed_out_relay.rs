//! Signing out everywhere, across nodes: the node that ends an account's
//! sessions publishes its id on Redis; every node closes that account's
//! sockets when it hears it. A node that misses the message (Redis away at
//! that moment) still closes them at its next sweep (see [`super::sweep`]).

use std::sync::Arc;
use std::time::Duration;

use chat_shared::Epoch;
use futures_util::StreamExt;

use super::revocations::Revocations;
use super::store::UserId;

/// Publishes and hears accounts signed out everywhere.
#[derive(Clone)]
pub struct SignedOutRelay {
    client: redis::Client,
    channel: String,
}

impl SignedOutRelay {
    /// The relay of the history `epoch`; starts hearing into `revocations`.
    pub fn start(client: redis::Client, epoch: &Epoch, revocations: Arc<Revocations>) -> Self {
        let relay = Self { client, channel: format!("chat:{}:signed-out", epoch.as_str()) };
        tokio::spawn(relay.clone().hear(revocations));
        relay
    }

    /// Tells every node that `user` signed out everywhere (best effort: the sweep backs it up).
    pub async fn publish(&self, user: UserId) {
        let published = async {
            let mut connection = self.client.get_multiplexed_async_connection().await?;
            redis::cmd("PUBLISH").arg(&self.channel).arg(user).query_async::<()>(&mut connection).await
        };
        match tokio::time::timeout(Duration::from_secs(2), published).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, user, "cannot tell other nodes of a sign-out; they sweep"),
            Err(_) => tracing::warn!(user, "telling other nodes of a sign-out timed out; they sweep"),
        }
    }

    async fn hear(self, revocations: Arc<Revocations>) {
        loop {
            match self.client.get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if pubsub.subscribe(&self.channel).await.is_ok() {
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            if let Ok(user) = message.get_payload::<UserId>() {
                                revocations.revoke(user);
                            }
                        }
                    }
                }
                Err(error) => tracing::debug!(%error, "cannot hear sign-outs from redis; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
