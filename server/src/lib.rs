//! The chat server: an actix-web app that upgrades browsers to WebSocket,
//! fans messages out through the [`hub`], keeps history in the [`store`], and
//! serves the web client.
//!
//! Data flows socket -> [`routes`] (upgrade) -> [`session`] (one task per
//! connection) -> [`hub`] (rooms, presence) -> [`store`], then the room event
//! on the [`bus`] -> each hub -> its workers' relays -> sessions -> sockets.

pub mod accounts;
pub mod admin_command;
pub mod admission;
pub mod app_state;
pub mod bus;
pub mod client_address;
pub mod config;
pub mod hub;
pub mod metrics;
pub mod policy;
pub mod presence;
pub mod routes;
pub mod session;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod tcp_options;
pub mod telemetry;
pub mod tokens;
