//! Two instances of the notes app on a local network find each other over mDNS and sync,
//! with no relay and no address given. The network is made by the test: two network
//! namespaces joined by a veth pair (multicast on loopback alone is not a LAN), each
//! instance in one, in tmux, typed into and read as a person would.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod support;

use std::process::Command;

use support::{Terminal, quit_and_count_documents};

/// Two network namespaces joined by a veth pair (10.77.x.1 and .2), deleted when dropped.
struct Lan {
    namespaces: [String; 2],
}

impl Lan {
    /// Makes the network, or says why it cannot be made here.
    fn new() -> Result<Self, String> {
        let tag = std::process::id() % 100_000;
        let namespaces = [format!("weft-a-{tag}"), format!("weft-b-{tag}")];
        let lan = Self {
            namespaces: namespaces.clone(),
        };
        let [a, b] = &namespaces;
        let (va, vb) = (format!("wa{tag}"), format!("wb{tag}"));
        let subnet = tag % 250;
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), a.clone()],
            vec!["netns".into(), "add".into(), b.clone()],
            split(&format!(
                "link add {va} netns {a} type veth peer name {vb} netns {b}"
            )),
            split(&format!("-n {a} addr add 10.77.{subnet}.1/24 dev {va}")),
            split(&format!("-n {b} addr add 10.77.{subnet}.2/24 dev {vb}")),
            split(&format!("-n {a} link set {va} up")),
            split(&format!("-n {b} link set {vb} up")),
            split(&format!("-n {a} link set lo up")),
            split(&format!("-n {b} link set lo up")),
        ];
        for step in steps {
            let output = Command::new("ip")
                .args(&step)
                .output()
                .map_err(|error| format!("ip: {error}"))?;
            if !output.status.success() {
                return Err(format!(
                    "`ip {}` failed: {}",
                    step.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
        Ok(lan)
    }

    /// The command prefix that runs a program in namespace `index`.
    fn exec(&self, index: usize) -> [&str; 4] {
        ["ip", "netns", "exec", &self.namespaces[index]]
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for namespace in &self.namespaces {
            let _ = Command::new("ip")
                .args(["netns", "del", namespace])
                .status();
        }
    }
}

fn split(command: &str) -> Vec<String> {
    command.split_whitespace().map(String::from).collect()
}

#[test]
fn two_instances_on_a_lan_find_each_other_and_sync() {
    let lan = match Lan::new() {
        Ok(lan) => lan,
        // Network namespaces need CAP_NET_ADMIN (root); CI and the dev machines have it.
        Err(reason) if std::env::var("WEFT_REQUIRE_NETNS").is_ok_and(|v| v == "1") => {
            panic!("cannot make the test network: {reason}")
        }
        Err(reason) => {
            eprintln!("SKIPPED: cannot make the test network: {reason}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let args = |db: &'static str| ["--db", db, "--notebook", "lan test", "--lan"];
    let a = Terminal::start_with(&lan.exec(0), dir.path(), &args("a.db"));
    let b = Terminal::start_with(&lan.exec(1), dir.path(), &args("b.db"));
    a.write_note("Found on the LAN by A", "from namespace a");
    b.write_note("Found on the LAN by B", "from namespace b");
    for (name, terminal) in [("A", &a), ("B", &b)] {
        terminal.wait_for(&format!("{name} to show both notes"), |screen| {
            screen.contains("Found on the LAN by A") && screen.contains("Found on the LAN by B")
        });
    }
    // One of them dialled the other's LAN address (10.77.x.x, not loopback).
    let dialled = [&a, &b]
        .iter()
        .map(|terminal| terminal.screen())
        .find(|screen| screen.contains("ws://10.77."));
    let screen = dialled.expect("one instance dialled the other's LAN address");
    assert!(screen.contains(": connected"), "{screen}");
    // An instance of another notebook on the same LAN is not dialled and gets nothing.
    let c = Terminal::start_with(
        &lan.exec(1),
        dir.path(),
        &["--db", "c.db", "--notebook", "other", "--lan"],
    );
    c.wait_for("C's screen", |screen| screen.contains("0 notes"));
    std::thread::sleep(std::time::Duration::from_secs(3));
    let screen = c.screen();
    assert!(
        !screen.contains("Found on the LAN") && !screen.contains("ws://"),
        "{screen}"
    );
    assert_eq!(
        quit_and_count_documents(&c, &dir.path().join("c.db")),
        1,
        "C stores its own notebook only"
    );
    drop((a, b));
}
