//! An error tied to a top-level key of the merged configuration; the loader turns it into
//! a located `ConfigError` (it knows which file defined the key).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// Top-level key (job name, `default`...) the problem belongs to.
    pub key: String,
    pub message: String,
}

impl KeyError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}
