//! Rooms, unique nicknames, presence, typing and the room list, over real sockets.

mod support;

use chat_shared::limits::PRESENCE_EVENTS_MAX;
use chat_shared::{ClientId, ClientMessage, ErrorCode, ServerMessage};
use support::{JsonClient, TestApp, nick, room};

#[actix_web::test]
async fn rooms_keep_their_messages_apart() {
    let app = TestApp::spawn().await;
    let mut lobby = JsonClient::join(app.address, "alice").await;
    let mut dev = JsonClient::connect(app.address).await;
    dev.enter("dev", "bob", None).await;

    dev.say("only in dev").await;
    let message = dev.next_chat().await;
    assert_eq!((message.room.as_str(), message.id), ("dev", 1), "ids count per room");
    let sent = lobby.say("only in lobby").await;
    let message = lobby.next_chat().await;
    assert_eq!((message.room.as_str(), message.text.as_str()), ("lobby", "only in lobby"));
    lobby.next_ack(&sent).await;
    // Switching rooms shows that room's history, not the other's.
    let (history, _) = lobby.enter("dev", "alice", None).await;
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["only in dev"]);
}

#[actix_web::test]
async fn a_nickname_is_unique_within_a_room_only() {
    let app = TestApp::spawn().await;
    let _alice = JsonClient::join(app.address, "alice").await;
    let mut impostor = JsonClient::connect(app.address).await;
    impostor.send_join("lobby", "alice", None).await;
    match impostor.next().await {
        ServerMessage::Error { code: ErrorCode::NicknameTaken, message } => {
            assert!(message.contains("alice"), "{message}")
        }
        other => panic!("expected nickname_taken, got {other:?}"),
    }
    // The same name is free in another room.
    impostor.enter("dev", "alice", None).await;
}

#[actix_web::test]
async fn the_same_tab_reconnecting_takes_over_its_nickname() {
    let app = TestApp::spawn().await;
    let mut old = JsonClient::connect_as_tab(app.address, "tab-x").await;
    old.enter("lobby", "alice", None).await;
    let mut bob = JsonClient::join(app.address, "bob").await;

    let mut new = JsonClient::connect_as_tab(app.address, "tab-x").await;
    new.enter("lobby", "alice", None).await;
    // The stale link is closed (with a close frame, not just dropped), and
    // nobody sees alice leave and come back.
    assert_eq!(old.raw().close_code().await, 1008, "the stale link is replaced");
    new.say("still me").await;
    let seen = bob.next().await;
    assert!(matches!(&seen, ServerMessage::Message(m) if m.text.as_str() == "still me"), "got {seen:?}");
}

#[actix_web::test]
async fn members_see_each_other_arrive_and_leave() {
    let app = TestApp::spawn().await;
    let mut alice = JsonClient::connect(app.address).await;
    alice.send_join("lobby", "alice", None).await;
    assert!(matches!(alice.next().await, ServerMessage::Joined { members, .. } if members == [nick("alice")]));
    assert!(matches!(alice.next().await, ServerMessage::History { .. }));

    let mut bob = JsonClient::connect(app.address).await;
    bob.send_join("lobby", "bob", None).await;
    match bob.next().await {
        ServerMessage::Joined { members, .. } => assert_eq!(members, [nick("alice"), nick("bob")]),
        other => panic!("expected joined, got {other:?}"),
    }
    assert!(matches!(bob.next().await, ServerMessage::History { .. }));
    assert_eq!(alice.next().await, ServerMessage::MemberJoined { room: room("lobby"), nick: nick("bob") });

    // Moving to another room is leaving this one.
    bob.enter("dev", "bob", None).await;
    assert_eq!(alice.next().await, ServerMessage::MemberLeft { room: room("lobby"), nick: nick("bob") });
    bob.enter("lobby", "bob", None).await;
    assert_eq!(alice.next().await, ServerMessage::MemberJoined { room: room("lobby"), nick: nick("bob") });
    bob.close().await;
    assert_eq!(alice.next().await, ServerMessage::MemberLeft { room: room("lobby"), nick: nick("bob") });
}

