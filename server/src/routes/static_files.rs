//! The built web client: files from the static folder, and `index.html` for
//! any other path that does not name a file, so client-side routes load the app.

use std::path::{Path, PathBuf};

use actix_files::{Files, NamedFile};
use actix_web::HttpResponse;
use actix_web::dev::{ServiceRequest, ServiceResponse, fn_service};

/// The service that serves `dir` at `/`.
pub fn service(dir: PathBuf) -> Files {
    if !dir.join("index.html").is_file() {
        tracing::warn!(dir = %dir.display(), "no index.html in the static folder; build the client with `trunk build --release`");
    }
    let index = dir.join("index.html");
    Files::new("/", &dir).index_file("index.html").default_handler(fn_service(move |req: ServiceRequest| {
        let index = index.clone();
        async move {
            let (req, _) = req.into_parts();
            let response = if looks_like_asset(req.path()) {
                HttpResponse::NotFound().finish()
            } else {
                match NamedFile::open_async(&index).await {
                    Ok(file) => file.into_response(&req),
                    Err(_) => HttpResponse::NotFound().body("the web client is not built"),
                }
            };
            Ok(ServiceResponse::new(req, response))
        }
    }))
}

/// A path whose last segment has an extension names a file; a missing file
/// should be a 404, not the app.
fn looks_like_asset(path: &str) -> bool {
    Path::new(path.rsplit('/').next().unwrap_or_default()).extension().is_some()
}

#[cfg(test)]
mod tests {
    use super::looks_like_asset;

    #[test]
    fn asset_paths_have_extensions() {
        assert!(looks_like_asset("/chat-frontend-abc.wasm"));
        assert!(looks_like_asset("/a/b/style.css"));
        assert!(!looks_like_asset("/"));
        assert!(!looks_like_asset("/r/lobby"));
    }
}
