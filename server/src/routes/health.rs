//! Operations endpoints: liveness, readiness, metrics.

use actix_web::{HttpResponse, web};

use crate::app_state::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// `GET /readyz`: every dependency answers (the history store, and the
/// Redis bus if there is one), one line each; 503 if one does not. The error
/// itself goes to the log only (it may name hosts and users).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let kind = state.store.kind();
    let store = match state.store.ping().await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            false
        }
    };
    let shown = |ok: bool| if ok { "ok" } else { "unavailable" };
    let mut lines = format!("store ({kind}): {}\n", shown(store));
    let mut ready = store;
    if let Some(bus) = &state.bus_health {
        let connected = bus.connected();
        lines.push_str(&format!("bus (redis): {}\n", shown(connected)));
        ready &= connected;
    }
    if ready {
        HttpResponse::Ok().content_type("text/plain").body(format!("ready\n{lines}"))
    } else {
        HttpResponse::ServiceUnavailable().content_type("text/plain").body(format!("not ready\n{lines}"))
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}
