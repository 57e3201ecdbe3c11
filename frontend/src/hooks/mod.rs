//! Custom hooks: the effects of the app, each with one job. Components stay
//! pure functions of the state; everything that talks to the socket, the
//! clock, the URL or the tab's title lives here.
//!
//! [`use_chat`] is the one the app calls: it owns the reducer and runs the
//! others (`use_connection` for the socket,
//! `use_clock`, `use_room_from_url`); `use_account` and `use_invite` are the
//! account's.

mod use_account;
mod use_chat;
mod use_clock;
mod use_connection;
mod use_invite;
mod use_room_from_url;
mod use_unread_title;

pub use use_account::{Account, AccountHandle, use_account};
pub use use_chat::{ChatHandle, use_chat};
pub use use_invite::use_invite;
pub use use_unread_title::use_unread_title;
