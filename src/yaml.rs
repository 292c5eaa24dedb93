//! All YAML handling lives here so that swapping the YAML crate stays local.

pub use serde_yaml::{Mapping, Sequence, Value};

use crate::error::ConfigError;
use std::path::Path;

/// Parse one YAML document (the first of the file) into a tree with `<<` merges applied.
pub fn parse(text: &str, file: &Path) -> Result<Value, ConfigError> {
    let mut value: Value = serde_yaml::from_str(text).map_err(|e| located(&e, file, text))?;
    value.apply_merge().map_err(|e| located(&e, file, text))?;
    Ok(value)
}

/// Render a value as YAML text.
pub fn to_string(value: &Value) -> String {
    serde_yaml::to_string(value).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
}

fn located(e: &serde_yaml::Error, file: &Path, text: &str) -> ConfigError {
    let mut err = ConfigError::new(e.to_string()).in_file(file);
    if let Some(loc) = e.location() {
        err = err.at(loc.line(), Some(loc.column())).with_source(text);
    }
    err
}
