//! Operations endpoints: liveness, readiness, metrics.

use actix_web::{HttpResponse, web};

use crate::app_state::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// `GET /readyz`: every dependency answers (the history store), one line
/// each; 503 if one does not. The error itself goes to the log only (it may
/// name hosts and users).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let kind = state.store.kind();
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body(format!("ready\nstore ({kind}): ok\n")),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body(format!("not ready\nstore ({kind}): unavailable\n"))
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}
