//! What an update of the project volume must do, from three views of it: the tree the job
//! must see (the host), what cijob last put there (the manifest) and what is there now (the
//! helper's listing). Pure. A file is left alone only when all three agree: its content is
//! what was sent (same stat key on the host, or the same hash), and the volume still shows
//! the size, mode and mtime it was sent with. Whatever a job did to a file changes one of
//! those (writing sets the mtime, chmod the mode, deleting removes it).

use std::collections::{HashMap, HashSet};

use crate::execute::sources::listing::{Kind, Listed};
use crate::execute::sources::manifest::{Hash, Manifest, Record};
use crate::plan::sources::Clean;
use crate::project::tree::{Entry, Want};

/// Modes of the runner's `umask 0000` clone.
pub const FILE_MODE: u32 = 0o666;
pub const EXEC_MODE: u32 = 0o777;
pub const DIR_MODE: u32 = 0o777;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    /// Why everything is copied again, when it is.
    pub full: Option<String>,
    /// Host entries to send (indices), directories included.
    pub send: Vec<usize>,
    /// Paths to remove (`rm -rf`, relative to the project dir) before anything is sent.
    pub delete: Vec<String>,
    /// The project dir itself needs its mode (it is sent with whatever else is).
    pub root: bool,
    /// Files (not directories) sent, removed and left alone: the log line's counts.
    pub updated: usize,
    pub removed: usize,
    pub unchanged: usize,
}

impl Update {
    pub fn uploads(&self) -> bool {
        self.root || !self.send.is_empty()
    }

    pub fn changes(&self) -> bool {
        self.uploads() || !self.delete.is_empty()
    }
}

/// Files whose host stat key moved since they were sent: only their hash can tell whether
/// the content did.
pub fn suspects(host: &[Entry], manifest: &Manifest) -> Vec<usize> {
    host.iter()
        .enumerate()
        .filter(|(_, e)| e.want != Want::Dir)
        .filter(|(_, e)| manifest.get(&e.path).is_some_and(|r| r.key != e.key))
        .map(|(i, _)| i)
        .collect()
}

/// The update. `hashes` holds the current hash of the suspects (by host index); `full`
/// forces a full copy (`--fresh`, `GIT_STRATEGY: clone`).
pub fn update(
    host: &[Entry],
    hashes: &HashMap<usize, Hash>,
    manifest: Option<&Manifest>,
    listing: Option<&[Listed]>,
    clean: &Clean,
    full: Option<&str>,
) -> Update {
    let (manifest, listing) = match (full, manifest, listing) {
        (Some(why), _, listing) => return everything(host, listing.unwrap_or(&[]), why),
        (None, _, None) => return everything(host, &[], "the project volume could not be listed"),
        (None, None, Some(listing)) => {
            return everything(host, listing, "no record of what the project volume holds")
        }
        (None, Some(m), Some(l)) => (m, l),
    };
    let listed: HashMap<&str, &Listed> = listing.iter().map(|l| (l.path.as_str(), l)).collect();
    let mut u = Update {
        root: listed.get(".").is_none_or(|l| l.perm != DIR_MODE),
        ..Update::default()
    };
    for (i, e) in host.iter().enumerate() {
        let ok = match e.want {
            Want::Dir => listed
                .get(e.path.as_str())
                .is_some_and(|l| l.kind == Kind::Dir && l.perm == DIR_MODE),
            _ => manifest.get(&e.path).is_some_and(|r| {
                r.want == e.want
                    && (r.key == e.key || hashes.get(&i) == Some(&r.hash))
                    && listed.get(e.path.as_str()).is_some_and(|l| shows(l, r))
            }),
        };
        match (ok, e.want) {
            (false, Want::Dir) => u.send.push(i),
            (false, _) => {
                u.send.push(i);
                u.updated += 1;
            }
            (true, Want::Dir) => {}
            (true, _) => u.unchanged += 1,
        }
    }
    let wanted: HashSet<&str> = host.iter().map(|e| e.path.as_str()).collect();
    // `find` lists a directory before what it holds.
    let mut gone: HashSet<&str> = HashSet::new();
    for l in listing.iter().filter(|l| l.path != ".") {
        if wanted.contains(l.path.as_str()) {
            continue;
        }
        let under_gone = ancestors(&l.path).any(|a| gone.contains(a));
        let goes = under_gone
            || match clean {
                Clean::Remove(_) => true,
                // Earlier outputs stay; what cijob put there and left the tree goes.
                Clean::Keep => manifest.contains_key(&l.path),
            };
        if !goes {
            continue;
        }
        if l.kind == Kind::Dir {
            gone.insert(&l.path);
        } else {
            u.removed += 1;
        }
        if !under_gone {
            u.delete.push(l.path.clone());
        }
    }
    u
}

