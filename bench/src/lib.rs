//! Load generation and benchmark reporting for the chat server: the
//! `chat-load` tool ([`clients`]) and the `chat-chart` report writer ([`summary`]).

pub mod args;
pub mod clients;
pub mod dial;
pub mod login_flood;
pub mod procstat;
pub mod report;
pub mod stamp;
pub mod storm;
pub mod summary;
