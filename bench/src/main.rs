//! `chat-load`: opens many WebSocket clients to a chat server, makes some of
//! them publish, and reports throughput, latency percentiles, loss, and the
//! server's CPU and memory (from `/proc/<pid>` when given `--server-pid`).
//!
//! Speaks the chat's JSON protocol (`/ws`) and the plain echo-all protocol
//! (`/`, which any broadcast server like the seed's Node one speaks too).
//!
//! `--storm` runs the reconnect storm instead (see [`chat_bench::storm`]).

use std::process::ExitCode;

use chat_bench::{args, clients, storm};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = args::Args::parse();
    if let Some(path) = &args.sessions {
        match std::fs::read_to_string(path) {
            Ok(tokens) => chat_bench::dial::use_sessions(tokens.lines().map(str::to_owned).collect()),
            Err(error) => {
                eprintln!("chat-load: cannot read {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let run = if args.storm { storm::run(&args).await } else { clients::run(&args).await };
    match run {
        Ok(report) => {
            println!("{}", report.human());
            if let Some(path) = &args.json_out {
                let json = serde_json::to_string_pretty(&report).unwrap_or_default();
                if let Err(error) = std::fs::write(path, json) {
                    eprintln!("chat-load: cannot write {}: {error}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            if args.fail_on_loss && (report.lost > 0 || report.connect_errors > 0 || report.disconnects > 0) {
                eprintln!("chat-load: loss, connect errors or disconnects");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("chat-load: {error}");
            ExitCode::FAILURE
        }
    }
}
