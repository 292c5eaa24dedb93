//! cijob's own lines (stage headers, warnings, errors), on stderr, styled like the runner's
//! job log and honouring NO_COLOR/--no-color. Job output never passes through here.

pub(crate) mod masking;

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::ui::masking::Masker;

#[derive(Clone)]
pub struct Ui {
    color: bool,
    /// Secrets are masked in cijob's own lines too (image names, errors...).
    secrets: Arc<Vec<String>>,
    lock: Arc<Mutex<()>>,
}

const CYAN_BOLD: &str = "\x1b[36;1m";
const GREEN_BOLD: &str = "\x1b[32;1m";
const YELLOW: &str = "\x1b[0;33m";
const RED_BOLD: &str = "\x1b[31;1m";
const RESET: &str = "\x1b[0;m";

impl Ui {
    pub fn new(no_color_flag: bool) -> Self {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = !no_color_flag && !no_color_env && console::Term::stderr().is_term();
        Self {
            color,
            secrets: Arc::new(Vec::new()),
            lock: Arc::new(Mutex::new(())),
        }
    }

    pub fn with_secrets(&self, secrets: Vec<String>) -> Self {
        Self {
            secrets: Arc::new(secrets),
            ..self.clone()
        }
    }

    fn emit(&self, style: &str, prefix: &str, msg: &str) {
        let msg = if self.secrets.is_empty() {
            msg.to_string()
        } else {
            Masker::new(self.secrets.iter().cloned()).mask_str(msg)
        };
        let _guard = self.lock.lock();
        let mut err = std::io::stderr().lock();
        let _ = if self.color && !style.is_empty() {
            writeln!(err, "{style}{prefix}{msg}{RESET}")
        } else {
            writeln!(err, "{prefix}{msg}")
        };
    }

    /// A stage header (`Preparing the "docker" executor`), bold cyan like the runner's.
    pub fn section(&self, msg: &str) {
        self.emit(CYAN_BOLD, "", msg);
    }

    /// A plain log line.
    pub fn line(&self, msg: &str) {
        self.emit("", "", msg);
    }

    /// A success line (`Job succeeded`).
    pub fn info(&self, msg: &str) {
        self.emit(GREEN_BOLD, "", msg);
    }

    pub fn warning(&self, msg: &str) {
        self.emit(YELLOW, "WARNING: ", msg);
    }

    pub fn error(&self, msg: &str) {
        self.emit(RED_BOLD, "ERROR: ", msg);
    }

    /// Raw text to stderr (already formatted, e.g. the service health-check block).
    pub fn raw(&self, text: &str) {
        let _guard = self.lock.lock();
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }

    /// The runner's yellow `*** WARNING:` marker, coloured only when colour is on.
    pub fn yellow(&self, s: &str) -> String {
        if self.color {
            format!("{YELLOW}{s}{RESET}")
        } else {
            s.to_string()
        }
    }
}