/// Whether the volume shows a file as it was sent.
fn shows(l: &Listed, r: &Record) -> bool {
    let kind_and_mode = match r.want {
        Want::File => l.kind == Kind::File && l.perm == FILE_MODE,
        Want::Exec => l.kind == Kind::File && l.perm == EXEC_MODE,
        Want::Symlink => l.kind == Kind::Symlink,
        Want::Dir => false,
    };
    kind_and_mode && l.size == r.size && l.mtime == r.mtime
}

/// Everything out of the project dir, the whole tree in.
fn everything(host: &[Entry], listing: &[Listed], why: &str) -> Update {
    Update {
        full: Some(why.to_string()),
        send: (0..host.len()).collect(),
        delete: listing
            .iter()
            .filter(|l| l.path != "." && !l.path.contains('/'))
            .map(|l| l.path.clone())
            .collect(),
        root: true,
        updated: host.iter().filter(|e| e.want != Want::Dir).count(),
        removed: listing.iter().filter(|l| l.kind != Kind::Dir).count(),
        unchanged: 0,
    }
}

fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::tree::Key;

    fn entry(path: &str, want: Want, ino: u64) -> Entry {
        Entry {
            path: path.into(),
            rel: path.into(),
            want,
            key: Key {
                ino,
                ..Key::default()
            },
        }
    }

    fn listed(path: &str, kind: Kind, perm: u32, size: u64, mtime: i64) -> Listed {
        Listed {
            path: path.into(),
            kind,
            perm,
            size,
            mtime,
        }
    }

    fn record(want: Want, size: u64, mtime: i64, hash: u8, ino: u64) -> Record {
        Record {
            want,
            size,
            mtime,
            hash: [hash; 32],
            key: Key {
                ino,
                ..Key::default()
            },
        }
    }

    /// A tree of `src/a.rs` (file), `run.sh` (exec), `link`, as sent last time.
    fn sent() -> (Vec<Entry>, Manifest, Vec<Listed>) {
        let host = vec![
            entry("link", Want::Symlink, 3),
            entry("run.sh", Want::Exec, 2),
            entry("src", Want::Dir, 0),
            entry("src/a.rs", Want::File, 1),
        ];
        let manifest: Manifest = [
            ("src/a.rs".to_string(), record(Want::File, 10, 100, 1, 1)),
            ("run.sh".to_string(), record(Want::Exec, 20, 200, 2, 2)),
            ("link".to_string(), record(Want::Symlink, 6, 300, 3, 3)),
        ]
        .into();
        let listing = vec![
            listed(".", Kind::Dir, 0o777, 4096, 1),
            listed("link", Kind::Symlink, 0o777, 6, 300),
            listed("run.sh", Kind::File, 0o777, 20, 200),
            listed("src", Kind::Dir, 0o777, 4096, 1),
            listed("src/a.rs", Kind::File, 0o666, 10, 100),
        ];
        (host, manifest, listing)
    }

    fn run(
        host: &[Entry],
        hashes: &HashMap<usize, Hash>,
        m: &Manifest,
        l: &[Listed],
        clean: &Clean,
    ) -> Update {
        update(host, hashes, Some(m), Some(l), clean, None)
    }

    const REMOVE: &Clean = &Clean::Remove(String::new());

    #[test]
    fn nothing_changed_nothing_to_do() {
        let (host, m, l) = sent();
        let u = run(&host, &HashMap::new(), &m, &l, REMOVE);
        assert_eq!(
            u,
            Update {
                unchanged: 3,
                ..Update::default()
            }
        );
        assert!(!u.changes());
        assert!(suspects(&host, &m).is_empty());
    }

    #[test]
    fn host_changes_are_sent_touched_files_are_not() {
        let (mut host, m, l) = sent();
        // a.rs rewritten with new content; run.sh touched, same content.
        host[3].key.mtime = 9;
        host[1].key.mtime = 9;
        assert_eq!(suspects(&host, &m), vec![1, 3]);
        let hashes: HashMap<usize, Hash> = [(1, [2; 32]), (3, [7; 32])].into();
        let u = run(&host, &hashes, &m, &l, REMOVE);
        assert_eq!((u.send.clone(), u.updated, u.unchanged), (vec![3], 1, 2));
        // A new file and a file gone from the tree.
        let mut host2 = host.clone();
        host2.push(entry("src/new.rs", Want::File, 9));
        host2.remove(0);
        let hashes2: HashMap<usize, Hash> = [(0, [2; 32]), (2, [7; 32])].into();
        let u = run(&host2, &hashes2, &m, &l, REMOVE);
        assert_eq!(u.send, vec![2, 3]);
        assert_eq!(u.delete, vec!["link".to_string()]);
        assert_eq!((u.updated, u.removed, u.unchanged), (2, 1, 1));
        // Mode changed on the host: a file became executable.
        let mut host3 = host.clone();
        host3[3].want = Want::Exec;
        let u = run(&host3, &hashes, &m, &l, REMOVE);
        assert!(u.send.contains(&3));
    }

    #[test]
    fn what_the_job_did_is_undone() {
        let (host, m, mut l) = sent();
        // The job chmodded run.sh, rewrote a.rs (new mtime), chmodded src, replaced the link
        // with a file and wrote build output, including under a new directory.
        l[2].perm = 0o755;
        l[4].mtime = 101;
        l[3].perm = 0o755;
        l[1] = listed("link", Kind::File, 0o644, 6, 300);
        l.push(listed("out", Kind::Dir, 0o755, 4096, 5));
        l.push(listed("out/bin", Kind::File, 0o755, 50, 5));
        l.push(listed("out/deep", Kind::Dir, 0o755, 4096, 5));
        l.push(listed("out/deep/x", Kind::File, 0o644, 5, 5));
        l.push(listed("src/a.rs.orig", Kind::File, 0o644, 5, 5));
        let u = run(&host, &HashMap::new(), &m, &l, REMOVE);
        assert_eq!(u.send, vec![0, 1, 2, 3]);
        assert_eq!(u.delete, vec!["out".to_string(), "src/a.rs.orig".into()]);
        assert_eq!((u.updated, u.removed, u.unchanged), (3, 3, 0));
        // The job deleted files (.git, say): they are sent again.
        let (host, m, l) = sent();
        let l: Vec<Listed> = l.into_iter().filter(|l| l.path != "run.sh").collect();
        let u = run(&host, &HashMap::new(), &m, &l, REMOVE);
        assert_eq!(u.send, vec![1]);
    }

    #[test]
    fn clean_none_keeps_earlier_outputs_but_not_old_sources() {
        let (mut host, m, mut l) = sent();
        host.remove(1); // run.sh left the tree
        l.push(listed("out", Kind::Dir, 0o755, 4096, 5));
        l.push(listed("out/bin", Kind::File, 0o755, 50, 5));
        let u = run(&host, &HashMap::new(), &m, &l, &Clean::Keep);
        assert_eq!(u.delete, vec!["run.sh".to_string()]);
        assert_eq!(u.removed, 1);
        let u = run(&host, &HashMap::new(), &m, &l, REMOVE);
        assert_eq!(u.delete, vec!["run.sh".to_string(), "out".into()]);
        assert_eq!(u.removed, 2);
    }

    #[test]
    fn unknown_state_means_everything() {
        let (host, m, mut l) = sent();
        l.push(listed("out", Kind::Dir, 0o755, 4096, 5));
        l.push(listed("out/bin", Kind::File, 0o755, 50, 5));
        let no = HashMap::new();
        for u in [
            update(&host, &no, None, Some(&l), REMOVE, None),
            update(&host, &no, Some(&m), None, REMOVE, None),
            update(&host, &no, Some(&m), Some(&l), REMOVE, Some("--fresh")),
        ] {
            assert!(u.full.is_some());
            assert_eq!(u.send, vec![0, 1, 2, 3]);
            assert_eq!((u.updated, u.unchanged), (3, 0));
            assert!(u.root);
        }
        let u = update(&host, &no, Some(&m), Some(&l), REMOVE, Some("--fresh"));
        assert_eq!(u.full.as_deref(), Some("--fresh"));
        assert_eq!(
            u.delete,
            vec![
                "link".to_string(),
                "run.sh".into(),
                "src".into(),
                "out".into()
            ]
        );
        assert_eq!(u.removed, 4);
        // An empty volume: only the project dir's own mode (mkdir made it 0755).
        let u = update(
            &[],
            &no,
            Some(&Manifest::new()),
            Some(&[listed(".", Kind::Dir, 0o755, 0, 0)]),
            REMOVE,
            None,
        );
        assert!(u.root && u.full.is_none() && u.delete.is_empty());
    }
}
