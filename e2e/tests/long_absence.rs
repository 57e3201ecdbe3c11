//! Away for a long time: a browser whose link was cut while thousands of large
//! messages were posted comes back to the newest message with no gap, and
//! the others see it leave and return once each (no ghost leave/join).

use chat_e2e::{Artefacts, Browser, Chromedriver, CuttableProxy, ProtocolClient, eventually};
use serde_json::Value;

/// A message text of 4,000 characters whose first five say its number.
fn numbered(n: u32) -> String {
    format!("{n:05}{}", "x".repeat(3_995))
}

/// The numbers of the numbered messages in the browser's log, in order.
async fn numbers_in_log(browser: &Browser) -> Vec<u32> {
    let script = r#"
        return Array.from(document.querySelectorAll('[role=log] .message:not(.pending) .text'))
            .map(t => t.textContent.slice(0, 5));"#;
    let value = browser.client.execute(script, vec![]).await.unwrap_or(Value::Null);
    value.as_array().map(|texts| texts.iter().filter_map(|t| t.as_str()?.parse().ok()).collect()).unwrap_or_default()
}

/// Waits until the log ends at message `newest`, then checks it has no gap.
async fn wait_until_caught_up(browser: &Browser, newest: u32) -> Vec<u32> {
    let numbers = eventually(&format!("message {newest} at the end of the log"), || async {
        let numbers = numbers_in_log(browser).await;
        (numbers.last() == Some(&newest)).then_some(numbers)
    })
    .await;
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "no gap, no duplicate, in order");
    numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_absence_resumes_to_the_newest_message_without_gaps_or_ghosts() {
    let (server, _data) = Artefacts::locate().start_server(&["--rate-limit", "0"]).await;
    let proxy = CuttableProxy::start(server.address).await;
    let driver = Chromedriver::start().await;
    let mut others = ProtocolClient::join(server.address, "others").await;
    let alice = driver.user(&proxy.url("/"), "alice").await;
    others.post([numbered(0)]).await;
    wait_until_caught_up(&alice, 0).await;

    // Away while 1,500 messages (6 MB) arrive: resumed in pages.
    proxy.cut();
    alice.wait_for_connection_state("reconnecting").await;
    others.post((1..=1_500).map(numbered)).await;
    proxy.restore();
    alice.wait_for_connection_state("connected").await;
    let numbers = wait_until_caught_up(&alice, 1_500).await;
    assert_eq!(numbers.first(), Some(&0), "the log continues from before the cut");

    // Away while 20,000 more (80 MB) arrive: far more than the log keeps, so
    // a fresh log from the newest, with the rest a scroll up away.
    proxy.cut();
    alice.wait_for_connection_state("reconnecting").await;
    others.post((1_501..=21_500).map(numbered)).await;
    proxy.restore();
    alice.wait_for_connection_state("connected").await;
    wait_until_caught_up(&alice, 21_500).await;

    // Live again, and the others saw exactly two departures and returns.
    alice.send_with_enter("back for good").await;
    others.wait_for_text("back for good").await;
    assert_eq!(
        others.presence,
        ["alice joined", "alice left", "alice joined", "alice left", "alice joined"],
        "no ghost leave/join"
    );

    alice.close().await;
    server.kill().await;
}
