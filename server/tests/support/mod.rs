//! Shared by the relay's integration tests: the relay binary as a process, and tokens.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
};

use weft_relay::auth::{Claims, Grant, mint};

/// The relay binary started on `data` with extra flags: the process, its URL (read from
/// its log), and the lines it logged before listening.
pub(crate) fn start_binary(data: &Path, flags: &[&str]) -> (Child, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft-relay"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(flags)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut before = Vec::new();
    let address = loop {
        let line = lines
            .next()
            .expect("the relay logs before exiting")
            .unwrap();
        if let Some(rest) = line.split("address=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
        before.push(line);
    };
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, format!("ws://{address}"), before)
}

/// Stops the relay process with SIGTERM and checks it exits 0.
pub(crate) fn terminate(mut relay: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &relay.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = relay.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}

/// A token signed with `secret`, valid for `seconds` from now (negative: expired).
pub(crate) fn token(secret: &[u8], read: Grant, write: Grant, seconds: i64) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let claims = Claims {
        sub: "test".to_owned(),
        exp: (now + seconds).max(0) as u64,
        read,
        write,
    };
    mint(secret, &claims).unwrap()
}