#[actix_web::test]
async fn typing_reaches_the_others_in_the_room_only() {
    let app = TestApp::spawn().await;
    let mut alice = JsonClient::join(app.address, "alice").await;
    let mut bob = JsonClient::join(app.address, "bob").await;
    let mut carol = JsonClient::connect(app.address).await;
    carol.enter("dev", "carol", None).await;
    assert!(matches!(alice.next().await, ServerMessage::MemberJoined { .. }));

    bob.send(&ClientMessage::Typing { room: room("lobby") }).await;
    assert_eq!(alice.next().await, ServerMessage::Typing { room: room("lobby"), nick: nick("bob") });
    // Not echoed to the typist, not seen in other rooms: the next thing both get is a message.
    bob.say("done typing").await;
    assert!(matches!(bob.next().await, ServerMessage::Message(_)));
    carol.say("dev talk").await;
    assert!(matches!(carol.next().await, ServerMessage::Message(m) if m.text.as_str() == "dev talk"));
}

#[actix_web::test]
async fn the_room_list_counts_who_is_online() {
    let app = TestApp::spawn().await;
    let _alice = JsonClient::join(app.address, "alice").await;
    let mut bob = JsonClient::connect(app.address).await;
    bob.enter("dev", "bob", None).await;
    // The watcher's `joined` carries the list; counts reach it on a timer,
    // so it may take a later list to show both rooms.
    watch_room_list(app.address, &[("dev", 1), ("lobby", 1), ("watch", 1)]).await;
}

/// Joins #watch and waits until its room list (the one in `joined`, or a
/// later one) shows exactly `expected`.
async fn watch_room_list(address: std::net::SocketAddr, expected: &[(&str, u32)]) {
    let mut watcher = JsonClient::connect(address).await;
    watcher.send_join("watch", "watcher", None).await;
    match watcher.next_any().await {
        ServerMessage::Joined { rooms, .. } => {
            let counts: Vec<(&str, u32)> = rooms.iter().map(|r| (r.name.as_str(), r.online)).collect();
            if counts != expected {
                wait_for_room_list(&mut watcher, expected).await;
            }
        }
        other => panic!("expected joined, got {other:?}"),
    }
}

