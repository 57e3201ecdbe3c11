//! Connection tokens over real sockets: who a token makes a connection,
//! which rooms it opens, what a forged, expired or algorithm-confused token
//! gets, refresh before expiry and the close after it, `--guests off`.
//!
//! The keys in `tests/keys/` were made for these tests with openssl and
//! protect nothing.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chat_server::config::{Config, Switch};
use chat_server::tokens::claims::Claims;
use chat_server::tokens::mint::mint_hs256;
use chat_shared::limits::{CLOSE_TOKEN_EXPIRED, CLOSE_TOKEN_REFUSED};
use chat_shared::{ClientId, ClientMessage, ErrorCode, MessageText, ServerMessage};
use futures_util::StreamExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use support::{JsonClient, TestApp, nick, room};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &[u8] = b"a secret of more than thirty-two bytes, for tests";

fn keys() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

fn claims(sub: &str, ttl_secs: u64, rooms: Option<&[&str]>) -> Claims {
    Claims {
        sub: sub.to_owned(),
        exp: now() + ttl_secs,
        name: None,
        rooms: rooms.map(|rooms| rooms.iter().map(|r| (*r).to_owned()).collect()),
    }
}

fn hs256(claims: &Claims) -> String {
    mint_hs256(SECRET, claims, None, None).expect("signed")
}

/// A server that takes tokens signed with [`SECRET`].
async fn server_with_secret() -> (TestApp, tempfile::TempDir) {
    server_with_secret_and(|_| {}).await
}

/// Like [`server_with_secret`], with other settings changed by `configure`.
async fn server_with_secret_and(configure: impl FnOnce(&mut Config)) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, [SECRET, b"\n"].concat()).expect("secret written");
    let app = TestApp::spawn_configured(|config| {
        config.jwt_hs256_secret_file = Some(secret);
        configure(config);
    })
    .await;
    (app, dir)
}

/// Opens `/ws?token=` and reads until the server closes: the error it gave, and the close code.
async fn refused(address: std::net::SocketAddr, token: &str) -> (ErrorCode, String, u16) {
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{address}/ws?token={token}")).await.expect("upgraded");
    let mut error = None;
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(ServerMessage::Error { code, message }) = ServerMessage::decode(&text) {
                        error = Some((code, message));
                    }
                }
                Some(Ok(Message::Close(Some(close)))) => {
                    let (code, message) = error.expect("an error before the close");
                    return (code, message, u16::from(close.code));
                }
                Some(Ok(_)) => {}
                other => panic!("the socket ended without a close frame: {other:?}"),
            },
            () = &mut deadline => panic!("not closed within 5 s"),
        }
    }
}

/// The next answer to a request: an error, `authenticated` or `joined`
/// (room events and acks in between are skipped).
async fn next_event(client: &mut JsonClient) -> ServerMessage {
    loop {
        match client.next().await {
            answer @ (ServerMessage::Error { .. }
            | ServerMessage::Authenticated { .. }
            | ServerMessage::Joined { .. }) => {
                return answer;
            }
            _ => continue,
        }
    }
}

#[actix_web::test]
async fn a_token_user_speaks_under_the_tokens_name_whatever_the_join_asks() {
    let (app, _dir) = server_with_secret().await;
    let mut token = claims("u-1234", 3600, None);
    token.name = Some("Alice".into());
    let (mut alice, name, expires_in) = JsonClient::connect_with_token(app.address, &hs256(&token)).await;
    assert_eq!(name, nick("Alice"));
    assert!((3590..=3600).contains(&expires_in), "{expires_in}");
    alice.enter("lobby", "Alice", None).await;
    alice.say("hello").await;
    assert_eq!(alice.next_chat().await.nick, nick("Alice"));

    // Whatever nickname a join asks for, it is the token's.
    let (mut again, ..) = JsonClient::connect_with_token(app.address, &hs256(&claims("bob", 3600, None))).await;
    again.send_join("dev", "mallory", None).await;
    match next_event(&mut again).await {
        ServerMessage::Joined { nick: n, .. } => assert_eq!(n, nick("bob")),
        other => panic!("expected joined, got {other:?}"),
    }
}

