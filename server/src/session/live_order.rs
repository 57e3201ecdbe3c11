//! The order a JSON client gets its room's messages in: each id once, in
//! id order, history pages and live messages together.
//!
//! After a join the session reads a page of history while the room's live
//! messages keep coming; a page read while the node was still relaying
//! messages it covers (a publish that was lost, read back from the store
//! later) overlaps the live ones. So from the relay's [`Outbound::Entered`]
//! marker until the first page that reaches the newest stored message, live
//! messages wait behind the page; then only those newer than what the
//! client holds are written, and from then on any id already written is
//! skipped. The marker stays unwritten (so counted as queued) while they
//! wait, which keeps the relay's shortcut past the queue shut.

use std::collections::VecDeque;

use bytestring::ByteString;
use chat_shared::RoomName;

use crate::hub::{Outbound, OutboundReceiver};

/// Live messages waiting behind a history page.
#[derive(Debug, Default)]
struct CatchUp {
    held: VecDeque<(u64, ByteString)>,
}

/// Puts a session's queued frames in the order they are written.
#[derive(Debug, Default)]
pub(crate) struct LiveOrder {
    /// The room the frames are of, from its marker on.
    room: Option<RoomName>,
    catching_up: Option<CatchUp>,
    /// Frames to write now, each with the queued bytes it releases once written.
    ready: VecDeque<(Outbound, usize)>,
}

impl LiveOrder {
    /// Takes a frame just taken from `outbound`. What is to be written
    /// comes out of [`LiveOrder::next_ready`]; what is skipped is released
    /// from the queue here.
    pub(crate) fn arrived(&mut self, frame: Outbound, outbound: &OutboundReceiver) {
        match frame {
            Outbound::Entered(room) => {
                self.end_catch_up(outbound, false);
                self.room = Some(room);
                self.catching_up = Some(CatchUp::default());
                outbound.set_through(0);
            }
            Outbound::Live { id, text } => {
                let bytes = text.len();
                if let Some(catch_up) = &mut self.catching_up {
                    catch_up.held.push_back((id, text));
                } else if id <= outbound.through() {
                    outbound.written(bytes);
                } else {
                    outbound.set_through(id);
                    self.ready.push_back((Outbound::Text(text), bytes));
                }
            }
            Outbound::Page { room, through, complete, text } => {
                let bytes = text.len();
                self.ready.push_back((Outbound::Text(text), bytes));
                // A page of a room left since goes out as it is (the client ignores it).
                if self.room.as_ref() != Some(&room) {
                    return;
                }
                if let Some(through) = through {
                    outbound.set_through(outbound.through().max(through));
                }
                if complete || through.is_none() {
                    self.end_catch_up(outbound, true);
                } else if let Some(catch_up) = &mut self.catching_up {
                    // The client asks for the next page; what it covers need not wait.
                    let through = outbound.through();
                    catch_up.held.retain(|(id, text)| {
                        let keep = *id > through;
                        if !keep {
                            outbound.written(text.len());
                        }
                        keep
                    });
                }
            }
            other => {
                let bytes = other.queued_bytes();
                self.ready.push_back((other, bytes));
            }
        }
    }

    /// Ends a catch-up, if one is under way: writes what waited (if
    /// `write`) beyond what the client holds, and releases the marker.
    fn end_catch_up(&mut self, outbound: &OutboundReceiver, write: bool) {
        let Some(catch_up) = self.catching_up.take() else { return };
        for (id, text) in catch_up.held {
            if write && id > outbound.through() {
                outbound.set_through(id);
                let bytes = text.len();
                self.ready.push_back((Outbound::Text(text), bytes));
            } else {
                outbound.written(text.len());
            }
        }
        // The marker, held as queued until now.
        outbound.written(0);
    }

    /// The next frame to write, and the queued bytes it releases once written.
    pub(crate) fn next_ready(&mut self) -> Option<(Outbound, usize)> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::outbound_queue;

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).expect("room")
    }

    fn live(id: u64) -> Outbound {
        Outbound::Live { id, text: ByteString::from(format!("m{id}")) }
    }

    fn page(name: &str, through: u64, complete: bool) -> Outbound {
        Outbound::Page {
            room: room(name),
            through: Some(through),
            complete,
            text: ByteString::from(format!("p{through}")),
        }
    }

    /// A session's queue and its live order, as the driver runs them.
    struct Session {
        order: LiveOrder,
        sender: crate::hub::OutboundSender,
        receiver: OutboundReceiver,
    }

    impl Session {
        fn new() -> Self {
            let (sender, receiver) = outbound_queue(1 << 20);
            Self { order: LiveOrder::default(), sender, receiver }
        }

        /// Queues `frames`, takes them and writes what is ready; returns what
        /// was written and whether the queue is idle after.
        async fn written(&mut self, frames: Vec<Outbound>) -> (Vec<String>, bool) {
            let count = frames.len();
            for frame in frames {
                self.sender.try_send(frame).expect("queued");
            }
            let mut out = Vec::new();
            for _ in 0..count {
                let frame = self.receiver.recv().await.expect("frame");
                self.order.arrived(frame, &self.receiver);
                while let Some((frame, bytes)) = self.order.next_ready() {
                    match frame {
                        Outbound::Text(text) => out.push(text.to_string()),
                        other => panic!("only text is written: {other:?}"),
                    }
                    self.receiver.written(bytes);
                }
            }
            (out, self.sender.is_idle())
        }
    }

    #[tokio::test]
    async fn live_messages_wait_behind_the_first_page_and_what_it_covers_is_not_written_again() {
        let mut session = Session::new();
        let (out, idle) = session.written(vec![Outbound::Entered(room("dev")), live(102), live(103)]).await;
        assert!(out.is_empty() && !idle, "held, and the shortcut stays shut: {out:?}");
        let (out, idle) = session.written(vec![page("dev", 102, true), live(102), live(104)]).await;
        assert_eq!(out, ["p102", "m103", "m104"]);
        assert!(idle);
    }

    #[tokio::test]
    async fn a_partial_page_keeps_live_messages_waiting_until_the_client_caught_up() {
        let mut session = Session::new();
        let frames = vec![Outbound::Entered(room("dev")), live(300), page("dev", 150, false), live(301)];
        let (out, idle) = session.written(frames).await;
        assert_eq!(out, ["p150"]);
        assert!(!idle);
        let (out, idle) = session.written(vec![page("dev", 300, true), live(302)]).await;
        assert_eq!(out, ["p300", "m301", "m302"]);
        assert!(idle);
    }

    #[tokio::test]
    async fn a_failed_read_lets_live_messages_through_and_other_frames_never_wait() {
        let mut session = Session::new();
        let error = Outbound::Page { room: room("dev"), through: None, complete: true, text: "error".into() };
        let ack = Outbound::Text("ack".into());
        let (out, idle) = session.written(vec![Outbound::Entered(room("dev")), live(5), ack, error]).await;
        assert_eq!(out, ["ack", "error", "m5"]);
        assert!(idle);
    }

    #[tokio::test]
    async fn another_room_starts_afresh_and_a_late_page_of_the_old_one_changes_nothing() {
        let mut session = Session::new();
        let frames = vec![Outbound::Entered(room("dev")), page("dev", 5000, true), live(5001)];
        assert_eq!(session.written(frames).await.0, ["p5000", "m5001"]);
        let frames = vec![Outbound::Entered(room("ops")), live(7), page("dev", 5002, true), page("ops", 6, true)];
        let (out, idle) = session.written(frames).await;
        assert_eq!(out, ["p5002", "p6", "m7"], "ops's ids are its own");
        assert!(idle);
    }
}
