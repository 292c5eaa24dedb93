//! Where cijob keeps what outlives a run (fetched includes, stored artifacts and caches):
//! an override variable, else `$XDG_CACHE_HOME/cijob/<what>`, else `~/.cache/cijob/<what>`.

use std::path::PathBuf;

/// `$<override_var>`, else cijob's `what` folder under the user's cache directory; `None`
/// when the environment names none.
pub(crate) fn dir(override_var: &str, what: &str) -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = env(override_var) {
        return Some(PathBuf::from(dir));
    }
    let base = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("cijob").join(what))
}
