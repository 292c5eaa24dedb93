//! What loading produces: the merged document, the files it came from, and where each
//! top-level key was defined (for messages that point at a file and line).

use std::collections::HashMap;
use std::path::PathBuf;

use crate::error::ConfigError;
use crate::load::yaml::{self, Mapping};

/// One file that took part in the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    /// Path as shown to the user: relative to the project root when inside it; for fetched
    /// files, what was included (`template:NAME`, a URL, `project:P/FILE@REF`...).
    pub display: PathBuf,
    pub text: String,
    /// Line of each top-level key, indexed on first use (one scan per file, not per job).
    pub key_lines: std::sync::OnceLock<HashMap<String, usize>>,
}

impl SourceFile {
    pub fn key_line(&self, key: &str) -> Option<usize> {
        self.key_lines
            .get_or_init(|| yaml::top_level_key_lines(&self.text))
            .get(key)
            .copied()
    }
}

/// The configuration after every include has been merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub config: Mapping,
    pub files: Vec<SourceFile>,
    /// Top-level key -> index in `files` of the last file that defined it.
    pub origins: HashMap<String, usize>,
    /// Lines to show the user (cache used, include skipped...), without the `warning:` prefix.
    pub warnings: Vec<String>,
    /// Includes skipped because they were unavailable (with `allow_missing`).
    pub missing: Vec<String>,
}

impl Merged {
    /// File and 1-based line of a top-level key, found by scanning the defining file.
    pub fn key_location(&self, key: &str) -> Option<(PathBuf, Option<usize>)> {
        let file = self.files.get(*self.origins.get(key)?)?;
        Some((file.display.clone(), file.key_line(key)))
    }

    /// A `ConfigError` located at a top-level key (falls back to the root file).
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let err = ConfigError::new(message);
        match self.key_location(key) {
            Some((file, Some(line))) => {
                let text = self.files[self.origins[key]].text.as_str();
                err.in_file(file).at(line, None).with_source(text)
            }
            Some((file, None)) => err.in_file(file),
            None => match self.files.first() {
                Some(f) => err.in_file(f.display.clone()),
                None => err,
            },
        }
    }
}
