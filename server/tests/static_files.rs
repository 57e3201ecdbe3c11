//! The web client is served by the same process as the sockets.

mod support;

use std::fs;

async fn get(url: String) -> (u16, String) {
    let response = reqwest::get(url).await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[actix_web::test]
async fn serves_the_bundle_and_falls_back_to_index_for_app_paths() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("index.html"), "<!doctype html><title>chat</title>").expect("write");
    fs::write(dir.path().join("app-123.js"), "console.log(1)").expect("write");
    let app = support::TestApp::spawn_serving(dir.path()).await;
    let address = app.address;

    assert_eq!(get(format!("http://{address}/")).await, (200, "<!doctype html><title>chat</title>".to_owned()));
    assert_eq!(get(format!("http://{address}/app-123.js")).await, (200, "console.log(1)".to_owned()));
    assert_eq!(get(format!("http://{address}/r/lobby")).await.0, 200);
    assert!(get(format!("http://{address}/r/lobby")).await.1.contains("<title>chat</title>"));
    assert_eq!(get(format!("http://{address}/missing-456.wasm")).await.0, 404);
}