/// Reads room lists until one shows exactly `expected` (names and counts),
/// within the test's patience.
async fn wait_for_room_list(client: &mut JsonClient, expected: &[(&str, u32)]) {
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    loop {
        if let ServerMessage::Rooms { rooms } = client.next_any().await {
            let counts: Vec<(&str, u32)> = rooms.iter().map(|r| (r.name.as_str(), r.online)).collect();
            if counts == expected {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "room list never showed {expected:?}");
    }
}

#[actix_web::test]
async fn crowded_rooms_skip_per_member_presence_events() {
    let app = TestApp::spawn_configured(|c| c.max_connections_per_ip = 1_000).await;
    let mut first = JsonClient::join(app.address, "first").await;
    let mut crowd = Vec::new();
    for n in 0..PRESENCE_EVENTS_MAX + 5 {
        crowd.push(JsonClient::join(app.address, &format!("member{n:03}")).await);
    }
    // The first member heard about joins until the room passed the limit, then nothing more.
    let mut heard = 0;
    loop {
        match first.next().await {
            ServerMessage::MemberJoined { .. } => heard += 1,
            ServerMessage::Message(m) if m.text.as_str() == "marker" => break,
            other => panic!("unexpected {other:?}"),
        }
        if heard == PRESENCE_EVENTS_MAX - 1 {
            crowd[0].say("marker").await;
        }
    }
    assert_eq!(heard, PRESENCE_EVENTS_MAX - 1, "join events stop once the room is crowded");
    // Nor typing events: one per keystroke burst to hundreds of members.
    crowd[1].send(&ClientMessage::Typing { room: room("lobby") }).await;
    crowd[2].say("after typing").await;
    match first.next().await {
        ServerMessage::Message(m) => assert_eq!(m.text.as_str(), "after typing", "no typing event came first"),
        other => panic!("unexpected {other:?}"),
    }
    let mut late = JsonClient::connect(app.address).await;
    late.send_join("lobby", "late", None).await;
    match late.next().await {
        ServerMessage::Joined { members, .. } => {
            let limit = PRESENCE_EVENTS_MAX;
            assert!((limit..=limit + 1).contains(&members.len()), "{limit} names, plus the joiner if not among them");
            assert!(members.contains(&nick("late")));
            assert!(members.is_sorted(), "sorted by name, the joiner included: {members:?}");
        }
        other => panic!("expected joined, got {other:?}"),
    }
}

/// What the web client does once a crowd has thinned (its names went stale
/// while the room was too big for presence events): it joins the room it is
/// in again. It gets the names as they are now and what it missed, and
/// nobody hears it leave or arrive.
#[actix_web::test]
async fn joining_the_room_one_is_in_again_brings_the_names_as_they_are_and_tells_nobody() {
    let app = TestApp::spawn_configured(|c| c.max_connections_per_ip = 1_000).await;
    let mut first = JsonClient::connect_as_tab(app.address, "first-tab").await;
    first.send_join("lobby", "first", None).await;
    let epoch = match first.next().await {
        ServerMessage::Joined { epoch, .. } => epoch,
        other => panic!("expected joined, got {other:?}"),
    };
    assert!(matches!(first.next().await, ServerMessage::History { .. }));
    let mut crowd = Vec::new();
    for n in 0..PRESENCE_EVENTS_MAX + 5 {
        crowd.push(JsonClient::join(app.address, &format!("member{n:03}")).await);
    }
    crowd[0].say("seen").await;
    let seen = first.next_chat().await.id;
    // 20 leave, unannounced in a crowded room; 86 stay.
    for member in crowd.drain(..20) {
        member.close().await;
    }
    crowd[0].say("missed").await;
    let stay = 1 + crowd.len() as u32;
    wait_for_room_list(&mut first, &[("lobby", stay)]).await;
    let mut watcher = JsonClient::join(app.address, "watcher").await;

    first
        .send(&ClientMessage::Join {
            room: room("lobby"),
            nick: nick("first"),
            tab: ClientId::parse("first-tab").expect("tab"),
            after: Some(seen),
            epoch: Some(epoch),
        })
        .await;
    let mut expected: Vec<_> = (20..PRESENCE_EVENTS_MAX + 5).map(|n| nick(&format!("member{n:03}"))).collect();
    expected.extend([nick("first"), nick("watcher")]);
    expected.sort();
    loop {
        match first.next().await {
            ServerMessage::Joined { mut members, resumed, .. } => {
                members.sort();
                assert_eq!(members, expected, "every name as it is now, none that left");
                assert!(resumed, "the log goes on");
                break;
            }
            // Live events before the answer (the "missed" message went out live too).
            ServerMessage::Message(_) | ServerMessage::MemberJoined { .. } => {}
            other => panic!("expected joined, got {other:?}"),
        }
    }
    match first.next().await {
        ServerMessage::History { messages, .. } => {
            let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
            assert_eq!(texts, ["missed"], "what came after the last message it held");
        }
        other => panic!("expected history, got {other:?}"),
    }
    crowd[1].say("marker").await;
    match watcher.next().await {
        ServerMessage::Message(m) => assert_eq!(m.text.as_str(), "marker", "nobody heard first leave or arrive"),
        other => panic!("unexpected {other:?}"),
    }
}

/// Reads room lists for `window`, returning each (names and counts).
async fn room_lists_during(client: &mut JsonClient, window: std::time::Duration) -> Vec<Vec<(String, u32)>> {
    let mut lists = Vec::new();
    let _ = tokio::time::timeout(window, async {
        loop {
            if let ServerMessage::Rooms { rooms } = client.next_any().await {
                lists.push(rooms.into_iter().map(|r| (r.name.to_string(), r.online)).collect());
            }
        }
    })
    .await;
    lists
}

#[actix_web::test]
async fn the_room_list_is_bounded_and_room_hopping_does_not_flood_everyone() {
    let app = TestApp::spawn_configured(|c| c.max_connections_per_ip = 1_000).await;
    // 22 busy rooms of two members: more than the 20 every client is shown.
    let mut members = Vec::new();
    for n in 0..22 {
        for who in ["a", "b"] {
            let mut member = JsonClient::connect(app.address).await;
            member.enter(&format!("busy-{n:02}"), who, None).await;
            members.push(member);
        }
    }
    let mut watcher = JsonClient::join(app.address, "watcher").await;
    let lists = room_lists_during(&mut watcher, std::time::Duration::from_millis(2_500)).await;
    let last = lists.last().expect("a room list");
    assert!(last.len() <= 21 + 1, "20 busiest, the lobby, the watcher's own: {last:?}");

    // Someone hops through 30 new rooms of one member: the busiest do not
    // change, so the watcher (in the lobby) hears nothing of it.
    let mut hopper = JsonClient::connect(app.address).await;
    for n in 0..30 {
        hopper.enter(&format!("hop-{n:02}"), "hopper", None).await;
    }
    let lists = room_lists_during(&mut watcher, std::time::Duration::from_millis(2_500)).await;
    assert!(lists.is_empty(), "the watcher got {} room lists", lists.len());
    // The hopper's own list shows its room, with itself counted.
    let lists = room_lists_during(&mut hopper, std::time::Duration::from_millis(1_500)).await;
    let last = lists.last().expect("the hopper's view changed: it gets a list");
    assert!(last.contains(&("hop-29".to_owned(), 1)), "{last:?}");
}

#[actix_web::test]
async fn rooms_in_use_are_capped() {
    let app = TestApp::spawn_configured(|c| c.max_rooms = 2).await;
    let _alice = JsonClient::join(app.address, "alice").await;
    let mut bob = JsonClient::connect(app.address).await;
    bob.enter("dev", "bob", None).await;
    let mut carol = JsonClient::connect(app.address).await;
    carol.send_join("third", "carol", None).await;
    match carol.next().await {
        ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::RoomLimit),
        other => panic!("expected room_limit, got {other:?}"),
    }
    // An existing room is still open to her.
    carol.enter("dev", "carol", None).await;
}

