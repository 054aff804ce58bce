//! The notes app used as a person uses it: in a terminal (tmux), typing keys and reading
//! the screen, with real SQLite files and a real relay on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

mod support;

use support::{Terminal, free_port, quit_and_count_documents, wait_exit};
use weft_relay::{RelayConfig, auth::Anonymous, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_write_offline_then_meet_through_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let relay_url = format!("ws://127.0.0.1:{port}/");
    let args = |db: &'static str| {
        ["--db", db, "--notebook", "shared", "--relay", &relay_url].map(String::from)
    };
    let (a_args, b_args) = (args("a.db"), args("b.db"));
    let a = Terminal::start(
        dir.path(),
        &a_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let b = Terminal::start(
        dir.path(),
        &b_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    // No relay yet: each writes a note offline; each sees only its own.
    for terminal in [&a, &b] {
        terminal.wait_for("the offline state", |screen| screen.contains("offline"));
    }
    a.write_note("Note from A", "written on a");
    b.write_note("Note from B", "written on b");
    assert!(!a.screen().contains("Note from B"), "{}", a.screen());
    assert!(!b.screen().contains("Note from A"), "{}", b.screen());

    // The relay comes up on the address both dial: both screens show both notes.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let config =
        RelayConfig::new(dir.path().join("relay")).with_anonymous(Some(Anonymous::ReadWrite));
    let (stop_relay, relay_stopped) = tokio::sync::oneshot::channel::<()>();
    let relay = tokio::spawn(run(listener, config, async {
        let _ = relay_stopped.await;
    }));
    for (name, terminal) in [("A", &a), ("B", &b)] {
        let screen = tokio::task::block_in_place(|| {
            terminal.wait_for(&format!("{name} to show both notes, connected"), |screen| {
                screen.contains("Note from A")
                    && screen.contains("Note from B")
                    && screen.contains("2 notes")
                    && screen.contains(": connected")
            })
        });
        assert!(screen.contains(&relay_url), "{screen}");
    }

    // A opens B's note: B's text is there, not just its title.
    let screen = a.screen();
    let b_listed_first = screen.find("Note from B") < screen.find("Note from A");
    a.press(&[if b_listed_first { "Up" } else { "Down" }]);
    tokio::task::block_in_place(|| {
        a.wait_for("B's note open on A", |screen| {
            screen.contains("written on b")
        })
    });

    // A quits; started again with no relay, it shows both notes from its SQLite file.
    a.press(&["q"]);
    tokio::task::block_in_place(|| wait_exit(&a));
    let again = Terminal::start(dir.path(), &["--db", "a.db", "--notebook", "shared"]);
    tokio::task::block_in_place(|| {
        again.wait_for("both notes after a restart, offline", |screen| {
            screen.contains("Note from A")
                && screen.contains("Note from B")
                && screen.contains("notes stay on this device")
        })
    });
    drop((again, b));
    let _ = stop_relay.send(());
    relay.await.unwrap().unwrap();
}

#[test]
fn two_instances_sync_directly_without_a_relay() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let peer = format!("ws://{address}/");

    // B dials A, which is not running yet: B writes offline.
    let b = Terminal::start(
        dir.path(),
        &["--db", "b.db", "--notebook", "pair", "--peer", &peer],
    );
    b.wait_for("B offline", |screen| screen.contains("offline"));
    b.write_note("Written by B", "before A was up");

    // A starts listening and writes too; B's next attempt connects, and both have both.
    let a = Terminal::start(
        dir.path(),
        &["--db", "a.db", "--notebook", "pair", "--listen", &address],
    );
    a.write_note("Written by A", "after B");
    for (name, terminal) in [("A", &a), ("B", &b)] {
        terminal.wait_for(&format!("{name} to show both notes"), |screen| {
            screen.contains("Written by A") && screen.contains("Written by B")
        });
    }
    b.wait_for("B connected", |screen| screen.contains(": connected"));
    a.wait_for("A's listener counting B", |screen| {
        screen.contains("(1 connected in all)")
    });

    // An instance of another notebook is refused by A, and gets nothing of it.
    let c = Terminal::start(
        dir.path(),
        &["--db", "c.db", "--notebook", "other", "--peer", &peer],
    );
    let screen = c.wait_for("C refused", |screen| {
        screen.contains("refused by the peer: unauthorized: this instance has another notebook")
    });
    assert!(
        screen.contains("0 notes") && !screen.contains("Written by"),
        "{screen}"
    );
    assert_eq!(
        quit_and_count_documents(&c, &dir.path().join("c.db")),
        1,
        "C stores its own notebook only"
    );
}
