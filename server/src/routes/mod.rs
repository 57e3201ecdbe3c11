//! The HTTP surface: two socket endpoints, operations endpoints, and the
//! static web client.

pub mod api_accounts;
pub mod api_messages;
pub mod api_moderation;
pub mod api_reports;
pub mod api_rooms;
mod health;
mod socket_upgrade;
pub mod static_files;

use actix_web::{guard, web};
use chat_shared::Endpoint;

/// Registers every route. The socket and operations endpoints come first;
/// every other `GET`/`HEAD` is the web client.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(Endpoint::Json.path()).to(socket_upgrade::json))
        .service(
            web::resource(Endpoint::Plain.path())
                .guard(guard::fn_guard(socket_upgrade::asks_for_websocket))
                .to(socket_upgrade::plain),
        )
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .configure(api_accounts::configure)
        .configure(api_rooms::configure)
        .configure(api_moderation::configure)
        .configure(api_reports::configure)
        .configure(api_messages::configure)
        .default_service(web::route().guard(guard::Any(guard::Get()).or(guard::Head())).to(static_files::serve));
}