#[actix_web::test]
async fn members_on_different_workers_hear_every_message_once_in_order() {
    // Sessions spread over the workers round-robin, so each worker's relay
    // holds some members of the room.
    let app = TestApp::spawn_configured(|config| config.workers = std::num::NonZeroUsize::new(3)).await;
    let mut members = Vec::new();
    for n in 0..7 {
        let mut client = JsonClient::connect(app.address).await;
        client.enter("dev", &format!("m{n}"), None).await;
        members.push(client);
    }
    let mut elsewhere = JsonClient::connect(app.address).await;
    elsewhere.enter("ops", "outsider", None).await;

    const EACH: usize = 20;
    for round in 0..EACH {
        for (n, sender) in members.iter_mut().take(3).enumerate() {
            sender.say(&format!("{n}/{round}")).await;
        }
    }
    for member in &mut members {
        let mut seen = Vec::new();
        while seen.len() < 3 * EACH {
            seen.push(member.next_chat().await.id);
        }
        assert_eq!(seen, (1..=3 * EACH as u64).collect::<Vec<_>>(), "every message once, in id order");
    }
    // Nothing of #dev reached #ops: its first message is its own, numbered 1.
    elsewhere.say("hello ops").await;
    let first = elsewhere.next_chat().await;
    assert_eq!((first.room.as_str(), first.id), ("ops", 1));
}

#[actix_web::test]
async fn of_many_tabs_racing_for_one_nickname_exactly_one_gets_it() {
    let app = TestApp::spawn().await;
    let mut racers = Vec::new();
    for _ in 0..24 {
        racers.push(JsonClient::connect(app.address).await);
    }
    // Every join is on the wire before any answer is read.
    for racer in &mut racers {
        racer.send_join("dev", "alice", None).await;
    }
    let (mut joined, mut taken) = (0, 0);
    for racer in &mut racers {
        match racer.next().await {
            ServerMessage::Joined { nick: name, .. } => {
                assert_eq!(name, nick("alice"));
                joined += 1;
            }
            ServerMessage::Error { code: ErrorCode::NicknameTaken, .. } => taken += 1,
            other => panic!("expected joined or nickname_taken, got {other:?}"),
        }
    }
    assert_eq!((joined, taken), (1, 23));
}

/// Joins `room` as `name`, retrying while the name's last holder is still
/// being let go (its release follows its departure by a moment).
async fn join_when_free(client: &mut JsonClient, room_name: &str, name: &str) {
    let started = std::time::Instant::now();
    while started.elapsed() < support::PATIENCE {
        client.send_join(room_name, name, None).await;
        match client.next().await {
            ServerMessage::Joined { .. } => {
                // Live events of the room may come before its history (as in `enter`).
                loop {
                    match client.next().await {
                        ServerMessage::History { .. } => return,
                        ServerMessage::MemberJoined { .. }
                        | ServerMessage::MemberLeft { .. }
                        | ServerMessage::Typing { .. }
                        | ServerMessage::Message(_) => {}
                        other => panic!("expected history, got {other:?}"),
                    }
                }
            }
            ServerMessage::Error { code: ErrorCode::NicknameTaken, .. } => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => panic!("expected joined or nickname_taken, got {other:?}"),
        }
    }
    panic!("{name} was not free in #{room_name} within {:?}", support::PATIENCE);
}

