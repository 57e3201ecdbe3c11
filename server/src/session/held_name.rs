//! The nickname a JSON connection holds in its room: claimed from presence
//! before the hub lets the connection in; on the way out, departed before
//! the hub is told (so the room hears the name leave only with its user's
//! last connection) and released after (so whoever claims it next joins
//! after the room heard it leave). Each step is also written to the record
//! of names held that the fault run checks.

use std::time::Duration;

use chat_shared::{Nickname, RoomName};

use crate::bus::Peer;
use crate::presence::{Claim, Claimant, Claimed, Departure, Presence, PresenceError, tab_fingerprint};

/// The target of the record of names held (`claimed`, `released`, at
/// debug): what the fault run checks that no two users held one name at
/// once against.
const HOLD_RECORD: &str = "chat_server::presence::record";

/// How long a claim waits for its user's last connection to finish leaving
/// the name ([`Claim::Leaving`]: a hub turn and a presence call, normally
/// milliseconds; longer only if its node died half way, and then the
/// claim is answered `unavailable`), and how often it looks again.
const LEAVING_PATIENCE: Duration = Duration::from_secs(2);
const LEAVING_RECHECK: Duration = Duration::from_millis(20);

/// Claims `nick` in `room` for connection `peer` of `claimant`, waiting out
/// its user's last connection leaving the name; records a hold taken.
pub(super) async fn claim(
    presence: &dyn Presence,
    room: &RoomName,
    nick: &Nickname,
    claimant: &Claimant,
    peer: Peer,
) -> Result<Claimed, PresenceError> {
    let deadline = tokio::time::Instant::now() + LEAVING_PATIENCE;
    loop {
        let claimed = presence.claim(room, nick, claimant, peer).await?;
        if claimed.claim == Claim::Leaving && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(LEAVING_RECHECK).await;
            continue;
        }
        if matches!(claimed.claim, Claim::Free | Claim::Replaces(_) | Claim::Shared) {
            let tab = tab_fingerprint(&claimant.tab);
            let owner = claimant.owner.as_ref().map(crate::presence::Owner::fingerprint);
            tracing::debug!(
                target: HOLD_RECORD, %room, %nick, %tab, owner, connection = peer.connection, "claimed"
            );
        }
        return Ok(claimed);
    }
}

/// Connection `peer` is about to leave `room`, where it holds `nick`: what
/// the hub is to tell the room (a failure counts as the last holder: the
/// room hears it leave, as it did before names were shared).
pub(super) async fn depart(presence: &dyn Presence, room: &RoomName, nick: &Nickname, peer: Peer) -> Departure {
    match presence.depart(room, nick, peer).await {
        Ok(Departure::Shared) => {
            tracing::debug!(target: HOLD_RECORD, %room, %nick, connection = peer.connection, "released");
            Departure::Shared
        }
        Ok(Departure::Last) => Departure::Last,
        Err(error) => {
            tracing::warn!(%error, %room, %nick, "departing a nickname failed");
            Departure::Last
        }
    }
}

/// Gives `nick` in `room` back, logging a failure (an entry of a shared
/// presence would expire in the end).
pub(super) async fn release(presence: &dyn Presence, room: &RoomName, nick: &Nickname, peer: Peer) {
    // This connection speaks under the name no more from here on.
    tracing::debug!(target: HOLD_RECORD, %room, %nick, connection = peer.connection, "released");
    if let Err(error) = presence.release(room, nick, peer).await {
        tracing::warn!(%error, %room, %nick, "releasing a nickname failed");
    }
}
