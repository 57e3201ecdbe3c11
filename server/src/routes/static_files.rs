//! The built web client, served from memory: every file is read and
//! compressed (gzip and brotli) once at startup, then served with the encoding
//! the browser prefers. Hashed assets (trunk names them `name-<hash>.ext`) are
//! cached forever; `index.html` is revalidated on every load. Any other path
//! that does not name a file gets `index.html`, so client-side routes load the app.
//!
//! Only regular files are served: no dotfiles or dot-folders, no symlinks
//! (which could point anywhere), and never the history database, even if the
//! static folder holds it. Every response says `nosniff` and may not be framed;
//! `index.html` also gets a Content-Security-Policy that allows its own
//! inline scripts (by hash), its origin, and nothing else.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// One file, in every encoding worth having.
struct Asset {
    content_type: &'static str,
    identity: Bytes,
    gzip: Option<Bytes>,
    brotli: Option<Bytes>,
    immutable: bool,
    /// The Content-Security-Policy of an HTML page.
    policy: Option<HeaderValue>,
}

/// The whole bundle, by URL path (`/index.html`, `/app-1234abcd.wasm`, ...).
pub struct StaticBundle {
    assets: HashMap<String, Asset>,
    /// The CSP `frame-ancestors` sources: `'none'`, or the sites allowed
    /// to frame the chat (`--frame-ancestor`).
    frame_ancestors: String,
}

/// Encodings a response can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

impl StaticBundle {
    /// Reads and compresses every file under `dir`, except dotfiles,
    /// symlinks and `private` files (the database and its journals). A
    /// missing folder gives an empty bundle (the sockets still work) and a
    /// warning. Only the `frame_ancestors` origins may frame its pages.
    pub fn load(dir: &Path, private: &[PathBuf], frame_ancestors: &[String]) -> Arc<Self> {
        let frame_ancestors = if frame_ancestors.is_empty() { "'none'".to_owned() } else { frame_ancestors.join(" ") };
        let mut bundle = Self { assets: HashMap::new(), frame_ancestors };
        let mut files = Vec::new();
        collect(dir, &mut files);
        let private: Vec<PathBuf> = private.iter().filter_map(|p| p.canonicalize().ok()).collect();
        for path in files {
            if path.canonicalize().is_ok_and(|real| private.contains(&real)) {
                continue;
            }
            let Ok(relative) = path.strip_prefix(dir) else { continue };
            let Ok(contents) = std::fs::read(&path) else { continue };
            let url = format!("/{}", relative.to_string_lossy().replace('\\', "/"));
            let asset = Asset::new(&url, contents, &bundle.frame_ancestors);
            bundle.assets.insert(url, asset);
        }
        if !bundle.assets.contains_key("/index.html") {
            tracing::warn!(dir = %dir.display(), "no index.html in the static folder; build the client with `trunk build --release`");
        }
        Arc::new(bundle)
    }

    /// The response to `GET path`.
    fn respond(&self, req: &HttpRequest) -> HttpResponse {
        let path = match req.path() {
            "/" => "/index.html",
            other => other,
        };
        let asset = match self.assets.get(path) {
            Some(asset) => asset,
            None if looks_like_asset(path) => return HttpResponse::NotFound().finish(),
            None => match self.assets.get("/index.html") {
                Some(index) => index,
                None => return HttpResponse::NotFound().body("the web client is not built"),
            },
        };
        let accepted = req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
        let (encoding, body) = match (preferred(accepted), &asset.brotli, &asset.gzip) {
            (Encoding::Brotli, Some(br), _) => (Encoding::Brotli, br.clone()),
            (Encoding::Brotli | Encoding::Gzip, _, Some(gz)) if accepts(accepted, "gzip") => {
                (Encoding::Gzip, gz.clone())
            }
            _ => (Encoding::Identity, asset.identity.clone()),
        };
        let mut response = HttpResponse::Ok();
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)));
        response.insert_header((header::VARY, HeaderValue::from_static("Accept-Encoding")));
        let cache = if asset.immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static(cache)));
        match encoding {
            Encoding::Brotli => {
                response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("br")));
            }
            Encoding::Gzip => {
                response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
            }
            Encoding::Identity => {}
        }
        response.insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")));
        if self.frame_ancestors == "'none'" {
            // For browsers older than CSP's frame-ancestors (it cannot name several sites).
            response.insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")));
        }
        let policy = match &asset.policy {
            Some(policy) => policy.clone(),
            None => HeaderValue::from_str(&format!("frame-ancestors {}", self.frame_ancestors))
                .unwrap_or(HeaderValue::from_static("frame-ancestors 'none'")),
        };
        response.insert_header((header::CONTENT_SECURITY_POLICY, policy));
        // For HEAD, actix sends the headers of this body (its length included) and no body.
        response.body(body)
    }
}