#[actix_web::test]
async fn forged_expired_none_and_garbage_tokens_are_refused_with_the_reason_and_closed() {
    let (app, _dir) = server_with_secret().await;
    let forged = mint_hs256(b"another secret, just as long as the real one", &claims("alice", 600, None), None, None)
        .expect("signed");
    let expired = hs256(&Claims { exp: now() - 1, ..claims("alice", 0, None) });
    // `alg: none`: a header and payload, no signature.
    let b64 = |json: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    };
    let unsigned = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&format!(r#"{{"sub":"alice","exp":{}}}"#, now() + 600))
    );
    let bad_rooms = hs256(&claims("alice", 600, Some(&["Not A Room"])));
    let bad_name = hs256(&Claims { name: Some("\u{200b}".into()), ..claims("alice", 600, None) });
    for (token, says) in [
        (forged.as_str(), "signature"),
        (expired.as_str(), "expired"),
        (unsigned.as_str(), "algorithm"),
        ("not-a-token", "malformed"),
        (bad_rooms.as_str(), "room grant"),
        (bad_name.as_str(), "nickname"),
    ] {
        let (code, message, close) = refused(app.address, token).await;
        assert_eq!((code, close), (ErrorCode::TokenInvalid, CLOSE_TOKEN_REFUSED), "{token}");
        assert!(message.contains(says), "{token}: {message}");
    }
}

#[actix_web::test]
async fn a_server_without_a_key_refuses_every_token() {
    let app = TestApp::spawn().await;
    let (code, message, close) = refused(app.address, &hs256(&claims("alice", 600, None))).await;
    assert_eq!((code, close), (ErrorCode::TokenInvalid, CLOSE_TOKEN_REFUSED));
    assert!(message.contains("does not accept"), "{message}");
}

#[actix_web::test]
async fn public_keys_take_rs256_and_es256_and_refuse_an_hs256_token_signed_with_the_public_key() {
    for (public, private, algorithm) in
        [("rsa-public.pem", "rsa-private.pem", Algorithm::RS256), ("ec-public.pem", "ec-private.pem", Algorithm::ES256)]
    {
        let public = keys().join(public);
        let app = TestApp::spawn_configured(|config| config.jwt_public_key = Some(public.clone())).await;
        let pem = std::fs::read(keys().join(private)).expect("private key");
        let key = match algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            _ => EncodingKey::from_ec_pem(&pem),
        }
        .expect("private key parses");
        let token = jsonwebtoken::encode(&Header::new(algorithm), &claims("carol", 600, None), &key).expect("signed");
        let (_carol, name, _) = JsonClient::connect_with_token(app.address, &token).await;
        assert_eq!(name, nick("carol"), "{algorithm:?} accepted");

        // The classic confusion: HMAC keyed with the (public) PEM's bytes.
        let public_bytes = std::fs::read(&public).expect("public key");
        let confused = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims("carol", 600, None),
            &EncodingKey::from_secret(&public_bytes).expect("an HMAC key"),
        )
        .expect("signed");
        let (code, message, _) = refused(app.address, &confused).await;
        assert_eq!(code, ErrorCode::TokenInvalid);
        assert!(message.contains("algorithm"), "{message}");
    }
}

#[actix_web::test]
async fn a_configured_audience_and_issuer_must_match() {
    let (app, _dir) = server_with_secret_and(|config| {
        config.jwt_audience = Some("chat".into());
        config.jwt_issuer = Some("https://app.example".into());
    })
    .await;
    let token = |aud: Option<&str>, iss: Option<&str>| {
        mint_hs256(SECRET, &claims("dave", 600, None), aud, iss).expect("signed")
    };
    JsonClient::connect_with_token(app.address, &token(Some("chat"), Some("https://app.example"))).await;
    for (aud, iss, says) in [
        (Some("other"), Some("https://app.example"), "audience"),
        (None, Some("https://app.example"), "aud"),
        (Some("chat"), Some("https://evil.example"), "issuer"),
    ] {
        let (code, message, _) = refused(app.address, &token(aud, iss)).await;
        assert_eq!(code, ErrorCode::TokenInvalid);
        assert!(message.contains(says), "{aud:?} {iss:?}: {message}");
    }
}

