//! Concurrency slots: two runs of one project at once never share a project volume. A run
//! holds its slot with an exclusive `flock` on `<state dir>/<volume>.lock` for as long as
//! it lives (the kernel releases it when the process dies, however it dies), and skips a
//! slot whose volume a container still uses (a `--keep` run, or one that was killed).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::execute::docker::Engine;
use crate::plan::sources::MAX_SLOTS;

/// A slot held until dropped.
#[derive(Debug)]
pub struct Slot {
    pub id: u32,
    _lock: std::fs::File,
}

/// Where project volume manifests and slot locks live: `$CIJOB_STATE_DIR`, else
/// `$XDG_CACHE_HOME/cijob/volumes`, else `~/.cache/cijob/volumes` (beside the artifact
/// store's `projects/`).
pub fn state_dir() -> Option<PathBuf> {
    crate::cache_home::dir("CIJOB_STATE_DIR", "volumes")
}

/// The first free slot: its lock taken, its volume used by no container.
pub async fn acquire(
    engine: &Engine,
    dir: &Path,
    volume_for: impl Fn(u32) -> String,
) -> Result<Slot, Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Failed(format!("creating {}: {e}", dir.display())))?;
    for id in 0..MAX_SLOTS {
        let volume = volume_for(id);
        let Some(lock) = try_lock(&dir.join(format!("{volume}.lock")))? else {
            continue;
        };
        if engine.volume_in_use(&volume).await? {
            continue;
        }
        return Ok(Slot { id, _lock: lock });
    }
    Err(Error::Failed(format!(
        "all {MAX_SLOTS} project volumes of this project are in use (by running or kept jobs): `cijob clean` removes kept ones"
    )))
}

/// `volume`'s lock when no run holds it (for `cijob clean`, which removes the volume while
/// holding it); `None` when a run does.
pub fn hold_if_free(dir: &Path, volume: &str) -> Result<Option<std::fs::File>, Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Failed(format!("creating {}: {e}", dir.display())))?;
    try_lock(&dir.join(format!("{volume}.lock")))
}

/// The lock file, locked; `None` when another process holds it.
fn try_lock(path: &Path) -> Result<Option<std::fs::File>, Error> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::Failed(format!("opening {}: {e}", path.display())))?;
    // SAFETY: flock on a descriptor this function owns.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(Some(file));
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(Error::Failed(format!("locking {}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_skipped_and_released_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("v.lock");
        let held = try_lock(&p).unwrap().expect("free");
        // flock locks belong to the open file description: a second open conflicts.
        assert!(try_lock(&p).unwrap().is_none());
        drop(held);
        assert!(try_lock(&p).unwrap().is_some());
    }
}
