//! Restoring an older copy of the database while a browser is open: the
//! restored history's ids restart below what the page already holds, and the
//! page must show the new messages anyway (it starts a fresh log) instead of
//! silently dropping every one of them as already seen.

use chat_e2e::{Artefacts, Chromedriver, ProtocolClient, ServerProcess};

/// The test posts in bursts.
const FLAGS: &[&str] = &["--rate-limit", "0"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_messages_show_after_restoring_an_older_backup() {
    let artefacts = Artefacts::locate();
    let data = tempfile::tempdir().expect("data dir");
    let database = data.path().join("chat.sqlite3");
    let backup = data.path().join("backup.sqlite3");
    let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let server = ServerProcess::start_with(&artefacts.server_bin, &artefacts.dist, &database, any_port, FLAGS).await;
    let address = server.address;
    let driver = Chromedriver::start().await;
    let alice = driver.user(&server.url("/"), "alice").await;
    let mut others = ProtocolClient::join(address, "others").await;
    others.post((1..=5).map(|n| format!("kept {n}"))).await;
    alice.wait_for_message("others", "kept 5").await;

    // The backup: a clean stop leaves the whole history in the main file.
    server.terminate().await;
    std::fs::copy(&database, &backup).expect("backed up");
    let server = ServerProcess::start_with(&artefacts.server_bin, &artefacts.dist, &database, address, FLAGS).await;
    alice.wait_for_connection_state("connected").await;
    let mut others = ProtocolClient::join(address, "others").await;
    others.post((1..=50).map(|n| format!("lost {n}"))).await;
    alice.wait_for_message("others", "lost 50").await;

    // Restore the older copy: ids 6..55 will be handed out again.
    server.terminate().await;
    alice.wait_for_connection_state("reconnecting").await;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
    }
    std::fs::copy(&backup, &database).expect("restored");
    let server = ServerProcess::start_with(&artefacts.server_bin, &artefacts.dist, &database, address, FLAGS).await;
    alice.wait_for_connection_state("connected").await;
    let mut others = ProtocolClient::join(address, "others").await;
    others.post(["after the restore".to_owned()]).await;
    alice.wait_for_message("others", "after the restore").await;

    let texts: Vec<String> = alice.log().await.into_iter().map(|line| line.text).collect();
    assert!(!texts.iter().any(|t| t.starts_with("lost")), "the lost timeline is gone from the log: {texts:?}");
    assert_eq!(texts.last().map(String::as_str), Some("after the restore"));
    assert!(texts.contains(&"kept 5".to_owned()), "the restored history shows: {texts:?}");

    alice.close().await;
    server.kill().await;
}
