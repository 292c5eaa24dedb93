//! A real terminal for the tests: cijob in a tmux session on a private server socket.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{bin, unique};

/// A tmux session on a private server socket, killed on drop.
pub struct Tmux {
    session: String,
}

impl Tmux {
    pub fn start(dir: &std::path::Path, args: &str) -> Self {
        let session = unique("tmux");
        let cmd = format!(
            "cd '{}' && env NO_COLOR=1 '{}' {args}; echo CIJOB_EXIT=$?; sleep 600",
            dir.display(),
            bin().display()
        );
        let st = Command::new("tmux")
            .args([
                "-L",
                "cijob-tests",
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "200",
                "-y",
                "50",
                &cmd,
            ])
            .status()
            .expect("tmux must be installed (scripts/setup-docker.sh installs it)");
        assert!(st.success());
        Self { session }
    }

    pub fn screen(&self) -> String {
        let o = Command::new("tmux")
            .args([
                "-L",
                "cijob-tests",
                "capture-pane",
                "-p",
                "-J",
                "-S",
                "-2000",
                "-t",
                &self.session,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    #[track_caller]
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_for_n(needle, 1)
    }

    /// Wait until `needle` appears at least `n` times on the screen.
    #[track_caller]
    pub fn wait_for_n(&self, needle: &str, n: usize) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.matches(needle).count() >= n {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {needle:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn keys(&self, keys: &[&str]) {
        let st = Command::new("tmux")
            .args(["-L", "cijob-tests", "send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Type literally (no key-name interpretation).
    pub fn type_text(&self, text: &str) {
        let st = Command::new("tmux")
            .args([
                "-L",
                "cijob-tests",
                "send-keys",
                "-l",
                "-t",
                &self.session,
                text,
            ])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// The pid of the command the pane's shell runs (cijob), to signal it alone: Ctrl-C
    /// would signal the shell too.
    #[track_caller]
    pub fn command_pid(&self) -> i32 {
        let o = Command::new("tmux")
            .args(["-L", "cijob-tests", "display-message", "-p", "-t"])
            .args([&self.session, "#{pane_pid}"])
            .output()
            .unwrap();
        let shell = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let children = format!("/proc/{shell}/task/{shell}/children");
        let start = Instant::now();
        loop {
            let list = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = list.split_whitespace().next() {
                return pid.parse().unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the pane's shell ({shell}) runs no command"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[track_caller]
    pub fn exit_code(&self) -> i32 {
        let s = self.wait_for("CIJOB_EXIT=");
        let tail = &s[s.rfind("CIJOB_EXIT=").unwrap() + "CIJOB_EXIT=".len()..];
        tail.lines().next().unwrap().trim().parse().unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", "cijob-tests", "kill-session", "-t", &self.session])
            .status();
    }
}
