//! Shared by the notes app's tests: the app in a tmux session, read and typed into as a
//! person would.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    process::Command,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

/// How long a screen may take to show what is expected (the dialler backs off while the
/// relay is down, up to several seconds between attempts).
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// `weft-notes` running in a tmux session of its own (on a tmux server of its own, so the
/// test never touches anyone's tmux), killed when dropped.
pub(crate) struct Terminal {
    socket: String,
}

impl Terminal {
    pub(crate) fn start(dir: &Path, args: &[&str]) -> Self {
        Self::start_with(&[], dir, args)
    }

    /// Like [`start`](Self::start), the app run through `wrapper` (such as
    /// `ip netns exec NAME`): the tmux server, and so the app, run inside it.
    pub(crate) fn start_with(wrapper: &[&str], dir: &Path, args: &[&str]) -> Self {
        static SESSIONS: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "weft-notes-test-{}-{}",
            std::process::id(),
            SESSIONS.fetch_add(1, Ordering::Relaxed)
        );
        let mut command = vec![quote(env!("CARGO_BIN_EXE_weft-notes"))];
        command.extend(args.iter().map(|arg| quote(arg)));
        let mut tmux = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut wrapped = Command::new(program);
                wrapped.args(rest).arg("tmux");
                wrapped
            }
            None => Command::new("tmux"),
        };
        let status = tmux
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-x",
                "110",
                "-y",
                "30",
                "-c",
            ])
            .arg(dir)
            .arg(command.join(" "))
            .status()
            .expect("tmux runs (scripts/setup installs it)");
        assert!(status.success(), "tmux new-session failed");
        Self { socket }
    }

    pub(crate) fn tmux(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Presses named keys (`Enter`, `Escape`, `Down`, or a single character).
    pub(crate) fn press(&self, keys: &[&str]) {
        for key in keys {
            self.tmux(&["send-keys", "-t", "0", key]);
        }
    }

    /// Types text literally.
    pub(crate) fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "0", "-l", text]);
    }

    pub(crate) fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "0"])
    }

    /// Waits until the screen satisfies `done`; fails showing the screen.
    pub(crate) fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; the screen shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes a new note: `n`, its title, Enter, its body, Escape; waits until it is listed.
    pub(crate) fn write_note(&self, title: &str, body: &str) {
        self.wait_for("the list", |screen| screen.contains("n new"));
        self.press(&["n"]);
        self.type_text(title);
        self.press(&["Enter"]);
        self.wait_for("the new note's editor", |screen| {
            screen.contains("editing:")
        });
        self.type_text(body);
        self.wait_for("the body typed", |screen| screen.contains(body));
        self.press(&["Escape"]);
        self.wait_for("back to the list", |screen| screen.contains("n new"));
    }

    pub(crate) fn has_exited(&self) -> bool {
        !Command::new("tmux")
            .args(["-L", &self.socket, "has-session"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

pub(crate) fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// A free port on 127.0.0.1 (nothing listens on it when this returns).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for a tmux session's program to exit (after `q`).
pub(crate) fn wait_exit(terminal: &Terminal) {
    let deadline = Instant::now() + PATIENCE;
    while !terminal.has_exited() {
        assert!(Instant::now() < deadline, "the app did not quit");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Quits the app in `terminal` and returns how many documents its notes file `db` holds.
pub(crate) fn quit_and_count_documents(terminal: &Terminal, db: &Path) -> usize {
    terminal.press(&["q"]);
    wait_exit(terminal);
    documents_in(db)
}

/// How many documents the notes file at `db` holds (read after its app quit).
fn documents_in(db: &Path) -> usize {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let repo = weft::Repo::open(db).await.unwrap();
        let count = repo.list().await.unwrap().len();
        repo.close().await.unwrap();
        count
    })
}
