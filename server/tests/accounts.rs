//! Accounts over real HTTP requests and sockets: registering, signing in and
//! out, the session cookie, names reserved from guests, and what a guesser,
//! a foreign page and a signed-out socket get.

mod support;

use std::time::Duration;

use chat_server::accounts::attempts::AttemptLimits;
use chat_shared::api::ApiErrorCode;
use chat_shared::{ErrorCode, ServerMessage};
use support::accounts::{credentials, me, post, request};
use support::{JsonClient, TestApp, nick};

#[actix_web::test]
async fn a_registered_user_is_signed_in_by_an_http_only_cookie_and_speaks_under_that_name() {
    let app = TestApp::spawn().await;
    let registered = credentials(app.address, "/api/register", "Alice", "correct horse").await;
    assert_eq!((registered.status, registered.me()), (201, "Alice".to_owned()));
    let set_cookie = registered.set_cookie.clone().expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{attribute} in {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "not Secure without an https public origin");
    let cookie = registered.cookie.expect("the cookie");
    assert_eq!(me(app.address, &cookie).await.me(), "Alice");

    // Her socket speaks as Alice whatever nickname a join asks for.
    let mut tab = JsonClient::connect_with_cookie(app.address, Some(&cookie)).await;
    tab.send_join("lobby", "mallory", None).await;
    match tab.next().await {
        ServerMessage::Joined { nick: joined, members, .. } => {
            assert_eq!(joined, nick("Alice"));
            assert!(members.contains(&nick("Alice")));
        }
        other => panic!("expected joined, got {other:?}"),
    }
    while !matches!(tab.next().await, ServerMessage::History { .. }) {}
    let mut bob = JsonClient::join(app.address, "bob").await;
    let said = tab.say("hello").await;
    tab.next_ack(&said).await;
    assert_eq!(bob.next_chat().await.nick, nick("Alice"));
}

#[actix_web::test]
async fn a_registered_name_is_nobody_elses_in_any_case_or_look_alike_form() {
    let app = TestApp::spawn().await;
    assert_eq!(credentials(app.address, "/api/register", "Alice", "correct horse").await.status, 201);
    for taken in ["alice", "ALICE", "Ａlice"] {
        let again = credentials(app.address, "/api/register", taken, "another password").await;
        assert_eq!((again.status, again.error()), (409, ApiErrorCode::UsernameTaken), "{taken}");
    }
    // A guest's join under it, in any form, is refused.
    for taken in ["Alice", "alice", "Ａlice"] {
        let mut guest = JsonClient::connect(app.address).await;
        guest.send_join("lobby", taken, None).await;
        match guest.next().await {
            ServerMessage::Error { code, message } => {
                assert_eq!(code, ErrorCode::NameReserved, "{taken}");
                assert!(message.contains("sign in"), "{message}");
            }
            other => panic!("a guest joined as {taken}: {other:?}"),
        }
    }
    // Other names stay free for guests, as before.
    JsonClient::join(app.address, "alicia").await;
}