#[actix_web::test]
async fn room_grants_decide_where_a_token_user_may_read_and_post() {
    let (app, _dir) = server_with_secret().await;
    let token = hs256(&claims("erin", 600, Some(&["team-*", "news:read"])));
    let (mut erin, ..) = JsonClient::connect_with_token(app.address, &token).await;
    erin.enter("team-red", "erin", None).await;
    erin.say("in my team").await;
    assert_eq!(erin.next_chat().await.text.as_str(), "in my team");

    for stranger in ["lobby", "teams", "newsroom"] {
        erin.send_join(stranger, "erin", None).await;
        match next_event(&mut erin).await {
            ServerMessage::Error { code: ErrorCode::Forbidden, .. } => {}
            other => panic!("expected forbidden for {stranger}, got {other:?}"),
        }
    }

    // Read only: in, history and live messages, but no posts and no typing.
    let mut editor = JsonClient::join(app.address, "editor").await;
    editor.enter("news", "editor", None).await;
    editor.say("first story").await;
    editor.next_chat().await;
    let (history, _) = erin.enter("news", "erin", None).await;
    assert_eq!(history.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["first story"]);
    let post = ClientMessage::Send {
        room: room("news"),
        client_id: ClientId::parse("c-1").expect("id"),
        text: MessageText::parse("mine").expect("text"),
    };
    erin.send(&post).await;
    match next_event(&mut erin).await {
        ServerMessage::Error { code: ErrorCode::Forbidden, message } => {
            assert!(message.contains("not post"), "{message}")
        }
        other => panic!("expected forbidden, got {other:?}"),
    }
    erin.send(&ClientMessage::Typing { room: room("news") }).await;
    // Answered after the typing was handled (frames are handled in order).
    erin.send(&post).await;
    assert!(matches!(next_event(&mut erin).await, ServerMessage::Error { code: ErrorCode::Forbidden, .. }));
    editor.say("second story").await;
    assert_eq!(erin.next_chat().await.text.as_str(), "second story");
    loop {
        match editor.next().await {
            ServerMessage::Message(m) if m.text.as_str() == "second story" => break,
            ServerMessage::Typing { nick: who, .. } => panic!("a reader's typing reached the room: {who}"),
            _ => {}
        }
    }
}

#[actix_web::test]
async fn a_token_is_warned_before_it_expires_and_closed_with_4001_at_its_expiry() {
    let (app, _dir) = server_with_secret().await;
    let token = hs256(&claims("frank", 3, None));
    let issued = Instant::now();
    let (mut frank, ..) = JsonClient::connect_with_token(app.address, &token).await;
    frank.enter("lobby", "frank", None).await;
    let warned = loop {
        match frank.next().await {
            ServerMessage::TokenExpiring { expires_in } => break expires_in,
            _ => continue,
        }
    };
    assert!(warned <= 2, "warned {warned} s ahead");
    let code = frank.raw().close_code_within(Duration::from_secs(5)).await;
    assert_eq!(code, Some(CLOSE_TOKEN_EXPIRED));
    // Its exp is a whole second: the close comes within a second after it, never before.
    let lived = issued.elapsed();
    assert!(lived >= Duration::from_secs(2) && lived < Duration::from_secs(5), "closed after {lived:?}");
}

#[actix_web::test]
async fn a_refresh_keeps_the_connection_past_the_old_expiry_and_must_be_for_the_same_user() {
    let (app, _dir) = server_with_secret().await;
    let (mut grace, ..) = JsonClient::connect_with_token(app.address, &hs256(&claims("grace", 3, None))).await;
    grace.enter("lobby", "grace", None).await;
    grace.send(&ClientMessage::Refresh { token: hs256(&claims("heidi", 600, None)) }).await;
    match next_event(&mut grace).await {
        ServerMessage::Error { code: ErrorCode::TokenInvalid, message } => assert!(message.contains("same user")),
        other => panic!("expected a refused refresh, got {other:?}"),
    }
    grace.send(&ClientMessage::Refresh { token: hs256(&claims("grace", 600, None)) }).await;
    match next_event(&mut grace).await {
        ServerMessage::Authenticated { expires_in, .. } => assert!(expires_in > 500),
        other => panic!("expected authenticated, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    grace.say("still here").await;
    assert_eq!(grace.next_chat().await.text.as_str(), "still here");
}

#[actix_web::test]
async fn a_refresh_that_drops_the_room_takes_the_connection_out_of_it() {
    let (app, _dir) = server_with_secret().await;
    let (mut ivan, ..) =
        JsonClient::connect_with_token(app.address, &hs256(&claims("ivan", 600, Some(&["ops"])))).await;
    ivan.enter("ops", "ivan", None).await;
    let mut other = JsonClient::join(app.address, "watcher").await;
    other.enter("ops", "watcher", None).await;
    ivan.send(&ClientMessage::Refresh { token: hs256(&claims("ivan", 600, Some(&["lobby"]))) }).await;
    match next_event(&mut ivan).await {
        ServerMessage::Error { code: ErrorCode::Forbidden, .. } => {}
        other => panic!("expected forbidden, got {other:?}"),
    }
    loop {
        match other.next().await {
            ServerMessage::MemberLeft { nick: who, .. } if who == nick("ivan") => break,
            _ => {}
        }
    }
    other.say("after ivan left").await;
    other.next_chat().await;
    let heard = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if let ServerMessage::Message(message) = ivan.next().await {
                return message;
            }
        }
    })
    .await;
    assert!(heard.is_err(), "a member taken out of the room still heard {heard:?}");
}

