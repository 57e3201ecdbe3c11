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

#[actix_web::test]
async fn only_the_bundle_is_served_with_protective_headers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let index = "<!doctype html><script type=\"module\">start();</script><title>chat</title>";
    fs::write(dir.path().join("index.html"), index).expect("write");
    fs::write(dir.path().join(".env"), "SECRET=hunter2").expect("write");
    fs::create_dir(dir.path().join(".git")).expect("mkdir");
    fs::write(dir.path().join(".git/config.txt"), "SECRET=hunter2").expect("write");
    let outside = tempfile::tempdir().expect("temp dir");
    fs::write(outside.path().join("secret.txt"), "SECRET=hunter2").expect("write");
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.path().join("linked.txt")).expect("symlink");
    // `--static-dir .` with the database inside it.
    let (static_dir, database) = (dir.path().to_path_buf(), dir.path().join("chat.sqlite3"));
    let app = support::TestApp::spawn_configured(|c| {
        c.static_dir = static_dir;
        c.database = database.into();
    })
    .await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", app.address);

    for path in ["/.env", "/.git/config.txt", "/linked.txt", "/chat.sqlite3", "/chat.sqlite3-wal"] {
        let response = client.get(url(path)).send().await.expect("response");
        let body = response.text().await.expect("body");
        assert!(!body.contains("SECRET") && !body.contains("SQLite format"), "{path} leaked: {body:.60}");
    }
    assert_eq!(client.get(url("/linked.txt")).send().await.expect("response").status(), 404);
    assert_eq!(client.get(url("/chat.sqlite3")).send().await.expect("response").status(), 404);

    let head = client.head(url("/")).header("Accept-Encoding", "identity").send().await.expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], index.len().to_string().as_str(), "HEAD tells the real length");

    let page = client.get(url("/")).send().await.expect("page");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let policy = page.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(policy.contains("'sha256-"), "trunk's inline loader is allowed by hash: {policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
}

#[actix_web::test]
async fn only_the_named_sites_may_frame_the_chat() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("index.html"), "<!doctype html><title>chat</title>").expect("write");
    fs::write(dir.path().join("chat-frontend-5625c06dd65ce1d2.js"), "start();").expect("write");
    let static_dir = dir.path().to_path_buf();
    let app = support::TestApp::spawn_configured(|c| {
        c.static_dir = static_dir;
        c.frame_ancestors = vec!["https://app.example.org".into(), "http://127.0.0.1:9000".into()];
    })
    .await;
    for path in ["/", "/chat-frontend-5625c06dd65ce1d2.js"] {
        let response = reqwest::get(format!("http://{}{path}", app.address)).await.expect("served");
        let policy = response.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
        assert!(policy.ends_with("frame-ancestors https://app.example.org http://127.0.0.1:9000"), "{path}: {policy}");
        // X-Frame-Options cannot name sites; CSP's frame-ancestors overrides it where both exist.
        assert!(response.headers().get("x-frame-options").is_none(), "{path}");
    }

    let closed = support::TestApp::spawn_serving(dir.path()).await;
    let response = reqwest::get(format!("http://{}/", closed.address)).await.expect("served");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert!(response.headers()["content-security-policy"].to_str().expect("ascii").ends_with("frame-ancestors 'none'"));
}
