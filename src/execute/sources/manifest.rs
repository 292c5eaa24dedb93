//! What cijob last put in a project volume, kept on the host (never in the working tree):
//! per file, what the volume's listing must show (size, mtime) and the content's hash, plus
//! the host's stat key at the time. It is removed before an update starts and written when
//! the update is complete, so an update that was interrupted leaves no record: the next run
//! copies everything again.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::project::tree::{Key, Want};

pub type Hash = [u8; 32];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub want: Want,
    pub size: u64,
    pub mtime: i64,
    pub hash: Hash,
    pub key: Key,
}

pub type Manifest = HashMap<String, Record>;

const HEADER: &str = "cijob-project-volume 1";

/// The manifest of `volume` under `dir`.
pub fn path_in(dir: &Path, volume: &str) -> PathBuf {
    dir.join(format!("{volume}.manifest"))
}

/// `None` when there is none or it does not read (then nothing about the volume is known).
pub fn load(path: &Path) -> Option<Manifest> {
    parse(&std::fs::read(path).ok()?)
}

/// Before the volume changes: from now until `save`, its state is unknown.
pub fn forget(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Written whole, then renamed into place.
pub fn save(path: &Path, manifest: &Manifest) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    out.write_all(render(manifest).as_bytes())?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

pub fn render(manifest: &Manifest) -> String {
    let mut paths: Vec<&String> = manifest.keys().collect();
    paths.sort();
    let mut s = String::with_capacity(manifest.len() * 120 + HEADER.len() + 1);
    s.push_str(HEADER);
    s.push('\n');
    for p in paths {
        let r = &manifest[p];
        let k = &r.key;
        s.push_str(&format!(
            "{} {} {} {} {} {} {} {} {} {} {}\n",
            want_code(r.want),
            r.size,
            r.mtime,
            crate::hex::encode(&r.hash),
            k.mtime,
            k.mtime_nsec,
            k.ctime,
            k.ctime_nsec,
            k.ino,
            k.size,
            escape(p)
        ));
    }
    s
}

pub fn parse(bytes: &[u8]) -> Option<Manifest> {
    let text = std::str::from_utf8(bytes).ok()?;
    if !text.ends_with('\n') {
        return None;
    }
    let mut lines = text.split_terminator('\n');
    if lines.next()? != HEADER {
        return None;
    }
    let mut m = Manifest::new();
    for line in lines {
        let f: Vec<&str> = line.splitn(11, ' ').collect();
        let [want, size, mtime, hash, km, kmn, kc, kcn, ino, ksize, path] = f[..] else {
            return None;
        };
        let record = Record {
            want: match want {
                "f" => Want::File,
                "x" => Want::Exec,
                "l" => Want::Symlink,
                _ => return None,
            },
            size: size.parse().ok()?,
            mtime: mtime.parse().ok()?,
            hash: unhex(hash)?,
            key: Key {
                mtime: km.parse().ok()?,
                mtime_nsec: kmn.parse().ok()?,
                ctime: kc.parse().ok()?,
                ctime_nsec: kcn.parse().ok()?,
                ino: ino.parse().ok()?,
                size: ksize.parse().ok()?,
            },
        };
        m.insert(unescape(path)?, record);
    }
    Some(m)
}

fn want_code(w: Want) -> char {
    match w {
        Want::File => 'f',
        Want::Exec => 'x',
        Want::Symlink => 'l',
        Want::Dir => 'd',
    }
}

fn unhex(s: &str) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let mut h = [0u8; 32];
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(h)
}

/// Paths are the last field: only the line break (and the escape itself) need escaping.
fn escape(p: &str) -> String {
    p.replace('\\', "\\\\").replace('\n', "\\n")
}

fn unescape(p: &str) -> Option<String> {
    let mut out = String::with_capacity(p.len());
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next()? {
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(want: Want, n: u8) -> Record {
        Record {
            want,
            size: u64::from(n),
            mtime: -i64::from(n),
            hash: [n; 32],
            key: Key {
                mtime: 1,
                mtime_nsec: 2,
                ctime: 3,
                ctime_nsec: 4,
                ino: 5,
                size: u64::from(n),
            },
        }
    }

    #[test]
    fn round_trip_with_odd_names() {
        let m: Manifest = [
            ("a b/c.txt".to_string(), record(Want::File, 1)),
            ("new\nline\\x".to_string(), record(Want::Exec, 2)),
            ("link".to_string(), record(Want::Symlink, 3)),
        ]
        .into_iter()
        .collect();
        let text = render(&m);
        assert_eq!(parse(text.as_bytes()), Some(m.clone()));

        let d = tempfile::tempdir().unwrap();
        let p = path_in(&d.path().join("projects"), "vol");
        assert_eq!(load(&p), None);
        save(&p, &m).unwrap();
        assert_eq!(load(&p), Some(m));
        forget(&p).unwrap();
        forget(&p).unwrap();
        assert_eq!(load(&p), None);
    }

    #[test]
    fn corrupt_reads_as_unknown() {
        let m: Manifest = [("a".to_string(), record(Want::File, 1))].into();
        let text = render(&m);
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"something else\n"), None);
        // Cut in the middle of a line.
        assert_eq!(parse(&text.as_bytes()[..text.len() - 20]), None);
        assert_eq!(parse(text.replace("\nf ", "\n? ").as_bytes()), None);
        // Only the header: an empty volume.
        assert_eq!(
            parse(format!("{HEADER}\n").as_bytes()),
            Some(Manifest::new())
        );
    }
}
