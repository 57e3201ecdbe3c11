//! The several-node deployment: two release `chat-server` nodes on one
//! PostgreSQL history and one Redis, behind a real nginx balancing them. Two
//! people in browsers on different nodes chat as on one server; the node of
//! one of them is killed mid-conversation and the browser comes back through
//! the survivor, with nothing missed.

use std::net::SocketAddr;

use chat_e2e::{
    Artefacts, Browser, Chromedriver, Nginx, RedisServer, ServerProcess, eventually, free_port, fresh_postgres_database,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How many JSON sockets `node` has open, from its `/metrics`.
async fn json_sockets(node: SocketAddr) -> u64 {
    let mut stream = tokio::net::TcpStream::connect(node).await.expect("connects");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {node}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("response");
    response
        .lines()
        .find_map(|line| line.strip_prefix("chat_open_connections{endpoint=\"json\"} ")?.trim().parse().ok())
        .expect("the open-connections metric")
}

/// How many JSON sockets each of `nodes` has open.
async fn sockets(nodes: &[&ServerProcess]) -> Vec<u64> {
    let mut counts = Vec::new();
    for node in nodes {
        counts.push(json_sockets(node.address).await);
    }
    counts
}

/// Opens the chat through nginx as `nick`, pinned to node `node` by nginx's
/// cookie (set on the page's origin before the chat loads), and checks that
/// its socket is on that node and no other.
async fn user_on_node(
    driver: &Chromedriver,
    nginx: &Nginx,
    nodes: &[&ServerProcess],
    nick: &str,
    node: usize,
) -> Browser {
    let before = sockets(nodes).await;
    let browser = driver.browser(1280, 800).await;
    // Any page of the origin will do to set its cookie; this one opens no socket.
    browser.goto(&nginx.url("/healthz")).await;
    let cookie = format!("document.cookie = '{}={node}; path=/'", Nginx::PIN_COOKIE);
    browser.client.execute(&cookie, Vec::new()).await.expect("cookie set");
    browser.goto(&nginx.url("/")).await;
    browser.join(nick).await;
    let mut expected = before;
    expected[node] += 1;
    eventually(&format!("{nick}'s socket on node {node}"), || async {
        (sockets(nodes).await == expected).then_some(())
    })
    .await;
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_on_two_nodes_chat_and_one_comes_back_through_the_survivor_when_its_node_dies() {
    let Some(database) = fresh_postgres_database("chat_e2e_two_nodes").await else { return };
    let redis = RedisServer::start().await;
    let artefacts = Artefacts::locate();
    let public = free_port();
    let origin = format!("http://{public}");
    let state = tempfile::tempdir().expect("state dir");
    let flags = ["--redis", &redis.url, "--trusted-proxy", "127.0.0.1/32", "--public-origin", &origin];
    let start = || ServerProcess::start_node(&artefacts.server_bin, &artefacts.dist, &database, state.path(), &flags);
    let mut nodes = [Some(start().await), Some(start().await)];
    let live: Vec<&ServerProcess> = nodes.iter().flatten().collect();
    let nginx = Nginx::balancing(public, &[live[0].address, live[1].address]).await;
    let driver = Chromedriver::start().await;

    let alice_node = 0;
    let alice = user_on_node(&driver, &nginx, &live, "alice", alice_node).await;
    let bob = user_on_node(&driver, &nginx, &live, "bob", 1).await;
    alice.wait_until_member("bob").await;
    bob.wait_until_member("alice").await;
    alice.send_with_enter("hello from the other node").await;
    bob.wait_for_message("alice", "hello from the other node").await;
    bob.send_with_enter("hi across").await;
    alice.wait_for_message("bob", "hi across").await;

    // Alice's node dies (SIGKILL); bob's goes on, and he keeps talking.
    if let Some(node) = nodes[alice_node].take() {
        node.kill().await;
    }
    bob.send_with_enter("are you still there?").await;
    // Alice's page reconnects through nginx, which now reaches only the survivor
    // (her node's backup),
    // takes her name back and resumes after the last message she had.
    alice.wait_for_connection_state("connected").await;
    alice.wait_for_message("bob", "are you still there?").await;
    alice.send_with_enter("back, through the other node").await;
    bob.wait_for_message("alice", "back, through the other node").await;
    alice.wait_until_member("bob").await;
    bob.wait_until_member("alice").await;
    // Nothing twice.
    let texts: Vec<String> = alice.log().await.into_iter().map(|line| line.text).collect();
    for text in ["hello from the other node", "hi across", "are you still there?"] {
        assert_eq!(texts.iter().filter(|t| *t == text).count(), 1, "{text:?} in {texts:?}");
    }
    alice.close().await;
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_restarts_empty_a_newcomer_gets_in_by_itself_and_every_list_is_right() {
    let Some(database) = fresh_postgres_database("chat_e2e_redis_restart").await else { return };
    let mut redis = RedisServer::start().await;
    let artefacts = Artefacts::locate();
    let state = tempfile::tempdir().expect("state dir");
    let flags = ["--redis", &redis.url];
    let start = || ServerProcess::start_node(&artefacts.server_bin, &artefacts.dist, &database, state.path(), &flags);
    let nodes = [start().await, start().await];
    let driver = Chromedriver::start().await;
    let open = |node: usize| {
        let (driver, url) = (&driver, format!("http://{}/", nodes[node].address));
        async move {
            let browser = driver.browser(1280, 800).await;
            browser.goto(&url).await;
            browser
        }
    };
    let alice = open(0).await;
    alice.join("alice").await;
    let bob = open(1).await;
    bob.join("bob").await;
    alice.wait_until_member("bob").await;

    redis.restart_empty().await;
    // Carol arrives while the nodes are still taking their names back: her
    // join is refused for now, and her page asks again by itself.
    let carol = open(1).await;
    carol.join("carol").await;
    for browser in [&alice, &bob, &carol] {
        eventually("every list names all three", || async {
            let mut members = browser.members().await;
            members.sort();
            (members == ["alice", "bob", "carol"]).then_some(())
        })
        .await;
    }
    bob.send_with_enter("after the restart").await;
    alice.wait_for_message("bob", "after the restart").await;
    carol.wait_for_message("bob", "after the restart").await;
    for browser in [alice, bob, carol] {
        browser.close().await;
    }
}
