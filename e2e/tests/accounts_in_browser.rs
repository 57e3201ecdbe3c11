//! Accounts in the browser: registering from the page, the name kept from a
//! guest in another browser, signing out and in again, a wrong password.

use chat_e2e::{Artefacts, Browser, Chromedriver, eventually};
use fantoccini::Locator;

async fn header(browser: &Browser) -> String {
    browser.texts(".topbar .me").await.concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_registered_in_the_page_is_its_owners_in_every_browser() {
    let (server, _data) = Artefacts::locate().start_server(&[]).await;
    let driver = Chromedriver::start().await;
    let alice = driver.browser(1000, 800).await;
    alice.goto(&server.url("/")).await;
    alice.wait_for_connection_state("connected").await;
    alice.account_form("alice", "correct horse", "Register").await;
    alice.wait_until_member("alice").await;
    assert_eq!(header(&alice).await, "signed in as alice");
    alice.send_with_enter("registered and here").await;
    alice.wait_for_message("alice", "registered and here").await;

    // A guest in another browser is refused the name, in any case, and told why.
    let guest = driver.browser(1000, 800).await;
    guest.goto(&server.url("/")).await;
    guest.wait_for_connection_state("connected").await;
    let nickname = guest.client.find(Locator::Css("input[aria-label=Nickname]")).await.expect("nickname field");
    nickname.send_keys("ALICE").await.expect("typed");
    guest.button("Join").await.click().await.expect("Join clicked");
    eventually("the guest told the name is registered", || async {
        guest.alerts().await.contains("registered account").then_some(())
    })
    .await;
    // The form was drawn again for the refusal: find its field anew.
    let nickname = guest.client.find(Locator::Css("input[aria-label=Nickname]")).await.expect("nickname field");
    nickname.clear().await.expect("cleared");
    nickname.send_keys("bob").await.expect("typed");
    guest.button("Join").await.click().await.expect("Join clicked");
    guest.wait_until_member("bob").await;
    guest.wait_for_message("alice", "registered and here").await;

    // Signed out, alice is back on the join form; a wrong password is refused; the right one lets her back in.
    alice.button("Sign out").await.click().await.expect("Sign out clicked");
    eventually("the join form again", || async {
        alice.client.find(Locator::Css("input[aria-label=Nickname]")).await.ok()
    })
    .await;
    guest.wait_for_message("alice", "registered and here").await;
    eventually("alice gone from bob's list", || async {
        (!guest.members().await.contains(&"alice".to_owned())).then_some(())
    })
    .await;
    alice.account_form("alice", "wrong horse", "Sign in").await;
    eventually("the refusal shown", || async {
        alice.alerts().await.contains("wrong username or password").then_some(())
    })
    .await;
    alice.account_form("Alice", "correct horse", "Sign in").await;
    alice.wait_until_member("alice").await;
    guest.wait_until_member("alice").await;
    assert_eq!(header(&alice).await, "signed in as alice");

    alice.close().await;
    guest.close().await;
    server.kill().await;
}
