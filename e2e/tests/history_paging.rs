//! Scrolling up pages back to the first message; new messages wait below a
//! button while the reader is scrolled up.

use chat_e2e::{Artefacts, Browser, Chromedriver, eventually};
use fantoccini::Locator;
use serde_json::json;

/// Sends `lines` through a plain `/` socket from the page (as the seed's
/// client.html would), waiting until all are echoed back.
async fn send_plain_lines(browser: &Browser, lines: Vec<String>) {
    let script = r#"
        const [lines, done] = [arguments[0], arguments[arguments.length - 1]];
        const ws = new WebSocket('ws://' + location.host + '/');
        let echoed = 0;
        ws.onopen = () => lines.forEach(line => ws.send(line));
        ws.onmessage = () => { if (++echoed === lines.length) { ws.close(); done(true); } };
        ws.onerror = () => done(false);
    "#;
    let sent = browser.client.execute_async(script, vec![json!(lines)]).await.expect("script ran");
    assert_eq!(sent, json!(true), "every line was echoed");
}

async fn scroll_log_to_top(browser: &Browser) {
    let script = "const log = document.querySelector('[role=log]'); log.scrollTop = 0; \
                  log.dispatchEvent(new Event('scroll'));";
    browser.client.execute(script, vec![]).await.expect("scrolled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrolling_up_loads_older_pages_until_the_first_message() {
    // The seeding socket sends 120 lines at once: no rate limit for this test.
    let (server, _data) = Artefacts::locate().start_server(&["--rate-limit", "0"]).await;
    let driver = Chromedriver::start().await;
    let bob = driver.browser(1280, 800).await;
    bob.goto(&server.url("/")).await;
    send_plain_lines(&bob, (1..=120).map(|n| format!("line {n}")).collect()).await;

    bob.join("bob").await;
    let expected: Vec<String> = (1..=120).map(|n| format!("line {n}")).collect();
    eventually("the latest page", || async { (bob.log().await.len() == 50).then_some(()) }).await;
    let texts: Vec<String> = bob.log().await.into_iter().map(|l| l.text).collect();
    assert_eq!(texts, expected[70..], "the latest 50, in order");

    eventually("the beginning of the room", || async {
        if bob.texts("[role=log] .start").await.is_empty() {
            scroll_log_to_top(&bob).await;
            None
        } else {
            Some(())
        }
    })
    .await;
    let texts: Vec<String> = bob.log().await.into_iter().map(|l| l.text).collect();
    assert_eq!(texts, expected, "every message once, in order, back to the first");

    // Scrolled up, a new message does not yank the view: a button offers it.
    scroll_log_to_top(&bob).await;
    send_plain_lines(&bob, vec!["while you were reading".into()]).await;
    let button = bob
        .client
        .wait()
        .at_most(chat_e2e::PATIENCE)
        .for_element(Locator::XPath("//button[contains(., 'New messages')]"))
        .await
        .expect("a New messages button");
    let at_top = bob.client.execute("return document.querySelector('[role=log]').scrollTop", vec![]).await;
    assert_eq!(at_top.ok().and_then(|v| v.as_f64()).map(|t| t < 100.0), Some(true), "the view stayed put");
    button.click().await.expect("clicked");
    eventually("the log at the bottom", || async {
        let script =
            "const l = document.querySelector('[role=log]'); return l.scrollHeight - l.scrollTop - l.clientHeight;";
        let gap = bob.client.execute(script, vec![]).await.ok()?.as_f64()?;
        (gap < 50.0).then_some(())
    })
    .await;
    assert!(bob.texts(".new-messages").await.is_empty(), "the button is gone");

    bob.close().await;
    server.kill().await;
}
