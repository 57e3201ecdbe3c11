//! Two tabs of one browser: a duplicated tab (which copies sessionStorage)
//! does not inherit the first tab's secret, so it cannot take over its
//! nickname: it is told the name is taken, and the first tab stays.

use std::time::Duration;

use chat_e2e::{Artefacts, Chromedriver, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicated_tab_does_not_fight_the_first_for_its_nickname() {
    let (server, _data) = Artefacts::locate().start_server(&[]).await;
    let driver = Chromedriver::start().await;
    let first = driver.user(&server.url("/"), "alice").await;
    let first_window = first.client.window().await.expect("window");

    // window.open copies the opener's sessionStorage, as "Duplicate tab" does;
    // localStorage remembers the nickname, so the copy joins as alice at once.
    first.client.execute("window.open(location.href, '_blank')", vec![]).await.expect("opened");
    let second_window = eventually("the second tab", || async {
        first.client.windows().await.ok()?.into_iter().find(|w| *w != first_window)
    })
    .await;
    first.client.switch_to_window(second_window).await.expect("switched");
    eventually("the second tab to be told the name is taken", || async {
        first.alerts().await.contains("already in use").then_some(())
    })
    .await;

    // The first tab was not replaced, and stays so.
    first.client.switch_to_window(first_window).await.expect("switched back");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(first.connection_state().await.as_deref(), Some("connected"));
    first.send_with_enter("still the first tab").await;
    first.wait_for_message("alice", "still the first tab").await;
    assert!(first.members().await.contains(&"alice".to_owned()));

    first.close().await;
    server.kill().await;
}