#[actix_web::test]
async fn authenticate_as_the_first_frame_and_never_after_a_join() {
    let (app, _dir) = server_with_secret().await;
    let mut judy = JsonClient::connect(app.address).await;
    judy.send(&ClientMessage::Authenticate { token: hs256(&claims("judy", 600, None)) }).await;
    assert!(matches!(judy.next().await, ServerMessage::Authenticated { .. }));
    judy.enter("lobby", "judy", None).await;

    let mut guest = JsonClient::join(app.address, "guest").await;
    guest.send(&ClientMessage::Authenticate { token: hs256(&claims("mallory", 600, None)) }).await;
    match guest.next().await {
        ServerMessage::Error { code: ErrorCode::InvalidMessage, .. } => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    guest.say("still a guest").await;
    assert_eq!(guest.next_chat().await.nick, nick("guest"));
}

#[actix_web::test]
async fn with_guests_off_only_signed_in_users_and_token_holders_join() {
    let (app, _dir) = server_with_secret_and(|config| config.guests = Switch::Off).await;
    let mut guest = JsonClient::connect(app.address).await;
    guest.send_join("lobby", "guest", None).await;
    match guest.next().await {
        ServerMessage::Error { code: ErrorCode::SignInRequired, .. } => {}
        other => panic!("expected sign_in_required, got {other:?}"),
    }
    let plain = tokio_tungstenite::connect_async(format!("ws://{}/", app.address)).await;
    assert!(plain.is_err(), "the plain endpoint's clients are guests");

    let (mut holder, ..) = JsonClient::connect_with_token(app.address, &hs256(&claims("kim", 600, None))).await;
    holder.enter("lobby", "kim", None).await;
    let registered = support::accounts::credentials(app.address, "/api/register", "lee", "a long passphrase").await;
    assert_eq!(registered.status, 201);
    let mut lee = JsonClient::connect_with_cookie(app.address, registered.cookie.as_deref()).await;
    lee.enter("lobby", "lee", None).await;
    lee.say("members only").await;
    assert_eq!(holder.next_chat().await.text.as_str(), "members only");
}

#[actix_web::test]
async fn a_bearer_token_answers_who_am_i_over_http() {
    let (app, _dir) = server_with_secret().await;
    let me = |authorization: String| {
        let client = reqwest::Client::new();
        let url = format!("http://{}/api/me", app.address);
        async move { client.get(url).header("authorization", authorization).send().await.expect("answered") }
    };
    let answer = me(format!("Bearer {}", hs256(&claims("mia", 600, None)))).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), r#"{"username":"mia"}"#);
    let expired = hs256(&Claims { exp: now() - 5, ..claims("mia", 0, None) });
    let answer = me(format!("Bearer {expired}")).await;
    assert_eq!(answer.status(), 401);
    assert!(answer.text().await.expect("body").contains("expired"));
}

#[actix_web::test]
async fn the_token_command_mints_what_the_server_takes() {
    let dir = tempfile::tempdir().expect("dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).expect("secret written");
    let minted = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["token", "--sub", "nora", "--rooms", "team-*,news:read", "--ttl", "10m", "--jwt-hs256-secret-file"])
        .arg(&secret)
        .output()
        .expect("runs");
    assert!(minted.status.success(), "{}", String::from_utf8_lossy(&minted.stderr));
    let token = String::from_utf8(minted.stdout).expect("utf-8");
    let app = TestApp::spawn_configured(|config| config.jwt_hs256_secret_file = Some(secret.clone())).await;
    let (mut nora, name, expires_in) = JsonClient::connect_with_token(app.address, token.trim()).await;
    assert_eq!(name, nick("nora"));
    assert!((590..=600).contains(&expires_in), "{expires_in}");
    nora.enter("team-blue", "nora", None).await;
    nora.send_join("lobby", "nora", None).await;
    assert!(matches!(next_event(&mut nora).await, ServerMessage::Error { code: ErrorCode::Forbidden, .. }));

    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["token", "--sub", "nora", "--rooms", "Team", "--jwt-hs256-secret-file"])
        .arg(&secret)
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("room grant"));
}

