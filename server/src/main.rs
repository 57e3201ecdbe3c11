//! `chat-server`: reads settings, starts logging, serves until stopped.
//! `chat-server token ...` mints a connection token instead;
//! `chat-server admin grant NAME` makes an account a server administrator.

use std::process::ExitCode;

use chat_server::config::{Config, ConfigError};
use chat_server::startup::{Application, write_address_file};
use chat_server::telemetry;
use chat_server::tokens::mint::MintCommand;

#[actix_web::main]
async fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|first| first == "token") {
        return mint_token();
    }
    if std::env::args_os().nth(1).is_some_and(|first| first == "admin") {
        return administer().await;
    }
    let config = match Config::load_from(std::env::args_os()) {
        Ok(config) => config,
        // clap prints help, versions and its own errors.
        Err(ConfigError::Arguments(error)) => error.exit(),
        Err(error) => {
            eprintln!("chat-server: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    let (static_dir, database, port_file) =
        (config.static_dir.clone(), config.database.clone(), config.port_file.clone());
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        address = %app.address(),
        static_dir = %static_dir.display(),
        database = %database,
        "listening"
    );
    if let Some(path) = port_file
        && let Err(error) = write_address_file(&path, app.address())
    {
        tracing::error!(%error, path = %path.display(), "cannot write the port file");
        return ExitCode::FAILURE;
    }
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// `chat-server token`: prints a connection token minted with the server's secret.
fn mint_token() -> ExitCode {
    use clap::Parser;
    let command = MintCommand::parse_from(std::env::args_os().skip(1));
    match command.mint() {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("chat-server token: {error}");
            ExitCode::from(2)
        }
    }
}

/// `chat-server admin`: administers accounts in the server's database.
async fn administer() -> ExitCode {
    use clap::Parser;
    let command = chat_server::admin_command::AdminCommand::parse_from(std::env::args_os().skip(1));
    match command.run().await {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("chat-server admin: {error}");
            ExitCode::FAILURE
        }
    }
}
