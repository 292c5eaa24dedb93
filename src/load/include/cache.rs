//! On-disk copies of fetched includes, so that a later run works without the network.
//!
//! One file per URL: `<dir>/<fnv64 of the URL>-<readable tail>.yml`. The URL (never a
//! token: tokens travel in headers) is the key, so the same file fetched for two projects
//! is stored once. Writes go through a temporary file and a rename, so a crashed run never
//! leaves half a file behind.

use std::path::{Path, PathBuf};

/// Where cached includes live: `$CIJOB_CACHE_DIR`, else `$XDG_CACHE_HOME/cijob/includes`,
/// else `~/.cache/cijob/includes`.
pub fn default_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = env("CIJOB_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    Some(cijob_cache_home()?.join("includes"))
}

/// `$XDG_CACHE_HOME/cijob`, else `~/.cache/cijob`.
pub fn cijob_cache_home() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let base = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("cijob"))
}

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `url`'s body.
    pub fn path_for(&self, url: &str) -> PathBuf {
        let tail: String = url
            .rsplit('/')
            .next()
            .unwrap_or("")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        self.dir.join(format!("{:016x}-{tail}.cache", fnv64(url)))
    }

    pub fn get(&self, url: &str) -> Option<String> {
        std::fs::read_to_string(self.path_for(url)).ok()
    }

    /// Store a copy; failures are reported to the caller, which only warns (the fetch worked).
    pub fn put(&self, url: &str, body: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path_for(url);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

/// FNV-1a: stable across Rust versions (unlike `DefaultHasher`), so cache names stay valid.
fn fnv64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_distinct_names() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path().join("sub"));
        assert_eq!(c.get("https://x/a.yml"), None);
        c.put("https://x/a.yml", "a: 1\n").unwrap();
        assert_eq!(c.get("https://x/a.yml").as_deref(), Some("a: 1\n"));
        assert_ne!(c.path_for("https://x/a.yml"), c.path_for("https://y/a.yml"));
        assert!(c
            .path_for("https://x/api?ref=v1&x=/y")
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .is_ascii());
    }
}