#[actix_web::test]
async fn a_nickname_is_given_back_when_its_holder_moves_on_or_leaves() {
    let app = TestApp::spawn().await;
    let mut alice = JsonClient::connect(app.address).await;
    alice.enter("dev", "alice", None).await;
    alice.enter("ops", "alice", None).await;
    // Moving to #ops gave "alice" in #dev back...
    let mut second = JsonClient::connect(app.address).await;
    join_when_free(&mut second, "dev", "alice").await;
    // ...but not in #ops, where she is now.
    let mut third = JsonClient::connect(app.address).await;
    third.send_join("ops", "alice", None).await;
    assert!(matches!(third.next().await, ServerMessage::Error { code: ErrorCode::NicknameTaken, .. }));
    // Renaming within a room gives the old name back too.
    alice.enter("ops", "alicia", None).await;
    join_when_free(&mut third, "ops", "alice").await;
    // And a closed connection's name is free again.
    alice.close().await;
    let mut fourth = JsonClient::connect(app.address).await;
    join_when_free(&mut fourth, "ops", "alicia").await;
}

#[actix_web::test]
async fn moving_between_rooms_of_different_shards_is_leaving_one_and_joining_the_other() {
    // With 2 workers there are 2 hub shards; #lobby and #ops hash to
    // different ones (a unit test of the hub pins that).
    let app = TestApp::spawn_configured(|config| config.workers = std::num::NonZeroUsize::new(2)).await;
    let mut alice = JsonClient::join(app.address, "alice").await;
    let mut olga = JsonClient::connect(app.address).await;
    olga.enter("ops", "olga", None).await;
    let mut bob = JsonClient::join(app.address, "bob").await;
    assert_eq!(alice.next().await, ServerMessage::MemberJoined { room: room("lobby"), nick: nick("bob") });

    bob.enter("ops", "bob", None).await;
    assert_eq!(alice.next().await, ServerMessage::MemberLeft { room: room("lobby"), nick: nick("bob") });
    assert_eq!(olga.next().await, ServerMessage::MemberJoined { room: room("ops"), nick: nick("bob") });
    let sent = bob.say("in ops").await;
    bob.next_ack(&sent).await;
    let said = olga.next_chat().await;
    assert_eq!((said.room.as_str(), said.id, said.nick.as_str()), ("ops", 1, "bob"));
    // The lobby's name was given back: someone else may take it now.
    let mut other_bob = JsonClient::connect(app.address).await;
    join_when_free(&mut other_bob, "lobby", "bob").await;
    assert_eq!(alice.next().await, ServerMessage::MemberJoined { room: room("lobby"), nick: nick("bob") });
    other_bob.close().await;
    assert_eq!(alice.next().await, ServerMessage::MemberLeft { room: room("lobby"), nick: nick("bob") });

    join_when_free(&mut bob, "lobby", "bob").await;
    assert_eq!(olga.next().await, ServerMessage::MemberLeft { room: room("ops"), nick: nick("bob") });
    assert_eq!(alice.next().await, ServerMessage::MemberJoined { room: room("lobby"), nick: nick("bob") });
    bob.close().await;
    assert_eq!(alice.next().await, ServerMessage::MemberLeft { room: room("lobby"), nick: nick("bob") });

    // The room list adds up the shards' counts: lobby 1 (alice), ops 1 (olga),
    // and the watcher's own room.
    watch_room_list(app.address, &[("lobby", 1), ("ops", 1), ("watch", 1)]).await;
}

#[actix_web::test]
async fn rooms_of_different_shards_are_sequenced_apart_while_both_are_busy() {
    let app = TestApp::spawn_configured(|config| config.workers = std::num::NonZeroUsize::new(2)).await;
    let mut rooms: Vec<Vec<JsonClient>> = Vec::new();
    for room_name in ["lobby", "ops"] {
        let mut members = Vec::new();
        for n in 0..4 {
            let mut client = JsonClient::connect(app.address).await;
            client.enter(room_name, &format!("m{n}"), None).await;
            members.push(client);
        }
        rooms.push(members);
    }
    const EACH: usize = 25;
    for round in 0..EACH {
        for members in &mut rooms {
            for sender in members.iter_mut().take(2) {
                sender.say(&format!("r{round}")).await;
            }
        }
    }
    for (members, room_name) in rooms.iter_mut().zip(["lobby", "ops"]) {
        for member in members {
            let mut seen = Vec::new();
            while seen.len() < 2 * EACH {
                let message = member.next_chat().await;
                assert_eq!(message.room.as_str(), room_name, "only its own room's messages");
                seen.push(message.id);
            }
            assert_eq!(seen, (1..=2 * EACH as u64).collect::<Vec<_>>(), "every message once, in id order");
        }
    }
}