#[actix_web::test]
async fn sign_in_takes_only_the_right_password_and_never_says_which_part_was_wrong() {
    let app = TestApp::spawn().await;
    credentials(app.address, "/api/register", "alice", "correct horse").await;
    let wrong = credentials(app.address, "/api/login", "alice", "wrong horse").await;
    let unknown = credentials(app.address, "/api/login", "nobody", "correct horse").await;
    assert_eq!((wrong.status, wrong.error()), (401, ApiErrorCode::InvalidCredentials));
    assert_eq!((unknown.status, unknown.body.clone()), (401, wrong.body.clone()), "the same answer");
    assert!(wrong.cookie.is_none());
    let right = credentials(app.address, "/api/login", "ALICE", "correct horse").await;
    assert_eq!((right.status, right.me()), (200, "alice".to_owned()), "the registered spelling");
    let cookie = right.cookie.expect("a cookie");
    assert_eq!(me(app.address, &cookie).await.me(), "alice");

    let too_long = "a".repeat(40);
    for (username, password, code) in [
        (too_long.as_str(), "correct horse", ApiErrorCode::InvalidUsername),
        ("", "correct horse", ApiErrorCode::InvalidUsername),
        ("bob", "short", ApiErrorCode::InvalidPassword),
    ] {
        let refused = credentials(app.address, "/api/register", username, password).await;
        assert_eq!((refused.status, refused.error()), (400, code), "{username}");
    }
    let garbage = post(app.address, "/api/login", serde_json::json!({ "user": "alice" })).await;
    assert_eq!((garbage.status, garbage.error()), (400, ApiErrorCode::InvalidRequest));
    let nobody = request(reqwest::Method::GET, app.address, "/api/me", None, None, None).await;
    assert_eq!((nobody.status, nobody.error()), (401, ApiErrorCode::Unauthorized));
    let forged = me(app.address, "chat_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(forged.status, 401, "a made-up token signs nobody in");
}

#[actix_web::test]
async fn guessing_an_accounts_password_is_stopped_for_the_window_with_a_retry_after() {
    let app = TestApp::spawn().await;
    credentials(app.address, "/api/register", "alice", "correct horse").await;
    for guess in 0..AttemptLimits::FAILED_PER_ACCOUNT {
        let failed = credentials(app.address, "/api/login", "alice", &format!("guess {guess}")).await;
        assert_eq!(failed.status, 401);
    }
    // Now even the right password waits: the guesser cannot tell it was right.
    let stopped = credentials(app.address, "/api/login", "alice", "correct horse").await;
    assert_eq!((stopped.status, stopped.error()), (429, ApiErrorCode::RateLimited));
    let wait: u64 = stopped.retry_after.expect("Retry-After").parse().expect("seconds");
    assert!(wait > 0 && wait <= AttemptLimits::WINDOW.as_secs(), "{wait}");
}

#[actix_web::test]
async fn a_foreign_page_cannot_sign_in_register_or_sign_out() {
    let app = TestApp::spawn().await;
    let registered = credentials(app.address, "/api/register", "alice", "correct horse").await;
    let cookie = registered.cookie.expect("a cookie");
    let body = serde_json::json!({ "username": "alice", "password": "correct horse" });
    for path in ["/api/login", "/api/register", "/api/logout", "/api/logout-all"] {
        let foreign = request(
            reqwest::Method::POST,
            app.address,
            path,
            Some(body.clone()),
            Some(&cookie),
            Some("https://evil.example"),
        )
        .await;
        assert_eq!((foreign.status, foreign.error()), (403, ApiErrorCode::Forbidden), "{path}");
    }
    assert_eq!(me(app.address, &cookie).await.status, 200, "still signed in");
    let own = format!("http://{}", app.address);
    let from_own_page = request(reqwest::Method::POST, app.address, "/api/login", Some(body), None, Some(&own)).await;
    assert_eq!(from_own_page.status, 200);
}

#[actix_web::test]
async fn signing_out_ends_one_session_and_signing_out_everywhere_closes_every_socket() {
    let app = TestApp::spawn().await;
    let laptop = credentials(app.address, "/api/register", "alice", "correct horse").await.cookie.expect("cookie");
    let phone = credentials(app.address, "/api/login", "alice", "correct horse").await.cookie.expect("cookie");
    let tablet = credentials(app.address, "/api/login", "alice", "correct horse").await.cookie.expect("cookie");

    let out = request(reqwest::Method::POST, app.address, "/api/logout", None, Some(&laptop), None).await;
    assert_eq!(out.status, 204);
    assert!(out.set_cookie.expect("the cookie cleared").contains("Max-Age=0"));
    assert_eq!(me(app.address, &laptop).await.status, 401, "that session is over");
    assert_eq!(me(app.address, &phone).await.status, 200, "the others are not");
    // A socket opened with the ended session is a guest's, and alice is not a guest's name.
    let mut stale = JsonClient::connect_with_cookie(app.address, Some(&laptop)).await;
    stale.send_join("lobby", "alice", None).await;
    assert!(matches!(stale.next().await, ServerMessage::Error { code: ErrorCode::NameReserved, .. }));

    let mut on_phone = JsonClient::connect_with_cookie(app.address, Some(&phone)).await;
    on_phone.enter("lobby", "alice", None).await;
    let mut on_tablet = JsonClient::connect_with_cookie(app.address, Some(&tablet)).await;
    on_tablet.enter("dev", "alice", None).await;
    let everywhere = request(reqwest::Method::POST, app.address, "/api/logout-all", None, Some(&phone), None).await;
    assert_eq!(everywhere.status, 204);
    for (socket, device) in [(on_phone.raw(), "phone"), (on_tablet.raw(), "tablet")] {
        let code = socket.close_code_within(Duration::from_secs(2)).await;
        assert_eq!(code, Some(1008), "the {device}'s socket closed at once");
    }
    assert_eq!(me(app.address, &phone).await.status, 401);
    assert_eq!(me(app.address, &tablet).await.status, 401);
    let again = request(reqwest::Method::POST, app.address, "/api/logout-all", None, Some(&phone), None).await;
    assert_eq!(again.status, 401, "nobody left to sign out");
}

#[actix_web::test]
async fn accounts_survive_a_restart_on_the_same_file() {
    let app = TestApp::spawn().await;
    let cookie = credentials(app.address, "/api/register", "alice", "correct horse").await.cookie.expect("cookie");
    let restarted = app.restart_on_same_file().await;
    assert_eq!(me(restarted.address, &cookie).await.me(), "alice", "the session too");
    let signed_in = credentials(restarted.address, "/api/login", "alice", "correct horse").await;
    assert_eq!(signed_in.status, 200);
}
