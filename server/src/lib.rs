//! The chat server: an actix-web app that upgrades browsers to WebSocket,
//! fans messages out through the [`hub`], and serves the web client.
//!
//! Data flows socket -> [`routes`] (upgrade) -> [`session`] (one task per
//! connection) -> [`hub`] (fan-out) -> sessions -> sockets.

pub mod config;
pub mod hub;
pub mod routes;
pub mod session;
pub mod startup;
pub mod telemetry;