/// Frames written to JSON clients so far, server-wide (from `/metrics`).
async fn json_frames_out(app: &TestApp) -> u64 {
    let text =
        reqwest::get(format!("http://{}/metrics", app.address)).await.expect("metrics").text().await.expect("body");
    text.lines()
        .find_map(|line| line.strip_prefix("chat_messages_out_total{endpoint=\"json\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no json frame counter in\n{text}"))
}

/// Waits until the server has written nothing for 1.6 s (room lists go out
/// once counts have been still for 1 s), and returns the frame count then.
async fn frames_once_quiet(app: &TestApp) -> u64 {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut last = json_frames_out(app).await;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(1_600)).await;
        let now = json_frames_out(app).await;
        if now == last || tokio::time::Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Everything `client` is sent within `window`.
async fn frames_within(client: &mut JsonClient, window: std::time::Duration) -> Vec<ServerMessage> {
    let mut frames = Vec::new();
    let _ = tokio::time::timeout(window, async {
        loop {
            frames.push(client.next_any().await);
        }
    })
    .await;
    frames
}

/// What `joiners` more joins cost the server in a room of `members`: frames
/// written, besides room lists, per join; and how many room lists a member
/// who was already there received meanwhile (every member got as many).
async fn cost_of_joining(members: usize, joiners: usize) -> (f64, usize) {
    let app = TestApp::spawn_configured(|c| c.max_connections_per_ip = 1_000).await;
    let mut observer = JsonClient::join(app.address, "observer").await;
    let mut crowd = Vec::new();
    for n in 1..members {
        crowd.push(JsonClient::join(app.address, &format!("member{n:03}")).await);
    }
    let before = frames_once_quiet(&app).await;
    // What the observer was sent so far (join events, room lists) is not counted.
    frames_within(&mut observer, std::time::Duration::from_millis(300)).await;
    let mut late = Vec::new();
    for n in 0..joiners {
        late.push(JsonClient::join(app.address, &format!("late{n:03}")).await);
    }
    let after = frames_once_quiet(&app).await;
    let seen = frames_within(&mut observer, std::time::Duration::from_millis(300)).await;
    let lists = seen.iter().filter(|f| matches!(f, ServerMessage::Rooms { .. })).count();
    assert_eq!(lists, seen.len(), "a member of a crowded room hears nothing per join but room lists: {seen:?}");
    // The joiners' room lists (they may have missed a round, or had one while joining).
    let mut joiner_lists = 0;
    for client in &mut late {
        let frames = frames_within(client, std::time::Duration::from_millis(50)).await;
        assert!(frames.iter().all(|f| matches!(f, ServerMessage::Rooms { .. })), "{frames:?}");
        joiner_lists += (frames.len() + client.skipped_room_lists) as u64;
    }
    let lists_written = (lists * members) as u64 + joiner_lists;
    let besides_lists = (after - before)
        .checked_sub(lists_written)
        .unwrap_or_else(|| panic!("{lists_written} room lists counted, but only {} frames written", after - before));
    (besides_lists as f64 / joiners as f64, lists)
}

#[actix_web::test]
async fn joining_costs_the_same_few_frames_whatever_the_room_size() {
    // Guards the reconnect storm: per join, the server writes `joined` (which
    // carries the room list) and `history`, nothing to the members already
    // there; room lists are coalesced rounds, not one per join.
    for members in [PRESENCE_EVENTS_MAX + 20, 3 * PRESENCE_EVENTS_MAX] {
        let (per_join, lists) = cost_of_joining(members, 20).await;
        assert_eq!(per_join, 2.0, "frames per join besides room lists, in a room of {members}");
        assert!((1..=2).contains(&lists), "20 joins cost the room {lists} room-list rounds, in a room of {members}");
    }
}