impl Asset {
    fn new(url: &str, contents: Vec<u8>, frame_ancestors: &str) -> Self {
        let content_type = content_type(url);
        let compressible = !matches!(content_type, "image/png" | "image/jpeg" | "image/webp" | "font/woff2");
        let (gzip, brotli) = if compressible && contents.len() > 256 {
            (smaller(gzip(&contents), contents.len()), smaller(brotli(&contents), contents.len()))
        } else {
            (None, None)
        };
        let policy = (url == "/index.html")
            .then(|| String::from_utf8_lossy(&contents).into_owned())
            .and_then(|html| HeaderValue::from_str(&content_security_policy(&html, frame_ancestors)).ok());
        Self { content_type, identity: Bytes::from(contents), gzip, brotli, immutable: is_hashed(url), policy }
    }
}

/// The policy of the app's page: scripts from our origin and the page's own
/// inline scripts (trunk's loader) by SHA-256; WebAssembly compiled from
/// them; sockets and fetches to our origin; inline style attributes (the
/// nickname colours); no plugins, no foreign forms or base URL; framing by
/// `frame_ancestors` only.
fn content_security_policy(html: &str, frame_ancestors: &str) -> String {
    let hashes: String = inline_scripts(html)
        .map(|script| {
            let digest = Sha256::digest(script.as_bytes());
            format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{hashes}; style-src 'self'; \
         style-src-attr 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors {frame_ancestors}"
    )
}

/// The contents of the `<script>` elements of `html` that have no `src`.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|rest| {
        let (attributes, body) = rest.split_once('>')?;
        let (script, _) = body.split_once("</script>")?;
        (!attributes.contains("src=")).then_some(script)
    })
}

/// Keeps a compressed copy only if it saves something.
fn smaller(compressed: Option<Vec<u8>>, original: usize) -> Option<Bytes> {
    compressed.filter(|c| c.len() < original).map(Bytes::from)
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).ok()?;
    encoder.finish().ok()
}

fn brotli(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 9, lgwin: 22, ..Default::default() };
    brotli::BrotliCompress(&mut &data[..], &mut out, &params).ok()?;
    Some(out)
}

/// The regular files under `dir`, skipping dotfiles, dot-folders and symlinks.
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // `file_type` does not follow symlinks.
        let Ok(kind) = entry.file_type() else { continue };
        if hidden || kind.is_symlink() {
            continue;
        }
        if kind.is_dir() {
            collect(&entry.path(), files);
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
}

/// Whether the client accepts `coding` (a token of `Accept-Encoding` without `q=0`).
fn accepts(header: &str, coding: &str) -> bool {
    header.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or("");
        let refused = parts.any(|p| p.replace(' ', "") == "q=0" || p.replace(' ', "") == "q=0.0");
        name.eq_ignore_ascii_case(coding) && !refused
    })
}

fn preferred(header: &str) -> Encoding {
    if accepts(header, "br") {
        Encoding::Brotli
    } else if accepts(header, "gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

fn content_type(url: &str) -> &'static str {
    match Path::new(url).extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// trunk's hashed names end in `-` plus 16 hex digits before the extension
/// (`chat-frontend-5625c06dd65ce1d2_bg.wasm` counts too): their content never changes.
fn is_hashed(url: &str) -> bool {
    let name = url.rsplit('/').next().unwrap_or("");
    let stem = name.split('.').next().unwrap_or("");
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| hash.len() >= 16 && hash.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A path whose last segment has an extension names a file; a missing file
/// should be a 404, not the app.
fn looks_like_asset(path: &str) -> bool {
    Path::new(path.rsplit('/').next().unwrap_or_default()).extension().is_some()
}

/// `GET` and `HEAD` of anything not routed elsewhere.
pub async fn serve(req: HttpRequest, bundle: web::Data<StaticBundle>) -> HttpResponse {
    bundle.respond(&req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_paths_have_extensions() {
        assert!(looks_like_asset("/chat-frontend-abc.wasm"));
        assert!(looks_like_asset("/a/b/style.css"));
        assert!(!looks_like_asset("/"));
        assert!(!looks_like_asset("/r/lobby"));
    }

    #[test]
    fn hashed_names_are_recognised() {
        assert!(is_hashed("/chat-frontend-5625c06dd65ce1d2_bg.wasm"));
        assert!(is_hashed("/chat-frontend-5625c06dd65ce1d2.js"));
        assert!(is_hashed("/style-c600ea9677a9c325.css"));
        assert!(!is_hashed("/index.html"));
        assert!(!is_hashed("/plain_client.html"));
    }

    #[test]
    fn inline_scripts_are_allowed_by_hash_only() {
        let html = "<script type=\"module\">init();</script><script src=\"/a.js\"></script>";
        let scripts: Vec<&str> = inline_scripts(html).collect();
        assert_eq!(scripts, ["init();"]);
        let policy = content_security_policy(html, "'none'");
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"init();"));
        assert!(policy.contains(&format!("'sha256-{digest}'")), "{policy}");
        let scripts_policy = policy.split(';').find(|d| d.trim().starts_with("script-src")).expect("script-src");
        assert!(!scripts_policy.contains("unsafe-inline"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn encodings_are_negotiated() {
        assert_eq!(preferred("gzip, deflate, br, zstd"), Encoding::Brotli);
        assert_eq!(preferred("gzip"), Encoding::Gzip);
        assert_eq!(preferred("br;q=0, gzip;q=0.8"), Encoding::Gzip);
        assert_eq!(preferred(""), Encoding::Identity);
        assert_eq!(preferred("identity"), Encoding::Identity);
    }
}
