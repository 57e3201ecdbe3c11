//! The whole product in real browsers: the release server serving the release
//! bundle, two Yew users and the seed's plain page chatting through it.

use chat_e2e::{Artefacts, Chromedriver, ServerProcess, eventually, screenshot_dir};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_and_the_seed_page_chat_through_one_server() {
    let artefacts = Artefacts::locate();
    let site = artefacts.site_with_plain_client();
    let data = tempfile::tempdir().expect("data dir");
    let server = ServerProcess::start(&artefacts.server_bin, site.path(), &data.path().join("chat.sqlite3")).await;
    let driver = Chromedriver::start().await;

    let alice = driver.user(&server.url("/"), "alice").await;
    let bob = driver.user(&server.url("/"), "bob").await;

    // Enter sends; both sides show it, the sender included.
    alice.send_with_enter("hello bob").await;
    bob.wait_for_message("alice", "hello bob").await;
    alice.wait_for_message("alice", "hello bob").await;

    // The Send button sends.
    bob.send_with_button("hi alice").await;
    alice.wait_for_message("bob", "hi alice").await;

    // Markup arrives as the characters typed, not as an element.
    let attack = "<img src=x onerror=alert(1)>";
    alice.send_with_enter(attack).await;
    bob.wait_for_message("alice", attack).await;
    let injected = bob.client.find_all(Locator::Css("[role=log] img")).await.expect("query");
    assert!(injected.is_empty(), "the message became markup");
    assert!(bob.client.get_alert_text().await.is_err(), "a script ran");

    // The seed's client.html, served by the same process, talks to / .
    let seed = driver.browser(800, 600).await;
    seed.goto(&server.url("/plain_client.html")).await;
    // The page has no status indicator, so retry until its socket is open.
    let seed_lines = || async {
        let items = seed.client.find_all(Locator::Css("#messages li")).await.unwrap_or_default();
        let mut texts = Vec::new();
        for item in items {
            texts.push(item.text().await.unwrap_or_default());
        }
        texts
    };
    eventually("the seed page to echo its own line", || async {
        let field = seed.client.find(Locator::Id("message")).await.ok()?;
        if !seed_lines().await.iter().any(|line| line == "from the seed page") {
            field.send_keys("from the seed page").await.ok()?;
            seed.client.find(Locator::XPath("//button[.='Send']")).await.ok()?.click().await.ok()?;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        seed_lines().await.iter().any(|line| line == "from the seed page").then_some(())
    })
    .await;
    let guest = eventually("the seed line in alice's log", || async {
        alice.log().await.into_iter().find(|line| line.text == "from the seed page").map(|line| line.nick)
    })
    .await;
    assert!(guest.starts_with("guest-"), "plain text shows under a guest name, got {guest}");
    bob.wait_for_message(&guest, "from the seed page").await;

    bob.send_with_enter("hello seed").await;
    eventually("bob's line on the seed page", || async {
        seed_lines().await.iter().any(|line| line == "bob: hello seed").then_some(())
    })
    .await;
    alice.wait_for_message("bob", "hello seed").await;

    alice.screenshot(&screenshot_dir().join("chat-1280x800.png")).await;

    for browser in [alice, bob, seed] {
        browser.close().await;
    }
    server.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_nickname_survive_a_reload_and_a_server_restart() {
    let artefacts = Artefacts::locate();
    let data = tempfile::tempdir().expect("data dir");
    let database = data.path().join("chat.sqlite3");
    let server = ServerProcess::start(&artefacts.server_bin, &artefacts.dist, &database).await;
    let address = server.address;
    let driver = Chromedriver::start().await;
    let carol = driver.browser(1280, 800).await;
    carol.goto(&server.url("/")).await;
    carol.join("carol").await;
    carol.send_with_enter("before the reload").await;
    carol.wait_for_message("carol", "before the reload").await;

    // A reload rejoins silently (the nickname is remembered) and shows the history.
    carol.client.refresh().await.expect("reloaded");
    carol.wait_until_member("carol").await;
    carol.wait_for_message("carol", "before the reload").await;

    // A graceful stop: the page sees the socket close and starts reconnecting.
    server.terminate().await;
    carol.wait_for_connection_state("reconnecting").await;

    // A new server on the same address and file: the page reconnects and rejoins by itself.
    let restarted = ServerProcess::start_on(&artefacts.server_bin, &artefacts.dist, &database, address).await;
    carol.wait_for_connection_state("connected").await;
    carol.send_with_enter("back again").await;
    carol.wait_for_message("carol", "back again").await;

    // A fresh visitor after the restart sees both, in order.
    let dave = driver.user(&restarted.url("/"), "dave").await;
    dave.wait_for_message("carol", "back again").await;
    let texts: Vec<String> = dave.log().await.into_iter().map(|line| line.text).collect();
    assert_eq!(texts, ["before the reload", "back again"]);

    carol.close().await;
    dave.close().await;
    restarted.kill().await;
}
