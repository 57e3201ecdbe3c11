//! The command line of a fault run.

use std::path::PathBuf;

use clap::Parser;

/// A randomized fault run: several chat nodes on one PostgreSQL and one
/// Redis, simulated web clients, a nemesis injecting faults at random times,
/// then a checker reading every client's history against the store.
#[derive(Debug, Parser)]
#[command(name = "chat-faults")]
pub struct Args {
    /// How long clients chat while faults are injected, in seconds (healing
    /// and checking come after).
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Seed of every random choice (clients' timing, faults and their
    /// timing); a random one when not given. Printed either way.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Server nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Simulated clients.
    #[arg(long, default_value_t = 12)]
    pub clients: usize,
    /// Rooms the clients spread over.
    #[arg(long, default_value_t = 3)]
    pub rooms: usize,
    /// Every how many clients one connects through nginx balancing over the
    /// nodes (as a deployment would) rather than to a node it picks; 0: none.
    #[arg(long, default_value_t = 3)]
    pub nginx_every: usize,
    /// Two faults at a time: a second schedule runs beside the first, each
    /// fault healed on its own (a node partitioned while PostgreSQL
    /// restarts, say). Harsher, and twice the faults in the same time.
    #[arg(long)]
    pub overlap: bool,
    /// The release `chat-server` binary.
    #[arg(long, default_value = "target/release/chat-server")]
    pub server: PathBuf,
}
