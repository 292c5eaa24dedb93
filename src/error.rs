//! Errors the user sees, rendered in one place with a deliberate exit code.

use std::path::PathBuf;

/// Exit codes cijob uses for its own failures. A failed job's exit code passes through
/// unchanged, so these are chosen to match conventions users already know
/// (`docker run` uses 125 for daemon errors, shells use 128+N for signals).
pub mod exit {
    pub const USAGE: u8 = 2;
    pub const TIMEOUT: u8 = 124;
    pub const DOCKER: u8 = 125;
    pub const INTERRUPTED_HUP: u8 = 129;
    pub const INTERRUPTED_INT: u8 = 130;
    pub const INTERRUPTED_TERM: u8 = 143;
}

/// A problem in the user's configuration, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub message: String,
    pub file: Option<PathBuf>,
    /// 1-based.
    pub line: Option<usize>,
    /// 1-based.
    pub column: Option<usize>,
    /// The offending source line, shown under the message.
    pub source_line: Option<String>,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            file: None,
            line: None,
            column: None,
            source_line: None,
        }
    }

    pub fn in_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub fn at(mut self, line: usize, column: Option<usize>) -> Self {
        self.line = Some(line);
        self.column = column;
        self
    }

    /// Fill in `source_line` from the file's text when a line is known.
    pub fn with_source(mut self, text: &str) -> Self {
        if let Some(line) = self.line {
            self.source_line = text.lines().nth(line.saturating_sub(1)).map(str::to_owned);
        }
        self
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
                if let Some(col) = self.column {
                    write!(f, ":{col}")?;
                }
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)?;
        if let (Some(src), Some(line)) = (&self.source_line, self.line) {
            let gutter = line.to_string();
            write!(f, "\n {gutter} | {src}")?;
            if let Some(col) = self.column {
                let pad = " ".repeat(gutter.len());
                let caret_pad: String = src
                    .chars()
                    .take(col.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                write!(f, "\n {pad} | {caret_pad}^")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("Cannot talk to the Docker daemon: {0}")]
    Docker(String),
    /// The daemon stopped answering after cijob had started using it: the connection broke,
    /// or it went silent. What the run created may still be on the daemon.
    #[error("Lost the connection to the Docker daemon (at {host}): {cause}\nhint: what the run had created may still be there (its containers may still be running); once the daemon answers again, `cijob clean` removes it")]
    DaemonLost { host: String, cause: String },
    /// The daemon answered but could not pull an image (registry refusal, unknown image...).
    #[error("{0}")]
    Pull(String),
    /// The job ran and failed; its log already said why. Carries the job's exit code.
    #[error("job failed with exit code {0}")]
    JobFailed(i64),
    #[error("job timed out")]
    Timeout,
    #[error("interrupted by {0}")]
    Interrupted(Signal),
    /// cijob itself could not do what was asked on this machine (the terminal, a file, the
    /// async runtime, a kept run that is not there...): exit 1, not a usage error.
    #[error("{0}")]
    Failed(String),
}

/// The signals that interrupt a run; each ends cijob with its shell exit code (128+N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Hup,
    Int,
    Term,
}

impl Signal {
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Hup => exit::INTERRUPTED_HUP,
            Signal::Int => exit::INTERRUPTED_INT,
            Signal::Term => exit::INTERRUPTED_TERM,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Hup => "SIGHUP",
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
        })
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Usage(_) => exit::USAGE,
            Error::Docker(_) | Error::DaemonLost { .. } | Error::Pull(_) => exit::DOCKER,
            Error::JobFailed(code) => u8::try_from(*code).ok().filter(|c| *c != 0).unwrap_or(1),
            Error::Timeout => exit::TIMEOUT,
            Error::Interrupted(signal) => signal.exit_code(),
            Error::Failed(_) => 1,
        }
    }

    /// Whether the error still needs printing (a failed job has already said why).
    pub fn is_silent(&self) -> bool {
        matches!(self, Error::JobFailed(_) | Error::Timeout)
    }
}
