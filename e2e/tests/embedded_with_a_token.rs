//! The chat in another site's page: the README's example embedding page
//! (`examples/embed.html`), served from another origin, frames the chat with
//! a short-lived token minted by `chat-server token`; the chat speaks as the
//! token's user, asks the page for a newer token before it expires, and
//! stays connected past the first token's expiry on the one it was handed.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use chat_e2e::{Artefacts, Chromedriver, ProtocolClient, ServerProcess, eventually, screenshot_dir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves `page` for every request on `listener`: the embedding site.
async fn serve_page(listener: TcpListener, page: String) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { return };
        let page = page.clone();
        tokio::spawn(async move {
            let mut request = [0_u8; 4096];
            let _ = stream.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

/// A token minted by the server binary, as an embedding site's backend would.
fn mint(server_bin: &Path, secret: &Path, sub: &str, rooms: &str, ttl: &str) -> String {
    let output = std::process::Command::new(server_bin)
        .args(["token", "--sub", sub, "--rooms", rooms, "--ttl", ttl, "--jwt-hs256-secret-file"])
        .arg(secret)
        .output()
        .expect("chat-server token runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_frames_the_chat_with_a_token_and_hands_it_a_newer_one_before_it_expires() {
    let artefacts = Artefacts::locate();
    let data = tempfile::tempdir().expect("dir");
    let secret = data.path().join("secret");
    std::fs::write(&secret, "a secret shared by the site's backend and the chat\n").expect("secret written");
    let site = TcpListener::bind("127.0.0.1:0").await.expect("site listens");
    let site_origin = format!("http://{}", site.local_addr().expect("address"));
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/embed.html"))
        .expect("the example page");
    tokio::spawn(serve_page(site, page));

    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let secret_flag = secret.to_str().expect("utf-8 path");
    let flags = ["--jwt-hs256-secret-file", secret_flag, "--frame-ancestor", &site_origin];
    let server = ServerProcess::start_with(
        &artefacts.server_bin,
        &artefacts.dist,
        &data.path().join("chat.sqlite3"),
        any_port,
        &flags,
    )
    .await;
    let first = mint(&artefacts.server_bin, &secret, "kim", "team-*", "8s");
    let issued = Instant::now();
    let next = mint(&artefacts.server_bin, &secret, "kim", "team-*", "1h");
    let chat_origin = server.url("").trim_end_matches('/').to_owned();

    let mut colleague = ProtocolClient::join_room(server.address, "team-a", "colleague").await;
    let driver = Chromedriver::start().await;
    let browser = driver.browser(1000, 900).await;
    browser.goto(&format!("{site_origin}/?chat={chat_origin}&room=team-a&token={first}&next={next}")).await;
    browser.client.enter_frame(0).await.expect("into the chat's frame");
    browser.wait_for_connection_state("connected").await;
    // The token's name, with no form to fill in.
    browser.wait_until_member("kim").await;
    browser.send_with_enter("hello from the site").await;
    browser.wait_for_message("kim", "hello from the site").await;
    colleague.wait_for_text("hello from the site").await;

    // Past the first token's expiry: still the same connection, on the newer token.
    let past_expiry = Duration::from_secs(10);
    tokio::time::sleep(past_expiry.saturating_sub(issued.elapsed())).await;
    colleague.post(["after the first token expired".to_owned()]).await;
    browser.wait_for_message("colleague", "after the first token expired").await;
    let connects = browser
        .client
        .execute("return performance.getEntriesByName('chat-connected').length;", vec![])
        .await
        .expect("marks read");
    assert_eq!(connects.as_u64(), Some(1), "refreshed in place, not reconnected");
    browser.screenshot(&screenshot_dir().join("embedded-with-a-token.png")).await;

    // The site saw the request for a newer token and answered it.
    browser.client.enter_parent_frame().await.expect("back to the site");
    eventually("the site handed over the newer token", || async {
        browser.texts("#status").await.concat().contains("handed the chat a new token").then_some(())
    })
    .await;
    browser.close().await;
    server.kill().await;
}