#[actix_web::test]
async fn no_path_reaches_a_room_the_token_does_not_grant() {
    let (app, _dir) = server_with_secret().await;
    let mut inside = JsonClient::join(app.address, "insider").await;
    inside.enter("secret-plans", "insider", None).await;
    inside.say("the plan").await;
    inside.next_chat().await;

    let (mut olga, ..) =
        JsonClient::connect_with_token(app.address, &hs256(&claims("olga", 600, Some(&["team-*"])))).await;
    olga.enter("team-a", "olga", None).await;
    let forbidden_or_not_joined = |answer: ServerMessage| match answer {
        ServerMessage::Error { code: ErrorCode::Forbidden | ErrorCode::NotJoined, .. } => {}
        other => panic!("a path into the room answered {other:?}"),
    };
    // A join, a resume from id 0, older and newer pages, a post and typing.
    olga.send_join("secret-plans", "olga", None).await;
    forbidden_or_not_joined(next_event(&mut olga).await);
    olga.send_join("secret-plans", "olga", Some(0)).await;
    forbidden_or_not_joined(next_event(&mut olga).await);
    let room_of = || room("secret-plans");
    for request in [
        ClientMessage::History { room: room_of(), before: 1_000, limit: 50 },
        ClientMessage::HistoryAfter { room: room_of(), after: 0, limit: 50 },
        ClientMessage::Send {
            room: room_of(),
            client_id: ClientId::parse("c-9").expect("id"),
            text: MessageText::parse("let me in").expect("text"),
        },
    ] {
        olga.send(&request).await;
        forbidden_or_not_joined(next_event(&mut olga).await);
    }
    olga.send(&ClientMessage::Typing { room: room_of() }).await;
    // Nothing of the room came through any of them, and nothing of olga reached it.
    let leaked = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match olga.next().await {
                ServerMessage::Message(m) if m.room == room_of() => return format!("{m:?}"),
                ServerMessage::History { room: r, messages, .. } if r == room_of() => return format!("{messages:?}"),
                _ => {}
            }
        }
    })
    .await;
    assert!(leaked.is_err(), "leaked: {leaked:?}");
    inside.say("still only us").await;
    assert_eq!(inside.next_chat().await.text.as_str(), "still only us");
}

#[actix_web::test]
async fn a_token_good_for_ever_does_not_break_the_server() {
    let (app, _dir) = server_with_secret().await;
    let endless = hs256(&Claims { exp: u64::MAX, ..claims("quinn", 0, None) });
    let (mut quinn, _, expires_in) = JsonClient::connect_with_token(app.address, &endless).await;
    assert!(expires_in <= 366 * 24 * 3600, "held for at most a year: {expires_in}");
    quinn.enter("lobby", "quinn", None).await;
    quinn.say("still standing").await;
    assert_eq!(quinn.next_chat().await.text.as_str(), "still standing");
}

#[actix_web::test]
async fn a_token_that_grants_every_room_still_enters_no_private_room() {
    let (app, _dir) = server_with_secret().await;
    let alice = support::accounts::registered(app.address, "alice").await;
    let body = serde_json::json!({ "name": "ops", "private": true });
    let created = support::accounts::api(reqwest::Method::POST, app.address, "/api/rooms", Some(body), &alice).await;
    assert_eq!(created.status, 201);
    // Even one whose user is named like a member: a token's user is not an account here.
    let (mut holder, ..) = JsonClient::connect_with_token(app.address, &hs256(&claims("alice", 600, None))).await;
    holder.send_join("ops", "alice", None).await;
    match next_event(&mut holder).await {
        ServerMessage::Error { code: ErrorCode::Forbidden, .. } => {}
        other => panic!("expected forbidden, got {other:?}"),
    }
    holder.enter("lobby", "alice", None).await;
}
