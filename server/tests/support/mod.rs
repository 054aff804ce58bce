//! Shared by the relay's integration tests: the relay binary as a process, and tokens.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, Stdio},
};

use weft_relay::auth::{Claims, Grant, mint};

/// The relay binary started on `data` with extra flags: the process, its URL (read from
/// its log), and the lines it logged before listening.
pub(crate) fn start_binary(data: &Path, flags: &[&str]) -> (RelayProcess, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft-relay"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
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
    // Keep draining its log so it never blocks on a full pipe; kept beside the data
    // folder, for a failed test to be looked into.
    let mut kept = std::fs::File::create(data.with_extension("log")).ok();
    for line in &before {
        if let Some(file) = kept.as_mut() {
            let _ = writeln!(file, "{line}");
        }
    }
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Some(file) = kept.as_mut() {
                let _ = writeln!(file, "{line}");
            }
        }
    });
    (RelayProcess(child), format!("ws://{address}"), before)
}

/// A relay process, killed if it is still running when dropped (a test that failed half
/// way leaves no relay behind).
pub(crate) struct RelayProcess(pub(crate) Child);

impl std::ops::Deref for RelayProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for RelayProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Stops the relay process with SIGTERM and checks it exits 0.
pub(crate) fn terminate(mut relay: RelayProcess) {
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
    mint(secret, &claims(read, write, seconds)).unwrap()
}

/// The claims of [`token`].
pub(crate) fn claims(read: Grant, write: Grant, seconds: i64) -> Claims {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    Claims {
        sub: "test".to_owned(),
        exp: (now + seconds).max(0) as u64,
        read,
        write,
        relay: false,
    }
}
