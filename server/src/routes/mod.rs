//! The HTTP surface: two socket endpoints, operations endpoints, and the
//! static web client.

mod health;
mod socket_upgrade;
mod static_files;

use std::path::PathBuf;

use actix_web::{guard, web};
use chat_shared::limits::JSON_SOCKET_PATH;

/// Registers every route. Order matters: the socket and operations endpoints
/// come before the static files, which take every other `GET`.
pub fn configure(static_dir: PathBuf) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.service(web::resource(JSON_SOCKET_PATH).to(socket_upgrade::json))
            .service(
                web::resource("/").guard(guard::fn_guard(socket_upgrade::asks_for_websocket)).to(socket_upgrade::plain),
            )
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .route("/metrics", web::get().to(health::metrics))
            .service(static_files::service(static_dir));
    }
}
