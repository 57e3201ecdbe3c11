//! The room bus of a single process: what is published is heard by the same
//! hub, in order, if it still has members in the room. A room is ready as
//! soon as it is subscribed: nothing can be stored in it unheard.

use std::collections::{HashSet, VecDeque};

use async_trait::async_trait;
use chat_shared::RoomName;

use super::{BusEvent, NodeId, Published, RoomBus};

/// The bus of a single node: a queue the hub drains after each turn.
#[derive(Debug, Default)]
pub struct InProcessBus {
    subscribed: HashSet<RoomName>,
    received: VecDeque<BusEvent>,
}

#[async_trait]
impl RoomBus for InProcessBus {
    fn node(&self) -> NodeId {
        0
    }

    fn publish(&mut self, published: Published) {
        // Like a shared bus: an event of a room nobody here listens to is not heard.
        if self.subscribed.contains(&published.room) {
            self.received.push_back(BusEvent::Room(published));
        }
    }

    fn subscribe(&mut self, room: &RoomName) {
        if !self.subscribed.contains(room) {
            self.subscribed.insert(room.clone());
            self.received.push_back(BusEvent::Ready(room.clone()));
        }
    }

    fn unsubscribe(&mut self, room: &RoomName) {
        self.subscribed.remove(room);
    }

    fn try_next(&mut self) -> Option<BusEvent> {
        self.received.pop_front()
    }

    async fn next(&mut self) -> BusEvent {
        match self.received.pop_front() {
            Some(published) => published,
            // Only this node publishes, and its hub drains what it published
            // with `try_next` in the same turn: nothing else will arrive.
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Peer, RoomEvent};
    use chat_shared::Nickname;

    fn typing(room: &RoomName, nick: &str) -> Published {
        let nick = Nickname::parse(nick).expect("nick");
        Published { room: room.clone(), event: RoomEvent::Typing { nick, member: Peer { node: 0, connection: 1 } } }
    }

    #[test]
    fn subscribed_rooms_are_heard_in_order_and_others_not() {
        let mut bus = InProcessBus::default();
        let (dev, ops) = (RoomName::parse("dev").expect("room"), RoomName::parse("ops").expect("room"));
        bus.publish(typing(&dev, "early"));
        bus.subscribe(&dev);
        bus.subscribe(&dev);
        bus.publish(typing(&dev, "a"));
        bus.publish(typing(&ops, "nobody-listens"));
        bus.publish(typing(&dev, "b"));
        assert_eq!(bus.try_next(), Some(BusEvent::Ready(dev.clone())), "once");
        assert_eq!(bus.try_next(), Some(BusEvent::Room(typing(&dev, "a"))));
        assert_eq!(bus.try_next(), Some(BusEvent::Room(typing(&dev, "b"))));
        assert_eq!(bus.try_next(), None);
        bus.unsubscribe(&dev);
        bus.publish(typing(&dev, "after"));
        assert_eq!(bus.try_next(), None);
    }
}
