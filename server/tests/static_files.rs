//! The web client is served by the same process as the sockets: compressed
//! once, negotiated per request, cached according to its name.

mod support;

use std::fs;
use std::io::Read;

#[actix_web::test]
async fn serves_the_bundle_compressed_cached_and_falls_back_to_index_for_app_paths() {
    let dir = tempfile::tempdir().expect("temp dir");
    let index = "<!doctype html><title>chat</title>";
    let script = format!("console.log({});", "1 + ".repeat(500) + "1");
    fs::write(dir.path().join("index.html"), index).expect("write");
    fs::write(dir.path().join("chat-frontend-5625c06dd65ce1d2.js"), &script).expect("write");
    let app = support::TestApp::spawn_serving(dir.path()).await;
    let client = reqwest::Client::new();
    let get = |path: &str, encoding: &str| {
        client.get(format!("http://{}{path}", app.address)).header("Accept-Encoding", encoding).send()
    };

    let page = get("/", "identity").await.expect("index");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-cache");
    assert!(page.headers()["content-type"].to_str().expect("type").starts_with("text/html"));
    assert_eq!(page.text().await.expect("body"), index);

    let brotli = get("/chat-frontend-5625c06dd65ce1d2.js", "gzip, deflate, br").await.expect("script");
    assert_eq!(brotli.headers()["content-encoding"], "br");
    assert_eq!(brotli.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(brotli.headers()["vary"], "Accept-Encoding");
    let compressed = brotli.bytes().await.expect("body");
    assert!(compressed.len() < script.len());
    let mut decoded = String::new();
    brotli::Decompressor::new(&compressed[..], 4096).read_to_string(&mut decoded).expect("valid brotli");
    assert_eq!(decoded, script);

    let gzip = get("/chat-frontend-5625c06dd65ce1d2.js", "gzip").await.expect("script");
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    let compressed = gzip.bytes().await.expect("body");
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(&compressed[..]).read_to_string(&mut decoded).expect("valid gzip");
    assert_eq!(decoded, script);

    let plain = get("/chat-frontend-5625c06dd65ce1d2.js", "").await.expect("script");
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.text().await.expect("body"), script);

    let route = get("/r/lobby", "identity").await.expect("app route");
    assert_eq!(route.status(), 200);
    assert_eq!(route.text().await.expect("body"), index);
    assert_eq!(get("/missing-456.wasm", "identity").await.expect("missing").status(), 404);
}
