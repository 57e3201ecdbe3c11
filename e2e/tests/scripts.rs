//! The scripts a newcomer types: `scripts/run` announces the address the
//! server will really listen on, whichever way `--bind` is given.

use std::process::Command;

fn bind_address(args: &[&str], env: Option<&str>) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut command = Command::new("bash");
    command.arg("-c").arg(format!("source {root}/scripts/tools.sh && bind_address \"$@\"")).arg("bind_address");
    command.args(args).env_remove("CHAT_BIND");
    if let Some(bind) = env {
        command.env("CHAT_BIND", bind);
    }
    let output = command.output().expect("bash runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

#[test]
fn run_announces_the_address_it_is_given() {
    assert_eq!(bind_address(&[], None), "127.0.0.1:8080");
    assert_eq!(bind_address(&[], Some("0.0.0.0:9000")), "0.0.0.0:9000");
    assert_eq!(bind_address(&["--bind", "127.0.0.1:9001"], Some("0.0.0.0:9000")), "127.0.0.1:9001");
    assert_eq!(bind_address(&["--rate-limit", "0", "--bind=[::1]:9002"], None), "[::1]:9002");
}
