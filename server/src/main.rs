//! `chat-server`: parses settings, starts logging, serves until stopped.

use clap::Parser;

use chat_server::config::Config;
use chat_server::startup::Application;
use chat_server::telemetry;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let config = Config::parse();
    telemetry::init();
    let static_dir = config.static_dir.clone();
    let app = Application::build(config)?;
    tracing::info!(address = %app.address(), static_dir = %static_dir.display(), "listening");
    app.run_until_stopped().await
}
